#!/usr/bin/env bash
# Builds `helm` from the Go module proxy (no release download needed) and caches it outside the
# repo; reuses a finished build. The chart tests (test/deploy) render deploy/helm/smk with it.
#   usage: test/tools/build-helm.sh          -> prints the helm binary's path on its last line
# Env: SMK_HELM_VERSION (default below), SMK_TOOLS_CACHE, SMK_GO_BUILD_PARALLEL.
set -euo pipefail

helm_version="${SMK_HELM_VERSION:-v4.3.1}"
cache_root="${SMK_TOOLS_CACHE:-$HOME/.cache/smk-tools}"
parallel="${SMK_GO_BUILD_PARALLEL:-2}"
bin_dir="$cache_root/helm-$helm_version"
helm="$bin_dir/helm"
major="${helm_version%%.*}"
module="helm.sh/helm/$major"

log() { printf '[build-helm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cached() { [ -x "$helm" ] && [ -f "$bin_dir/.complete" ]; }

if cached; then
  log "reusing $helm"
  echo "$helm"
  exit 0
fi

command -v go >/dev/null || { log "FATAL: go is not installed; helm is built from source with Go"; exit 1; }
mkdir -p "$bin_dir"
# One build at a time (two test runs starting together): the second waits, then reuses the first's.
exec 9>"$cache_root/.helm-build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if cached; then
  log "reusing $helm just built by another run"
  echo "$helm"
  exit 0
fi

trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT
heartbeat() { while sleep 30; do log "still building helm $helm_version…"; done; }

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0
started=$(date +%s)
log "building $module/cmd/helm@$helm_version (-p $parallel; a few minutes on 2 cores the first time)"
heartbeat & hb=$!
# Helm reads its version from these variables; without them `helm version` says v4.x-dev / unreleased.
GOBIN="$bin_dir" go install -p "$parallel" -trimpath \
  -ldflags "-s -w -X $module/internal/version.version=$helm_version -X $module/internal/version.gitTreeState=clean" \
  "$module/cmd/helm@$helm_version"
kill "$hb" 2>/dev/null || true
"$helm" version --short >&2
touch "$bin_dir/.complete"
log "done in $(( $(date +%s) - started ))s: $helm"
echo "$helm"
