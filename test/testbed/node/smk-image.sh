#!/usr/bin/env bash
# STAND-IN for the smk image until `npm run image` (the image branch) provides it: the quick way
# the node recipe built one. Node 24's binary and the libraries `ldd` names, the bundle (dist/, from
# `npm run build`) laid out as the Dockerfile lays it out (/usr/local/lib/smk, `smk` on PATH,
# /nodejs/bin/node), uid 65532, entrypoint smk. Reused while dist/ and Node are unchanged.
#   usage: test/testbed/node/smk-image.sh   -> prints "ARCHIVE REPOSITORY TAG" on its last line
# The node bed calls it through test/testbed/node/smk-image.ts (resolveSmkImage), the one seam to
# replace with the real image build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
. "$here/image-lib.sh"

cache_root="${SMK_NODE_BED_CACHE:-$HOME/.cache/smk-node-bed}"
work="$cache_root/src"
out_dir="$cache_root/smk-image"
repository=smk.local/smk
tag=dev

log() { printf '[smk-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ -f "$repo/dist/smk.mjs" ] || { log "FATAL: $repo/dist/smk.mjs is missing: run \`npm run build\` first"; exit 1; }
node_bin="$(bash "$repo/scripts/node24.sh")/node"
key=$( (cd "$repo/dist" && find . -type f ! -name '*.map' -print0 | sort -z | xargs -0 sha256sum; sha256sum "$node_bin" "$here/smk-image.sh" "$here/image-lib.sh") | sha256sum | cut -c1-16)
archive="$out_dir/smk-$key.tar"
if [ -f "$archive" ]; then
  log "reusing $archive"
  echo "$archive $repository $tag"
  exit 0
fi

mkdir -p "$out_dir" "$work"
exec 9>"$out_dir/.build.lock"
flock 9
started=$(date +%s)
root=$(mktemp -d "$work/smk-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/nodejs/bin" "$root/usr/local/lib/smk" "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot" "$root/lib64"
cp "$node_bin" "$root/nodejs/bin/node"
for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" 2>/dev/null || true
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
chown 65532:65532 "$root/home/nonroot"
cp -R "$repo/dist/." "$root/usr/local/lib/smk/"
find "$root/usr/local/lib/smk" -name '*.map' -delete
sed -i '1s|^#!.*|#!/nodejs/bin/node|' "$root/usr/local/lib/smk/smk.mjs"
chmod 0755 "$root/usr/local/lib/smk/smk.mjs"
ln -s ../lib/smk/smk.mjs "$root/usr/local/bin/smk"
rm -f "$out_dir"/smk-*.tar
mkimage "$repository:$tag" "$root" "$archive.partial" \
  --config.env PATH=/usr/local/bin:/nodejs/bin:/usr/bin:/bin --config.env NODE_ENV=production \
  --config.user 65532:65532 --config.entrypoint /usr/local/bin/smk --config.cmd --help
mv "$archive.partial" "$archive"
log "built $repository:$tag in $(( $(date +%s) - started ))s: $archive"
echo "$archive $repository $tag"
