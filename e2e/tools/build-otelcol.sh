#!/usr/bin/env bash
# Builds a minimal OpenTelemetry Collector (OTLP receiver + file exporter) from its Go modules
# (e2e/tools/otelcol/go.mod) into a cache outside the repository, keyed by version. Rebuilds only
# when missing. The audit export test sends OTLP logs to it (audit/otlp.int.test.ts).
#   e2e/tools/build-otelcol.sh       build if missing, print OTELCOL=<path>
# Environment: WARDEN_CACHE_DIR (default ~/.cache/warden)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
moddir="$here/otelcol"
VERSION="$(awk '$1 == "go.opentelemetry.io/collector/otelcol" {print $2; exit}' "$moddir/go.mod")"
dir="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}/tools/otelcol-$VERSION"

log() { printf '[otelcol] %s\n' "$*" >&2; }

if [ ! -x "$dir/warden-otelcol" ]; then
  command -v go >/dev/null || { log "Go is required (1.26+) to build the collector: https://go.dev/doc/install"; exit 1; }
  mkdir -p "$dir"
  log "building the OpenTelemetry Collector $VERSION (OTLP receiver, file exporter) into $dir"
  log "the first build downloads modules and compiles for a few minutes; later runs reuse the cache"
  start=$SECONDS tmp="$dir/.otelcol.tmp.$$"
  (cd "$moddir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp" .) &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && log "  still building the collector ($((SECONDS - start)) s)"
  done
  wait "$pid" || { rm -f "$tmp"; log "build of the collector failed (see the go output above)"; exit 1; }
  mv "$tmp" "$dir/warden-otelcol"
  log "built the collector in $((SECONDS - start)) s"
fi

printf 'OTELCOL=%s\n' "$dir/warden-otelcol"
