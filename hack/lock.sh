#!/usr/bin/env bash
# Regenerates the image's locks from pyproject.toml: requirements.lock (the runtime dependencies) and
# requirements-build.lock (the build stage's backend, [build-system] requires). Each resolves the ranges to
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
  # No local wheel directory from this machine's pip configuration: a lock names only what the index serves.
  env -u PIP_FIND_LINKS CUSTOM_COMPILE_COMMAND="make lock" "$venv/bin/pip-compile" --quiet --generate-hashes \
    --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links "$@" pyproject.toml \
    || die "pip-compile failed (its output above)"
}
compile --output-file requirements.lock "${args[@]}"
# The build backend that makes the project's wheel in the image's build stage ([build-system] requires).
compile --all-build-deps --only-build-deps --output-file requirements-build.lock "${args[@]}"
