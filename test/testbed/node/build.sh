#!/usr/bin/env bash
# Builds what the node bed needs beyond the control plane (test/testbed/build.sh) and caches it
# outside the repo; each part is reused once built.
#   kubernetes  kubelet, kube-scheduler, kube-proxy, kubectl from the Go module proxy
#   csi         the Secrets Store CSI driver v1.6.0 and node-driver-registrar, from the source
#               snapshots in ../shared/third-party (the Go module proxy refuses those modules)
#   images      images without a registry (umoci + skopeo → docker-archive tars for `ctr import`):
#               the pause image, busybox:1.28 and k8s.gcr.io/e2e-test-images/busybox:1.29 (a
#               static busybox), nginx:1.14.2 (busybox httpd on port 80), the CSI driver and registrar
# The Debian packages come first (packages.sh). The smk image is not built here: `npm run image` (smk-image.ts).
#   usage: test/testbed/node/build.sh [kubernetes|csi|images|all]   -> prints the cache dir last
# Env: SMK_K8S_VERSION, SMK_NODE_BED_CACHE, SMK_THIRD_PARTY_DIR, SMK_GO_BUILD_PARALLEL.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../kubernetes-module.sh"
. "$here/image-lib.sh"

part="${1:-all}"
k8s_version="${SMK_K8S_VERSION:-v1.35.4}"
csi_driver_version=v1.6.0
registrar_version=v2.17.0
cache_root="${SMK_NODE_BED_CACHE:-$HOME/.cache/smk-node-bed}"
third_party="${SMK_THIRD_PARTY_DIR:-$here/../../../../shared/third-party}"
parallel="${SMK_GO_BUILD_PARALLEL:-2}"
cache_dir="$cache_root/$k8s_version"
bin_dir="$cache_dir/bin"
image_dir="$cache_dir/images"
work="$cache_root/src"

log() { printf '[node-bed-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

case "$part" in kubernetes|csi|images|all) ;; *) die "unknown part '$part' (kubernetes, csi, images or all)" ;; esac

bash "$here/packages.sh"

mkdir -p "$bin_dir" "$image_dir" "$work"
# One build at a time (two runs starting together): the second waits, then reuses the first's.
exec 9>"$cache_root/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT
heartbeat() { while sleep 30; do log "still building ($1)…"; done; }
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

