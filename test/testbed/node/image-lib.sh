# Sourced by the node bed's image builds (build.sh): images from directories,
# without a registry or a daemon. Expects $work (a scratch dir on the same file system).

# mkimage REF ROOTFS OUT [umoci config args…] [-- extra refs…]: a one-layer image from a directory,
# as a docker-archive (what `ctr -n k8s.io images import` takes) holding REF and the extra refs.
mkimage() {
  local ref="$1" rootfs="$2" out="$3"
  shift 3
  local config=() extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do config+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  for tag in "$@"; do extra+=(--additional-tag "$tag"); done
  local layout
  layout=$(mktemp -d "$work/image.XXXXXX")
  umoci init --layout "$layout/oci"
  umoci new --image "$layout/oci:build"
  umoci unpack --image "$layout/oci:build" "$layout/bundle" >/dev/null
  cp -a "$rootfs"/. "$layout/bundle/rootfs/"
  umoci repack --image "$layout/oci:build" "$layout/bundle"
  umoci config --image "$layout/oci:build" --os linux --architecture amd64 --author "smk node bed" "${config[@]}"
  rm -f "$out"
  skopeo copy --quiet "oci:$layout/oci:build" "docker-archive:$out:$ref" "${extra[@]}"
  rm -rf "$layout"
}

# A busybox root: every applet in /bin, root and nonroot users, a world-writable /tmp.
busybox_root() {
  local root="$1"
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home/nonroot"
  cp /bin/busybox "$root/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$root/etc/group"
  chmod 1777 "$root/tmp"
  chown 65532:65532 "$root/home/nonroot"
}
