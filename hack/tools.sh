#!/usr/bin/env bash
# Builds the pinned upstream binaries the tests and the demo run (kube-apiserver,
# kube-controller-manager, kubectl, etcd, cert-manager's controller, helm and
# aws_signing_helper) from Go modules, into a cache shared by every clone on the
# machine. Each tool is keyed by a hash of its wrapper module under hack/tools/,
# so changing a pin rebuilds that tool alone.
#
#   hack/tools.sh bindir   build what is missing, print the directory holding all binaries
#   hack/tools.sh build    the same, printing progress only
#   hack/tools.sh crds     print cert-manager's CRD directory (downloads the module if needed)
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

tool_key() {
  # The key covers the wrapper module and this script (which holds the ldflags).
  cat "$tools_dir/$1"/go.mod "$tools_dir/$1"/go.sum "$tools_dir/$1"/*.go "$here/tools.sh" 2>/dev/null | sha256sum | cut -c1-16
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

build_kubernetes() {
  local out="$1" v major minor ld
  v="$(pinned k8s.io/kubernetes "$tools_dir/kubernetes")"
  major="${v#v}"; major="${major%%.*}"
  minor="$(echo "$v" | cut -d. -f2)"
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitCommit=$v"
  done
  (cd "$tools_dir/kubernetes" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "$ld" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
  (cd "$tools_dir/kubernetes" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

build_cert_manager() {
  (cd "$tools_dir/cert-manager" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "-s -w" -o "$1/cert-manager-controller" .)
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

# ensure TOOL BUILDER: build into a temporary directory, then rename it into
# place, so an interrupted build never leaves a half-filled tool directory.
ensure() {
  local tool="$1" builder="$2" dest tmp
  dest="$cache/tools/$tool-$(tool_key "$tool")"
  if [[ -d "$dest" ]]; then echo "$dest"; return; fi
  require_toolchain
  mkdir -p "$cache/tools"
  say "building $tool (first use or a changed pin; this takes minutes) ..."
  download "$tool"
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

bindir() {
  local dirs=() d set_key bin
  d="$(ensure kubernetes build_kubernetes)"; dirs+=("$d")
  d="$(ensure cert-manager build_cert_manager)"; dirs+=("$d")
  d="$(ensure helm build_helm)"; dirs+=("$d")
  d="$(ensure aws-signing-helper build_aws_signing_helper)"; dirs+=("$d")
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
  crds) cert_manager_crds ;;
  *) die "usage: hack/tools.sh bindir|build|crds" ;;
esac
