#!/usr/bin/env bash
# Creates (or refreshes) the virtualenv the Python agent SDK's tests run in: the pinned test
# requirements from PyPI (every dependency pinned, nothing built), then the SDK itself from sdk/python. Re-installs only when
# sdk/python/pyproject.toml, requirements-test.txt or a source file changed (a stamp file).
# Usage: scripts/sdk-python-venv.sh <venv-dir>
set -euo pipefail
venv="${1:?usage: $0 <venv-dir>}"
cd "$(dirname "$0")/.."
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "python3 lacks venv/ensurepip: install python3-venv (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
stamp="$venv/.warden-sdk-stamp"
want="$(cat sdk/python/pyproject.toml sdk/python/requirements-test.txt e2e/clients/requirements.txt $(find sdk/python/src -name '*.py' | sort) | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --no-deps --only-binary=:all: -r sdk/python/requirements-test.txt
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./sdk/python
echo "$want" > "$stamp"
