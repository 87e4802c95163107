#!/usr/bin/env bash
# Sets up a fresh machine and runs one npm script under Node 24:
#   bash scripts/dev.sh test     # set up, then the whole test suite (what CI runs)
#   bash scripts/dev.sh demo     # set up, then the end-to-end demo
#   bash scripts/dev.sh setup    # set up only
# Setup: Node 24 from the npm registry when the machine's Node is older, `npm ci`, a Python venv
# with moto (the AWS endpoint), and the test bed's Kubernetes/etcd binaries (built from the Go
# module proxy once, then cached in ~/.cache/smk-testbed) and helm for the chart tests (likewise, in
# ~/.cache/smk-tools), and the node bed where the node tests run real pods (Debian packages via apt,
# kubelet/kube-proxy/kube-scheduler, the Secrets Store CSI driver from ../shared/third-party, images;
# cached in ~/.cache/smk-node-bed; needs root). Every step fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-setup}"
shift || true

say() { printf '\n== %s\n' "$*" >&2; }

say "Node 24"
node_bin=$(bash scripts/node24.sh)
export PATH="$node_bin:$PATH"
node --version >&2

say "npm dependencies"
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f node_modules/.smk-lock-hash ] || [ "$(cat node_modules/.smk-lock-hash)" != "$lock_hash" ]; then
  npm ci --no-audit --no-fund
  echo "$lock_hash" > node_modules/.smk-lock-hash
else
  echo "node_modules matches package-lock.json" >&2
fi

if [ "$target" != "build" ]; then
  say "moto (Python venv)"
  venv="${SMK_MOTO_VENV:-$HOME/.cache/smk-moto-venv}"
  req_hash=$(sha256sum test/requirements.txt | cut -c1-16)
  # A venv whose interpreter no longer runs (its base Python moved) is rebuilt from scratch.
  if ! "$venv/bin/python" -c 'import subprocess' >/dev/null 2>&1; then
    command -v python3 >/dev/null || { echo "python3 is required for moto" >&2; exit 1; }
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  if [ "$(cat "$venv/.smk-req-hash" 2>/dev/null)" != "$req_hash" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r test/requirements.txt
    echo "$req_hash" > "$venv/.smk-req-hash"
  fi
  "$venv/bin/python" -c 'import moto; print("moto", moto.__version__)' >&2
  export SMK_MOTO_PYTHON="$venv/bin/python"

  say "Kubernetes test bed binaries"
  bash test/testbed/build.sh >/dev/null

  say "helm (chart tests; built from the Go module proxy once, cached in ~/.cache/smk-tools)"
  bash test/tools/build-helm.sh >/dev/null

  say "node bed (real pods for test/node: apt packages, kubelet, CSI driver, images; cached in ~/.cache/smk-node-bed)"
  bash test/testbed/node/build.sh >/dev/null
fi

case "$target" in
  setup|build) say "setup done (Node: $node_bin)" ;;
  *) say "npm run $target"; exec npm run "$target" -- "$@" ;;
esac
