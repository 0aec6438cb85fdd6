#!/usr/bin/env bash
# Builds the CNCF distribution registry (an OCI registry, cmd/registry) from its Go module into a
# cache outside the repository, keyed by version. Rebuilds only when missing. The version is the
# one the real-node harness pins (e2e/cluster/registry/go.mod): one registry version in the tree,
# built here without the rest of the cluster (no root, no Debian packages). The signed-image attestation tests push images and cosign-format signatures
# to it on loopback (authority/image-signature.int.test.ts).
#   e2e/tools/build-registry.sh      build if missing, print REGISTRY=<path>
# Environment: WARDEN_CACHE_DIR (default ~/.cache/warden)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
moddir="$here/../cluster/registry"
VERSION="$(awk '$1 == "require" && $2 == "github.com/distribution/distribution/v3" {print $3; exit}' "$moddir/go.mod")"
[ -n "$VERSION" ] || { printf '[registry] no distribution version in %s\n' "$moddir/go.mod" >&2; exit 1; }
dir="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}/tools/registry-$VERSION"

log() { printf '[registry] %s\n' "$*" >&2; }

if [ ! -x "$dir/registry" ]; then
  command -v go >/dev/null || { log "Go is required (1.26+) to build the registry: https://go.dev/doc/install"; exit 1; }
  mkdir -p "$dir"
  log "building the distribution registry $VERSION from its Go module into $dir"
  log "the first build downloads modules and compiles for a few minutes; later runs reuse the cache"
  start=$SECONDS tmp="$dir/.registry.tmp.$$"
  (cd "$moddir" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$tmp" \
    github.com/distribution/distribution/v3/cmd/registry) &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && log "  still building the registry ($((SECONDS - start)) s)"
  done
  wait "$pid" || { rm -f "$tmp"; log "build of the registry failed (see the go output above)"; exit 1; }
  mv "$tmp" "$dir/registry"
  log "built the registry in $((SECONDS - start)) s"
fi

printf 'REGISTRY=%s\n' "$dir/registry"