kubernetes_stamp="$bin_dir/.kubernetes-$k8s_version"
build_kubernetes() {
  if [ -f "$kubernetes_stamp" ]; then log "reusing kubelet, kube-scheduler, kube-proxy, kubectl in $bin_dir"; return; fi
  command -v go >/dev/null || die "go is not installed; the node binaries are built from source with Go"
  local dir="$work/kubernetes-$k8s_version-node" started
  started=$(date +%s)
  log "resolving k8s.io/kubernetes@$k8s_version (node commands)"
  write_kubernetes_module "$dir" "$k8s_version" \
    k8s.io/kubernetes/cmd/kubelet/app k8s.io/kubernetes/cmd/kube-scheduler/app \
    k8s.io/kubernetes/cmd/kube-proxy/app k8s.io/kubectl/pkg/cmd
  (cd "$dir" && go mod tidy)
  log "compiling kubelet, kube-scheduler, kube-proxy, kubectl (-p $parallel; a few minutes once the control plane is built)"
  heartbeat kubernetes 9>&- & local hb=$!
  (cd "$dir" && go build -p "$parallel" -trimpath -ldflags "$(kubernetes_ldflags "$k8s_version")" -o "$bin_dir/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
  kill "$hb" 2>/dev/null || true
  "$bin_dir/kubelet" --version >&2
  touch "$kubernetes_stamp"
  log "kubernetes node commands built in $(( $(date +%s) - started ))s"
}

csi_stamp="$bin_dir/.csi-$csi_driver_version-$registrar_version"
build_csi() {
  if [ -f "$csi_stamp" ]; then log "reusing the CSI driver and registrar in $bin_dir"; return; fi
  command -v go >/dev/null || die "go is not installed; the CSI driver is built from source with Go"
  local driver_tar="$third_party/secrets-store-csi-driver-$csi_driver_version.tar.gz"
  local registrar_tar="$third_party/node-driver-registrar-$registrar_version.tar.gz"
  for file in "$driver_tar" "$registrar_tar" "$third_party/mlog-stub/go.mod"; do
    [ -f "$file" ] || die "$file is missing: the CSI sources come from ../shared/third-party beside the checkout (or SMK_THIRD_PARTY_DIR)"
  done
  local started driver="$work/secrets-store-csi-driver-$csi_driver_version" registrar="$work/node-driver-registrar-$registrar_version" mlog="$work/mlog-stub"
  started=$(date +%s)
  rm -rf "$driver" "$registrar" "$mlog"
  mkdir -p "$driver" "$registrar" "$mlog"
  tar -xzf "$driver_tar" -C "$driver" --strip-components=1
  tar -xzf "$registrar_tar" -C "$registrar" --strip-components=1
  cp "$third_party"/mlog-stub/* "$mlog/"
  # monis.app/mlog is refused by the proxy: the driver's main builds against the stand-in.
  (cd "$mlog" && GOFLAGS="$GOFLAGS -mod=mod" go mod tidy)
  (cd "$driver" && go mod edit -replace "monis.app/mlog=$mlog")
  log "compiling secrets-store-csi-driver $csi_driver_version and csi-node-driver-registrar $registrar_version"
  heartbeat csi 9>&- & local hb=$!
  (cd "$driver" && GOFLAGS="$GOFLAGS -mod=mod" go build -p "$parallel" -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/secrets-store-csi-driver/pkg/version.BuildVersion=$csi_driver_version" \
    -o "$bin_dir/secrets-store-csi-driver" ./cmd/secrets-store-csi-driver)
  (cd "$registrar" && GOFLAGS="$GOFLAGS -mod=vendor" go build -p "$parallel" -trimpath \
    -ldflags "-s -w -X main.version=$registrar_version" \
    -o "$bin_dir/csi-node-driver-registrar" ./cmd/csi-node-driver-registrar)
  kill "$hb" 2>/dev/null || true
  touch "$csi_stamp"
  log "CSI driver and registrar built in $(( $(date +%s) - started ))s"
}

images_key=$(cat "$here/build.sh" "$here/image-lib.sh" "$here/pause.c" /bin/busybox | sha256sum | cut -c1-16)
images_stamp="$image_dir/.complete"
build_images() {
  if [ "$(cat "$images_stamp" 2>/dev/null)" = "$images_key" ]; then log "reusing images in $image_dir"; return; fi
  [ -f "$csi_stamp" ] || die "the CSI driver image needs the CSI binaries: run $here/build.sh csi first"
  command -v gcc >/dev/null || die "gcc is needed for the pause image (apt-get install gcc libc6-dev)"
  local started roots
  started=$(date +%s)
  roots=$(mktemp -d "$work/roots.XXXXXX")
  log "building images into $image_dir"
  mkdir -p "$roots/pause"
  gcc -Os -static -o "$roots/pause/pause" "$here/pause.c"
  strip "$roots/pause/pause"
  mkimage registry.k8s.io/pause:3.10.1 "$roots/pause" "$image_dir/pause.tar" --config.entrypoint /pause

  busybox_root "$roots/busybox"
  mkimage docker.io/library/busybox:1.28 "$roots/busybox" "$image_dir/busybox.tar" \
    --config.env PATH=/bin --config.cmd sh -- k8s.gcr.io/e2e-test-images/busybox:1.29

  # nginx:1.14.2's contract as the seeds use it: a web server on port 80, run as root.
  busybox_root "$roots/nginx"
  mkdir -p "$roots/nginx/usr/share/nginx/html"
  printf '<!DOCTYPE html>\n<title>Welcome to nginx!</title>\n<p>busybox httpd standing in for nginx:1.14.2 (smk node bed)</p>\n' \
    > "$roots/nginx/usr/share/nginx/html/index.html"
  mkimage docker.io/library/nginx:1.14.2 "$roots/nginx" "$image_dir/nginx.tar" \
    --config.env PATH=/bin --config.exposedports 80/tcp --config.stopsignal SIGTERM \
    --config.cmd httpd --config.cmd -f --config.cmd -p --config.cmd 80 --config.cmd -h --config.cmd /usr/share/nginx/html

  # The driver mounts tmpfs with mount(8): busybox provides it.
  busybox_root "$roots/csi-driver"
  mkdir -p "$roots/csi-driver/usr/local/bin"
  cp "$bin_dir/secrets-store-csi-driver" "$roots/csi-driver/usr/local/bin/"
  mkimage "smk.local/secrets-store-csi-driver:$csi_driver_version" "$roots/csi-driver" "$image_dir/secrets-store-csi-driver.tar" \
    --config.env PATH=/usr/local/bin:/bin --config.entrypoint /usr/local/bin/secrets-store-csi-driver

  mkdir -p "$roots/registrar/usr/local/bin"
  cp "$bin_dir/csi-node-driver-registrar" "$roots/registrar/usr/local/bin/"
  mkimage "smk.local/csi-node-driver-registrar:$registrar_version" "$roots/registrar" "$image_dir/csi-node-driver-registrar.tar" \
    --config.entrypoint /usr/local/bin/csi-node-driver-registrar

  rm -rf "$roots"
  echo "$images_key" > "$images_stamp"
  log "images built in $(( $(date +%s) - started ))s: $(cd "$image_dir" && ls ./*.tar | tr '\n' ' ')"
}

case "$part" in
  kubernetes) build_kubernetes ;;
  csi) build_csi ;;
  images) build_images ;;
  all) build_kubernetes; build_csi; build_images ;;
esac
echo "$cache_dir"
