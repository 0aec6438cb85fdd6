#!/usr/bin/env bash
# Builds the MinIO server from its Go module (github.com/minio/minio at a pinned pseudo-version)
# into a cache outside the repository, keyed by version. Rebuilds only when missing. The AWS
# credential tests run it as an S3 + STS endpoint on loopback: it verifies Warden's OIDC token
# (AssumeRoleWithWebIdentity) and the broker's SigV4 signatures (e2e/aws-sigv4.e2e.test.ts).
# MinIO is AGPL-3.0: it is only built and run here as a test harness binary, never shipped with,
# linked into or copied into Warden (docs/adr/0017-aws-web-identity-sigv4.md).
#   e2e/tools/build-minio.sh       build if missing, print MINIO=<path>
# Environment: WARDEN_CACHE_DIR (default ~/.cache/warden)
set -euo pipefail

MODULE=github.com/minio/minio
VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
dir="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}/tools/minio-$VERSION"

log() { printf '[minio] %s\n' "$*" >&2; }

if [ ! -x "$dir/minio" ]; then
  command -v go >/dev/null || { log "Go is required (1.24+) to build MinIO: https://go.dev/doc/install"; exit 1; }
  mkdir -p "$dir"
  log "building the MinIO server $VERSION into $dir"
  log "the first build downloads modules and compiles for 10+ minutes; later runs reuse the cache"
  start=$SECONDS bin="$dir/.bin.$$"
  # go install builds the module's main package exactly as its go.mod pins its dependencies;
  # GOBIN keeps the binary out of ~/go/bin, nice keeps a shared machine responsive.
  (GOBIN="$bin" CGO_ENABLED=0 nice -n 10 go install -trimpath -ldflags "-s -w" "$MODULE@$VERSION") &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && log "  still building MinIO ($((SECONDS - start)) s)"
  done
  wait "$pid" || { rm -rf "$bin"; log "build of MinIO failed (see the go output above)"; exit 1; }
  mv "$bin/minio" "$dir/minio"
  rm -rf "$bin"
  log "built MinIO in $((SECONDS - start)) s"
fi

printf 'MINIO=%s\n' "$dir/minio"
