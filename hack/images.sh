#!/usr/bin/env bash
# Builds the images the local node runs, without a registry, into a cache shared
# by every clone on the machine (each keyed by a hash of its inputs, so a warm
# run rebuilds nothing):
#
#   pause     the pod sandbox: hack/images/pause.c built with gcc -static, one layer
#   base      Debian bookworm from Debian's packages (mmdebstrap): Python 3.11 in a
#             venv at /opt/venv whose pip is first on PATH, like python:3.11-slim
#   operator  the repository's Dockerfile built FROM base (buildah, PYTHON_IMAGE=base), target operator
#   sidecar   the same Dockerfile's target sidecar: rolesanywhere-sidecar and only its dependencies
#   app       base plus the AWS CLI and boto3 (hack/images/app.Containerfile), for tests
#
#   hack/images.sh build   build what is missing; print "NAME REFERENCE ARCHIVE" per image
#
# Each image ends up as an OCI archive that `ctr -n k8s.io images import` takes.
# ROLESANYWHERE_CACHE overrides the cache root (default ~/.cache/rolesanywhere-operator).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
cache="${ROLESANYWHERE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rolesanywhere-operator}"
out="$cache/images"
suite=bookworm
# The versions the test extras of pyproject.toml resolve to today; a change rebuilds the app image.
app_pins="awscli==1.46.3 boto3==1.44.8"

die() { echo "hack/images.sh: $*" >&2; exit 1; }
say() { echo "hack/images.sh: $*" >&2; }

# buildah keeps its own storage in the cache, apart from any system-wide one.
bah() { buildah --root "$cache/buildah/root" --runroot "$cache/buildah/run" --storage-driver overlay "$@"; }

key() { sha256sum | cut -c1-16; }

# RUN steps reach the package index with the host's CA bundle (where this machine's TLS trust is
# configured), mounted for the build only: nothing of the host's trust ends up in an image.
host_ca=/etc/ssl/certs/ca-certificates.crt
build_volumes() { [[ -f "$host_ca" ]] && echo "--volume=$host_ca:/etc/ssl/certs/ca-certificates.crt:ro"; return 0; }

# A function's own source, so changing how an image is built changes its key.
recipe() { declare -f "$@"; }

# The project's files the Dockerfile copies (tracked and untracked, not ignored) and their contents.
source_key() {
  (cd "$repo" && git ls-files -z -c -o --exclude-standard -- Dockerfile .dockerignore pyproject.toml README.md \
    requirements.lock requirements-sidecar.lock requirements-build.lock operator sidecar \
    | sort -z | xargs -0 sha256sum) | key
}

# The host's apt sources for Debian (the mirror this machine is configured with).
debian_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] && grep -qE "^[^#]*\b$suite\b" "$f" && grep -qi debian "$f" && echo "$f"
  done
  return 0
}

build_pause() {
  local ref="$1" archive="$2" tmp c
  tmp="$(mktemp -d)"
  gcc -static -Os -s -o "$tmp/pause" "$here/images/pause.c" || die "gcc -static failed (is libc6-dev installed? hack/node-deps.sh)"
  c="$(bah from scratch)"
  bah copy -q "$c" "$tmp/pause" /pause >/dev/null
  bah config --entrypoint '["/pause"]' --cmd '' --user 65535:65535 "$c"
  bah commit -q --rm "$c" "$ref" >/dev/null
  bah push -q "$ref" "oci-archive:$archive.tmp:$ref"
  rm -rf "$tmp"
}

