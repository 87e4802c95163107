# Sourced by test/testbed/build.sh (control plane) and test/testbed/node/build.sh (node): how a
# command of k8s.io/kubernetes is built from the Go module proxy, in one place.

# write_kubernetes_module DIR VERSION PACKAGE... — a module in DIR that requires k8s.io/kubernetes
# at VERSION and pins PACKAGE... (e.g. k8s.io/kubernetes/cmd/kubelet/app), so `go mod tidy`
# records every dependency those commands need.
write_kubernetes_module() {
  local dir="$1" version="$2"
  shift 2
  mkdir -p "$dir"
  local gomod
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -n "$gomod" ] || { echo "could not download k8s.io/kubernetes@$version" >&2; return 1; }
  local go_directive staging_version
  go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -1)
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and points them at ./staging with
  # replace lines that only apply inside its own repo. v1.X.Y pairs with staging v0.X.Y.
  staging_version="v0.${version#v1.}"
  {
    echo "module smk.dev/testbed/kubernetes"
    echo
    echo "go $go_directive"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    sed -n 's/^[[:space:]]*\(k8s\.io\/[a-z0-9.\/-]*\) v0\.0\.0$/\1/p' "$gomod" | sort -u | while read -r module; do
      echo "	$module => $module $staging_version"
    done
    echo ")"
  } > "$dir/go.mod"
  {
    echo '//go:build tools'
    echo
    echo '// Pins the commands'"'"' packages so `go mod tidy` records every dependency they need.'
    echo 'package tools'
    echo
    echo 'import ('
    local package
    for package in "$@"; do echo "	_ \"$package\""; done
    echo ')'
  } > "$dir/tools.go"
}

# kubernetes_ldflags VERSION — what `kubectl version` and /version report, as a release build sets it.
kubernetes_ldflags() {
  local version="$1" minor
  minor="${version#v1.}"; minor="${minor%%.*}"
  printf '%s' "-s -w" \
    " -X k8s.io/component-base/version.gitVersion=$version" \
    " -X k8s.io/component-base/version.gitMajor=1" \
    " -X k8s.io/component-base/version.gitMinor=$minor" \
    " -X k8s.io/component-base/version.gitTreeState=clean" \
    " -X k8s.io/component-base/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    " -X k8s.io/client-go/pkg/version.gitVersion=$version"
}
