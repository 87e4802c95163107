#!/usr/bin/env bash
# Builds the test bed's real Kubernetes control plane (kube-apiserver, kube-controller-manager)
# and etcd from the Go module proxy, and caches them outside the repo. Reuses a finished cache.
#   usage: test/testbed/build.sh            -> prints the bin directory on its last line
# Env: SMK_K8S_VERSION (default below), SMK_ETCD_VERSION, SMK_TESTBED_CACHE, SMK_GO_BUILD_PARALLEL.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/kubernetes-module.sh"

k8s_version="${SMK_K8S_VERSION:-v1.35.4}"
etcd_version="${SMK_ETCD_VERSION:-v3.6.16}"
cache_root="${SMK_TESTBED_CACHE:-$HOME/.cache/smk-testbed}"
parallel="${SMK_GO_BUILD_PARALLEL:-2}"
bin_dir="$cache_root/$k8s_version-etcd-$etcd_version/bin"
stamp="$bin_dir/.complete"

log() { printf '[testbed-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cached() { [ -f "$stamp" ] && [ -x "$bin_dir/kube-apiserver" ] && [ -x "$bin_dir/kube-controller-manager" ] && [ -x "$bin_dir/etcd" ]; }

if cached; then
  log "reusing cached binaries in $bin_dir"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { log "FATAL: go is not installed; the test bed is built from source with Go"; exit 1; }
mkdir -p "$bin_dir"
# One build at a time (two test runs starting together): the second waits, then reuses the first's.
exec 9>"$cache_root/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if cached; then
  log "reusing binaries just built by another run in $bin_dir"
  echo "$bin_dir"
  exit 0
fi
# Heartbeats run in the background; never leave one behind, whichever way the script ends.
trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT
work="$cache_root/src"
mkdir -p "$work"
# Go's caches are kept (default locations) so a rebuild after a cache wipe of bin/ is fast.
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

# Progress while the long build runs: the Go toolchain prints nothing for minutes.
heartbeat() { while sleep 30; do log "still building ($1)…"; done; }

build_kubernetes() {
  local dir="$work/kubernetes-$k8s_version"
  log "resolving k8s.io/kubernetes@$k8s_version"
  write_kubernetes_module "$dir" "$k8s_version" \
    k8s.io/kubernetes/cmd/kube-apiserver/app k8s.io/kubernetes/cmd/kube-controller-manager/app
  cd "$dir"
  log "go.mod has $(grep -c '=>' go.mod) replace lines derived from k8s.io/kubernetes' go.mod"
  log "go mod tidy (downloads modules on the first run)"
  go mod tidy
  log "compiling kube-apiserver and kube-controller-manager (-p $parallel; 10-30 minutes on 2 cores the first time)"
  heartbeat kubernetes & local hb=$!
  go build -p "$parallel" -trimpath -ldflags "$(kubernetes_ldflags "$k8s_version")" -o "$bin_dir/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  kill "$hb" 2>/dev/null || true
}

build_etcd() {
  local dir="$work/etcd-$etcd_version"
  mkdir -p "$dir"
  cd "$dir"
  cat > go.mod <<GOMOD
module smk.dev/testbed/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $etcd_version
GOMOD
  cat > tools.go <<'GO'
//go:build tools

// The go.etcd.io/etcd/server/v3 module root is the etcd main package.
package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  log "resolving go.etcd.io/etcd/server/v3@$etcd_version"
  go mod tidy
  log "compiling etcd"
  heartbeat etcd & local hb=$!
  go build -p "$parallel" -trimpath -ldflags "-s -w" -o "$bin_dir/etcd" go.etcd.io/etcd/server/v3
  kill "$hb" 2>/dev/null || true
}

started=$(date +%s)
build_etcd
build_kubernetes
"$bin_dir/kube-apiserver" --version >&2
"$bin_dir/etcd" --version | head -1 >&2
touch "$stamp"
log "done in $(( $(date +%s) - started ))s: $bin_dir"
echo "$bin_dir"
