#!/usr/bin/env bash
# Prints a bin directory holding Node 24 (the runtime smk targets). The machine's Node may be
# older (end of life): then Node 24 is taken from the npm registry's node-linux-<arch> package,
# which carries the official binary, and cached under ~/.cache/smk-node.
#   usage: export PATH="$(bash scripts/node24.sh):$PATH"
#   --pinned: always the npm registry's $want_version, never the machine's node (the image ships
#   it: an official, self-contained build, the same bytes on every machine).
set -euo pipefail
want_major=24
want_version="${SMK_NODE_VERSION:-24.21.0}"

if [ "${1:-}" != "--pinned" ] && command -v node >/dev/null 2>&1; then
  have_major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$have_major" -ge "$want_major" ]; then dirname "$(command -v node)"; exit 0; fi
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "node24.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
dest="${SMK_NODE_CACHE:-$HOME/.cache/smk-node}/$want_version-$arch"
if [ ! -x "$dest/bin/node" ]; then
  command -v npm >/dev/null || { echo "node24.sh: npm is needed to fetch Node $want_version" >&2; exit 1; }
  tmp=$(mktemp -d)
  echo "node24.sh: fetching node-linux-$arch@$want_version from the npm registry" >&2
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$want_version" >/dev/null)
  mkdir -p "$dest"
  tar xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$dest" --strip-components=1
  rm -rf "$tmp"
fi
"$dest/bin/node" --version >/dev/null
echo "$dest/bin"
