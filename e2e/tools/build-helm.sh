#!/usr/bin/env bash
# Builds the helm v3 CLI from its Go module (e2e/tools/helm/go.mod) into a cache
# outside the repository, keyed by version. Rebuilds only when missing.
#   e2e/tools/build-helm.sh          build if missing, print HELM=<path>
# Environment: WARDEN_CACHE_DIR (default ~/.cache/warden)
# Why v3 and not v4: see docs/adr/0009-packaging.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
moddir="$here/helm"
HELM_VERSION="$(awk '/^require helm.sh\/helm\/v3 v/ {print $NF; exit}' "$moddir/go.mod")"
# helm stamps the Kubernetes version it assumes for `helm template` / `helm lint`
# (.Capabilities.KubeVersion) from its client-go minor, as its own Makefile does.
CLIENT_GO="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$moddir/go.mod")"
k8s_minor="${CLIENT_GO#v0.}"; k8s_minor="${k8s_minor%%.*}"
dir="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}/tools/helm-$HELM_VERSION"

log() { printf '[helm] %s\n' "$*" >&2; }

if [ ! -x "$dir/helm" ]; then
  command -v go >/dev/null || { log "Go is required (1.26+) to build helm: https://go.dev/doc/install"; exit 1; }
  mkdir -p "$dir"
  log "building helm $HELM_VERSION from its Go module into $dir"
  log "the first build downloads modules and compiles for a few minutes; later runs reuse the cache"
  start=$SECONDS tmp="$dir/.helm.tmp.$$"
  pkg=helm.sh/helm/v3
  ldflags="-s -w -X $pkg/internal/version.version=$HELM_VERSION -X $pkg/internal/version.gitTreeState=clean"
  ldflags+=" -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
  ldflags+=" -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  (cd "$moddir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg/cmd/helm") &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && log "  still building helm ($((SECONDS - start)) s)"
  done
  wait "$pid" || { rm -f "$tmp"; log "build of helm failed (see the go output above)"; exit 1; }
  mv "$tmp" "$dir/helm"
  log "built helm in $((SECONDS - start)) s"
fi

printf 'HELM=%s\n' "$dir/helm"
