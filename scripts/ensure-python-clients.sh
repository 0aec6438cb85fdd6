#!/usr/bin/env bash
# The Python MCP SDK for the standard-clients test (e2e/mcp-clients.e2e.test.ts): a venv under
# ~/.cache/warden/python-clients/<hash of e2e/clients/requirements.txt> with exactly the pinned
# packages (--no-deps: nothing unpinned comes in; --only-binary: no package builds code on this
# machine). Prints the venv's python on stdout; idempotent (a finished venv has a .ok stamp).
# Needs python3 >= 3.11 with the venv module (Debian: python3-venv; .ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

req=e2e/clients/requirements.txt
python=${WARDEN_PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "python3 is missing: install it (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "$("$python" --version 2>&1) is too old for the MCP SDK client test: Python 3.11 or newer is needed (set WARDEN_PYTHON)" >&2
  exit 1
fi
hash=$(sha256sum "$req" | cut -c1-16)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/warden/python-clients/$hash"
if [ ! -f "$venv/.ok" ]; then
  if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    echo "the Python venv module is missing: install it (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
  echo "Installing the Python MCP SDK ($(grep '^mcp==' "$req")) into $venv ..." >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --no-deps --only-binary=:all: -r "$req" >&2
  "$venv/bin/python" -c 'import mcp.client' >&2
  touch "$venv/.ok"
fi
echo "$venv/bin/python"
