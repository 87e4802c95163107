#!/usr/bin/env bash
# Builds the benchmark peers from the sources in ../shared/third-party (never copied into smk) and
# installs the load generator, on first use; later runs reuse what is cached under ~/.cache.
#   - the seeds' Go injector (aws-secret-sidecar-injector, admission-controller/), unchanged;
#   - ASCP (secrets-store-csi-driver-provider-aws) with the 5-line patch that lets its STS client
#     honour AWS_ENDPOINT_URL (so role assumption reaches moto like its SM/SSM calls do);
#   - wrk (Debian), the HTTP load generator for the webhook benchmark.
#   usage: bench/tools/build-peers.sh   -> last line: JSON {"injector":…, "ascp":…, "wrk":…}
# Env: SMK_THIRD_PARTY (default ../shared/third-party beside the checkout), SMK_TOOLS_CACHE,
#      SMK_GO_BUILD_PARALLEL. Go modules come from the module proxy (GOPROXY as configured).
set -euo pipefail

here="$(cd "$(dirname "$0")/../.." && pwd)"
third_party="${SMK_THIRD_PARTY:-$here/../shared/third-party}"
cache_root="${SMK_TOOLS_CACHE:-$HOME/.cache/smk-tools}"
parallel="${SMK_GO_BUILD_PARALLEL:-2}"
injector_tar="$(ls "$third_party"/aws-secret-sidecar-injector-*.tar.gz | head -n 1)"
ascp_tar="$(ls "$third_party"/secrets-store-csi-driver-provider-aws-*.tar.gz | head -n 1)"
ascp_patch="$third_party/secrets-store-csi-driver-provider-aws-sts-endpoint.patch"
injector_name="$(basename "$injector_tar" .tar.gz)"
ascp_name="$(basename "$ascp_tar" .tar.gz)"
injector_bin="$cache_root/peers/$injector_name/injector"
ascp_bin="$cache_root/peers/$ascp_name-sts-endpoint/ascp"

log() { printf '[build-peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

mkdir -p "$cache_root/peers"
# One build at a time (two bench runs starting together): the second waits, then reuses the first's.
exec 9>"$cache_root/.peers-build.lock"
flock 9

export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0

# build NAME TARBALL SUBDIR OUTPUT [PATCH]: unpack to a scratch dir, patch, go build, keep the binary only.
build() {
  local name="$1" tarball="$2" subdir="$3" output="$4" patch="${5:-}"
  if [ -x "$output" ] && [ -f "$output.complete" ]; then return; fi
  command -v go >/dev/null || { log "FATAL: go is not installed; the peers are built from source with Go"; exit 1; }
  local scratch started
  scratch="$(mktemp -d)"
  started=$(date +%s)
  tar -xzf "$tarball" -C "$scratch"
  local dir="$scratch/$(basename "$tarball" .tar.gz)/$subdir"
  if [ -n "$patch" ]; then (cd "$dir" && patch -p1 --quiet < "$patch"); fi
  log "building $name (-p $parallel; a few minutes on 2 cores the first time)"
  mkdir -p "$(dirname "$output")"
  (cd "$dir" && go build -p "$parallel" -trimpath -ldflags "-s -w" -o "$output" .)
  rm -rf "$scratch"
  touch "$output.complete"
  log "built $name in $(( $(date +%s) - started ))s: $output"
}

build "the Go injector" "$injector_tar" admission-controller "$injector_bin"
build "ASCP" "$ascp_tar" . "$ascp_bin" "$ascp_patch"

if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

printf '{"injector":"%s","ascp":"%s","wrk":"%s"}\n' "$injector_bin" "$ascp_bin" "$(command -v wrk)"
