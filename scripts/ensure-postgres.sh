#!/usr/bin/env bash
# PostgreSQL server binaries for the tests, the demo and the benchmarks: the harness starts its
# own throwaway server from /usr/lib/postgresql/<version>/bin (or $WARDEN_PG_BINDIR), so only the
# Debian package is needed, not a running service. Installs it with apt-get when it is missing.
set -euo pipefail

if [ -n "${WARDEN_PG_BINDIR:-}" ] && [ -x "${WARDEN_PG_BINDIR}/postgres" ]; then exit 0; fi
if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then exit 0; fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    echo "PostgreSQL server binaries are missing and this user cannot install them." >&2
    echo "Install them with:  sudo apt-get install postgresql   (or set WARDEN_PG_BINDIR to a bin/ with postgres and initdb)" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "PostgreSQL server binaries are missing and apt-get is not available here." >&2
  echo "Install PostgreSQL 13 or newer and set WARDEN_PG_BINDIR to its bin/ directory." >&2
  exit 1
fi
echo "Installing PostgreSQL (Debian package) for the test harness..." >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/postgres >/dev/null