build_base_rootfs() {
  local tar="$1" sources
  mapfile -t sources < <(debian_sources)
  [[ ${#sources[@]} -gt 0 ]] || die "no apt sources for Debian $suite on this machine (/etc/apt/sources.list*)"
  # essential + python3-venv: a venv whose pip the Dockerfile's `pip wheel`/`pip install` use
  # (Debian's own Python is externally managed, PEP 668). Docs, man pages and locales are left out;
  # usr-is-merged stands in for usrmerge, which would pull in perl.
  mmdebstrap --quiet --variant=essential --include=usr-is-merged,python3,python3-venv,ca-certificates \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='chroot "$1" python3 -m venv /opt/venv' \
    --customize-hook='rm -rf "$1"/var/cache/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
    --format=tar "$suite" "$tar.tmp" "${sources[@]}" \
    || { rm -f "$tar.tmp"; die "mmdebstrap failed (see its output above)"; }
  mv -f "$tar.tmp" "$tar"
}

# build_base REF ARCHIVE: the rootfs tar (mmdebstrap) committed as a one-layer image.
build_base() {
  local ref="$1" archive="$2" c m
  local tar="${archive%.tar}.rootfs.tar"
  [[ -f "$tar" ]] || build_base_rootfs "$tar"
  c="$(bah from scratch)"
  m="$(bah mount "$c")"
  tar -C "$m" -xf "$tar"
  bah umount "$c" >/dev/null
  bah config --env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env VIRTUAL_ENV=/opt/venv --env LANG=C.UTF-8 --cmd '["python3"]' "$c"
  bah commit -q --rm "$c" "$ref" >/dev/null
  bah push -q "$ref" "oci-archive:$archive.tmp:$ref"
  rm -f "$tar"
}

# build_target TARGET REF ARCHIVE: one target of the repository's Dockerfile.
build_target() {
  local target="$1" ref="$2" archive="$3"
  bah bud -q --pull=never --network host --layers=false $(build_volumes) --build-arg "PYTHON_IMAGE=$base_ref" \
    --target "$target" -f "$repo/Dockerfile" -t "$ref" "$repo" >/dev/null \
    || die "building the Dockerfile's $target target failed (see buildah's output above)"
  bah push -q "$ref" "oci-archive:$archive.tmp:$ref"
}
build_operator() { build_target operator "$@"; }
build_sidecar() { build_target sidecar "$@"; }

build_app() {
  local ref="$1" archive="$2"
  bah bud -q --pull=never --network host --layers=false $(build_volumes) --build-arg "BASE_IMAGE=$base_ref" \
    --build-arg "PINS=$app_pins" -f "$here/images/app.Containerfile" -t "$ref" "$here/images" >/dev/null \
    || die "building the app image failed (see buildah's output above)"
  bah push -q "$ref" "oci-archive:$archive.tmp:$ref"
}

# ensure NAME KEY BUILDER: build the image unless its archive is cached; make sure
# buildah's storage has it too when later images build FROM it.
ensure() {
  local name="$1" k="$2" builder="$3" ref archive started=$SECONDS
  ref="localhost/rolesanywhere-$name:$k"
  archive="$out/$name-$k.tar"
  if [[ ! -f "$archive" ]]; then
    say "building the $name image (first use or changed inputs) ..."
    rm -f "$archive.tmp"
    "$builder" "$ref" "$archive"
    mv -f "$archive.tmp" "$archive"
    # Only base is built FROM; the others live on as their archives.
    [[ "$name" == base ]] || bah rmi -f "$ref" >/dev/null
    say "built $ref in $((SECONDS - started))s ($(du -h "$archive" | cut -f1))"
  fi
  echo "$name $ref $archive"
}

# base_in_storage: the operator, sidecar and app images build FROM base; reload it from its archive if buildah lost it.
base_in_storage() {
  bah inspect --type image "$base_ref" >/dev/null 2>&1 || bah pull -q "oci-archive:$base_archive" >/dev/null
}

build() {
  for cmd in buildah mmdebstrap gcc; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is missing: run hack/node-deps.sh"
  done
  mkdir -p "$out"
  local pause_key base_key operator_key sidecar_key app_key line
  pause_key="$( { cat "$here/images/pause.c"; recipe build_pause; } | key)"
  base_key="$( { echo "$suite"; recipe build_base build_base_rootfs; } | key)"
  base_ref="localhost/rolesanywhere-base:$base_key"
  base_archive="$out/base-$base_key.tar"
  operator_key="$( { echo "$base_key"; source_key; recipe build_operator build_target; } | key)"
  sidecar_key="$( { echo "$base_key"; source_key; recipe build_sidecar build_target; } | key)"
  app_key="$( { echo "$base_key $app_pins"; cat "$here/images/app.Containerfile"; recipe build_app; } | key)"

  ensure pause "$pause_key" build_pause
  ensure base "$base_key" build_base
  local need_base=0
  [[ -f "$out/operator-$operator_key.tar" && -f "$out/sidecar-$sidecar_key.tar" && -f "$out/app-$app_key.tar" ]] \
    || need_base=1
  [[ $need_base -eq 0 ]] || base_in_storage
  ensure operator "$operator_key" build_operator
  ensure sidecar "$sidecar_key" build_sidecar
  ensure app "$app_key" build_app
}

case "${1:-}" in
  build) build ;;
  *) die "usage: hack/images.sh build" ;;
esac
