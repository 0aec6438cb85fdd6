#!/usr/bin/env bash
# `make verify`: regenerates everything derived from crds/ (scripts/generate.ts) in
# the working tree and fails if the result differs from what git has — i.e. someone
# edited a CRD without running `make generate`, or hand-edited a generated file.
# Untracked new generated files (a new kind) count as a difference too.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"

# Keep in sync with the outputs of scripts/generate.ts.
GENERATED=(core/api/generated charts/warden/crds docs/crd-reference.md)

npx tsx scripts/generate.ts >/dev/null

# --porcelain lists modified, deleted and untracked (??) paths; -uall lists each
# untracked file rather than only its directory.
changed="$(git status --porcelain -uall -- "${GENERATED[@]}")"
if [ -z "$changed" ]; then
  echo "verify: generated files are up to date with crds/"
  exit 0
fi

{
  echo "verify: FAILED — these generated files differ from git after regenerating from crds/:"
  echo "$changed" | sed 's/^/  /'
  echo
  git --no-pager diff --stat -- "${GENERATED[@]}" || true
  echo
  echo "Fix: run 'make generate' and commit the result together with your crds/ change"
  echo "(never edit core/api/generated/, charts/warden/crds/ or docs/crd-reference.md by hand)."
} >&2
exit 1
