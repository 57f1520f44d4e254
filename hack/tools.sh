#!/usr/bin/env bash
# Builds the pinned upstream binaries the tests and the demo run (kube-apiserver,
# kube-controller-manager, kubectl, etcd, cert-manager's controller, helm and
# aws_signing_helper) from Go modules, into a cache shared by every clone on the
# machine; and, for the opt-in local node, kubelet, kube-proxy and kube-scheduler
# from the same Kubernetes wrapper module. Each tool is keyed by a hash of its
# wrapper module under hack/tools/ and of the shell function that builds it, so
# changing a pin or a flag rebuilds that tool alone.
#
#   hack/tools.sh bindir        build what is missing, print the directory holding all binaries
#   hack/tools.sh build         the same, printing progress only
#   hack/tools.sh node-bindir   bindir plus kubelet, kube-proxy and kube-scheduler (the local node)
#   hack/tools.sh crds          print cert-manager's CRD directory (downloads the module if needed)
#
# ROLESANYWHERE_CACHE overrides the cache root (default ~/.cache/rolesanywhere-operator).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools_dir="$here/tools"
cache="${ROLESANYWHERE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rolesanywhere-operator}"

# The public checksum database is not reachable from our machines. Every
# wrapper module commits its go.sum, and with -mod=readonly the go command
# refuses any module whose hash is not already in it, so downloads stay verified.
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOSUMDB=off
export GOTOOLCHAIN=local

die() { echo "hack/tools.sh: $*" >&2; exit 1; }
say() { echo "hack/tools.sh: $*" >&2; }

require_toolchain() {
  command -v go >/dev/null 2>&1 || die "the Go toolchain is missing: install Go >= 1.24 (it builds the pinned kube-apiserver, etcd, cert-manager, helm and aws_signing_helper)"
  local minor
  minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
  [[ "$minor" =~ ^[0-9]+$ && "$minor" -ge 24 ]] || die "Go $(go env GOVERSION) is too old: Go >= 1.24 is needed"
}

# pinned MODULE DIR -> the version the wrapper module requires
pinned() { awk -v m="$1" '$1 == "require" && $2 == m { print $3 } $1 == m && $2 ~ /^v/ { print $2 }' "$2/go.mod" | head -n 1; }

