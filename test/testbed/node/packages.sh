#!/usr/bin/env bash
# Installs the node bed's Debian packages when any is missing: containerd + runc (the container
# runtime), the CNI plugins (bridge, host-local, portmap), iptables + conntrack (kube-proxy and the
# containment rules), umoci + skopeo (images built from directories, no registry, no daemon) and a
# static busybox (the stand-in images). Needs root and apt (Debian 12 is what it was written on).
#   usage: test/testbed/node/packages.sh
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables conntrack umoci skopeo busybox-static)

log() { printf '[node-packages %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  log "installed: ${packages[*]}"
  exit 0
fi

[ "$(id -u)" = 0 ] || { log "FATAL: installing ${missing[*]} needs root (the node bed runs as root anyway)"; exit 1; }
command -v apt-get >/dev/null || { log "FATAL: apt-get not found; install ${missing[*]} with this system's package manager"; exit 1; }

# containerd's package would start a system containerd where an init system runs: the node bed
# starts its own, with its own config and paths, so no service may start during the install.
policy=/usr/sbin/policy-rc.d
added_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 0755 "$policy"
  added_policy=true
fi
trap '[ "$added_policy" = true ] && rm -f "$policy"' EXIT

started=$(date +%s)
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A machine that never ran `apt-get update` has no package lists.
if ! apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
  log "install failed; updating the package lists and trying once more"
  apt-get update >&2
  apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
log "installed ${missing[*]} in $(( $(date +%s) - started ))s"
