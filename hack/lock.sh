#!/usr/bin/env bash
# Regenerates the images' locks from pyproject.toml: requirements.lock (the runtime dependencies: the operator
# image's), requirements-sidecar.lock (the sidecar image's: those [tool.rolesanywhere.sidecar-image] names, at
# requirements.lock's versions) and requirements-build.lock (the build stage's backend, [build-system]
# requires). Each resolves the ranges to
# exact versions, each with the sha256 of every file the index has for it (any platform), so the Dockerfile's
# `pip install --require-hashes` refuses a file that changed. Existing pins are kept; ARGS=--upgrade moves
# them all to the newest versions the ranges allow (ARGS='--upgrade-package kopf' just one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
die() { echo "hack/lock.sh: $*" >&2; exit 1; }

#: pip-compile, in a venv of its own (.venv-lock) so the project's .venv stays as pyproject.toml says.
PIP_TOOLS_VERSION=7.6.2

# The lock holds what the image's Python resolves to (environment markers), so it is made with that version.
image_python="$(sed -nE 's/^ARG PYTHON_IMAGE=python:([0-9]+\.[0-9]+)-.*/\1/p' Dockerfile)"
[[ -n "$image_python" ]] || die "cannot read the Python version from the Dockerfile's 'ARG PYTHON_IMAGE=python:X.Y-...'"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "$python is missing: install Python $image_python"
have="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$have" == "$image_python" ]] \
  || die "$python is Python $have, but the image runs Python $image_python: set PYTHON=/path/to/python$image_python"

venv=.venv-lock
args=("$@")
if ! "$venv/bin/pip-compile" --version 2>/dev/null | grep -qF "version $PIP_TOOLS_VERSION"; then
  rm -rf "$venv"
  "$python" -m venv "$venv" || die "cannot create $venv: the venv module is missing (on Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q "pip-tools==$PIP_TOOLS_VERSION" \
    || die "cannot install pip-tools $PIP_TOOLS_VERSION from the package index"
fi
compile() {
  # compile SOURCE ARGS...; no local wheel directory from this machine's pip configuration: a lock names only
  # what the index serves.
  local source="$1"; shift
  env -u PIP_FIND_LINKS CUSTOM_COMPILE_COMMAND="make lock" "$venv/bin/pip-compile" --quiet --generate-hashes \
    --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links "$@" "$source" \
    || die "pip-compile failed (its output above)"
}
compile pyproject.toml --output-file requirements.lock "${args[@]}"
# The sidecar image's: pyproject's requirement for each name [tool.rolesanywhere.sidecar-image] lists (the
# ranges are written once, in [project] dependencies), constrained to requirements.lock so both images run
# the same releases.
sidecar_requirements() {
  "$python" - pyproject.toml <<'PY' || die "cannot read [tool.rolesanywhere.sidecar-image] from pyproject.toml"
import re, sys, tomllib
pyproject = tomllib.load(open(sys.argv[1], "rb"))
declared = {re.match(r"[A-Za-z0-9._-]+", text)[0].lower(): text for text in pyproject["project"]["dependencies"]}
for name in pyproject["tool"]["rolesanywhere"]["sidecar-image"]["dependencies"]:
    print(declared[name.lower()])  # a KeyError: a name that is not among [project] dependencies
PY
}
requirements="$(sidecar_requirements)"
compile - --constraint requirements.lock --output-file requirements-sidecar.lock "${args[@]}" <<<"$requirements"
# The build backend that makes the project's wheel in the image's build stage ([build-system] requires).
compile pyproject.toml --all-build-deps --only-build-deps --output-file requirements-build.lock "${args[@]}"