# tool_key MODULE_DIR BUILDER: the wrapper module and the builder's own source
# (which holds the packages and ldflags), so editing another part of this script rebuilds nothing.
tool_key() {
  # cert-manager's tool holds its webhook too, built from a second wrapper module.
  { cat "$tools_dir/$1"/go.mod "$tools_dir/$1"/go.sum "$tools_dir/$1"/*.go 2>/dev/null
    [[ "$1" == cert-manager ]] && cat "$tools_dir/cert-manager-webhook"/go.mod "$tools_dir/cert-manager-webhook"/go.sum \
      "$tools_dir/cert-manager-webhook"/*.go
    declare -f "$2" pinned kube_ldflags; } | sha256sum | cut -c1-16
}

# download MODULE_DIR: fetch the wrapper's dependencies, one clear line on failure.
download() {
  local log
  log="$(mktemp)"
  if ! (cd "$tools_dir/$1" && go mod download -x >"$log" 2>&1); then
    local last
    last="$(grep -v '^#' "$log" | tail -n 1)"
    rm -f "$log"
    die "cannot download the Go modules for $1 from the module proxy ($(go env GOPROXY)): $last"
  fi
  rm -f "$log"
}

# The version ldflags of kubernetes' hack/lib/version.sh, so /version reports the pin.
kube_ldflags() {
  local v major minor ld
  v="$(pinned k8s.io/kubernetes "$tools_dir/kubernetes")"
  major="${v#v}"; major="${major%%.*}"
  minor="$(echo "$v" | cut -d. -f2)"
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitCommit=$v"
  done
  echo "$ld"
}

build_kubernetes() {
  local out="$1"
  (cd "$tools_dir/kubernetes" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "$(kube_ldflags)" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
  (cd "$tools_dir/kubernetes" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

# The local node's parts, from the same wrapper module (and so the same pin) as kube-apiserver.
build_kubernetes_node() {
  (cd "$tools_dir/kubernetes" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "$(kube_ldflags)" -o "$1/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-scheduler)
}

build_cert_manager() {
  (cd "$tools_dir/cert-manager" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "-s -w" -o "$1/cert-manager-controller" .)
  download cert-manager-webhook
  (cd "$tools_dir/cert-manager-webhook" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "-s -w" -o "$1/cert-manager-webhook" .)
}

build_helm() {
  local v
  v="$(pinned helm.sh/helm/v3 "$tools_dir/helm")"
  (cd "$tools_dir/helm" && CGO_ENABLED=0 go build -p 2 -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    -o "$1/helm" helm.sh/helm/v3/cmd/helm)
}

build_aws_signing_helper() {
  local v
  command -v gcc >/dev/null 2>&1 || die "gcc is missing: aws_signing_helper needs cgo (install gcc)"
  v="$(pinned github.com/aws/rolesanywhere-credential-helper "$tools_dir/aws-signing-helper")"
  (cd "$tools_dir/aws-signing-helper" && CGO_ENABLED=1 go build -p 2 -trimpath \
    -ldflags "-s -w -X github.com/aws/rolesanywhere-credential-helper/cmd.Version=${v#v}" \
    -o "$1/aws_signing_helper" github.com/aws/rolesanywhere-credential-helper)
}

# ensure TOOL BUILDER [MODULE_DIR]: build into a temporary directory, then rename it
# into place, so an interrupted build never leaves a half-filled tool directory.
ensure() {
  local tool="$1" builder="$2" module="${3:-$1}" dest tmp
  dest="$cache/tools/$tool-$(tool_key "$module" "$builder")"
  if [[ -d "$dest" ]]; then echo "$dest"; return; fi
  require_toolchain
  mkdir -p "$cache/tools"
  say "building $tool (first use or a changed pin; this takes minutes) ..."
  download "$module"
  tmp="$(mktemp -d "$cache/tools/.tmp-$tool-XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  local started=$SECONDS
  if ! "$builder" "$tmp" >&2; then
    die "building $tool failed (see the go output above)"
  fi
  mv -T "$tmp" "$dest" 2>/dev/null || rm -rf "$tmp"  # another build may have won the race
  trap - EXIT
  say "built $tool in $((SECONDS - started))s"
  echo "$dest"
}

# bindir [node]: one directory of symlinks to every tool's binaries.
bindir() {
  local dirs=() d set_key bin
  d="$(ensure kubernetes build_kubernetes)"; dirs+=("$d")
  d="$(ensure cert-manager build_cert_manager)"; dirs+=("$d")
  d="$(ensure helm build_helm)"; dirs+=("$d")
  d="$(ensure aws-signing-helper build_aws_signing_helper)"; dirs+=("$d")
  if [[ "${1:-}" == node ]]; then
    d="$(ensure kubernetes-node build_kubernetes_node kubernetes)"; dirs+=("$d")
  fi
  set_key="$(printf '%s\n' "${dirs[@]}" | sha256sum | cut -c1-16)"
  bin="$cache/bin-$set_key"
  if [[ ! -d "$bin" ]]; then
    local tmp
    tmp="$(mktemp -d "$cache/.tmp-bin-XXXXXX")"
    for d in "${dirs[@]}"; do
      for f in "$d"/*; do ln -s "$f" "$tmp/$(basename "$f")"; done
    done
    mv -T "$tmp" "$bin" 2>/dev/null || rm -rf "$tmp"
  fi
  echo "$bin"
}

cert_manager_crds() {
  require_toolchain
  local dir
  dir="$(cd "$tools_dir/cert-manager" && go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager 2>/dev/null)" || true
  if [[ -z "$dir" || ! -d "$dir/deploy/crds" ]]; then
    download cert-manager
    dir="$(cd "$tools_dir/cert-manager" && go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)"
  fi
  echo "$dir/deploy/crds"
}

case "${1:-}" in
  bindir) bindir ;;
  build) bindir >/dev/null ;;
  node-bindir) bindir node ;;
  crds) cert_manager_crds ;;
  *) die "usage: hack/tools.sh bindir|build|node-bindir|crds" ;;
esac
