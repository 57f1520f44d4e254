#!/usr/bin/env bash
# Creates .venv and installs the project with its test extras and the dev kit (hack/pyproject.toml: the local
# cluster, the harnesses, the emulator, the pytest plugin), both editable; reruns only when a pyproject.toml changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
die() { echo "hack/venv.sh: $*" >&2; exit 1; }

python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "$python is missing: install Python >= 3.11"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$python" --version 2>&1) is too old: Python >= 3.11 is needed (set PYTHON=/path/to/python3.11)"

stamp=.venv/.installed
if [[ -f "$stamp" && "$stamp" -nt pyproject.toml && "$stamp" -nt hack/pyproject.toml ]]; then exit 0; fi
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv 2>/dev/null || die "cannot create .venv: the venv module is missing (on Debian: apt-get install python3-venv)"
fi
log="$(mktemp)"
echo "hack/venv.sh: installing the project, its test dependencies and the dev kit into .venv ..." >&2
if ! .venv/bin/python -m pip install --disable-pip-version-check -q -e '.[test]' -e 'hack[aws,bench]' >"$log" 2>&1; then
  last="$(grep -E 'ERROR|error' "$log" | tail -n 1)"
  rm -f "$log"
  die "cannot install the Python packages from the package index: ${last:-pip failed}"
fi
rm -f "$log"
touch "$stamp"
