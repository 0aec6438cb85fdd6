#!/usr/bin/env bash
# Builds what the real-node cluster harness (e2e/cluster) runs besides the control plane
# of e2e/controlplane/build.sh: kubelet, kube-proxy, kube-controller-manager and
# kube-scheduler (same k8s.io/kubernetes version as kube-apiserver), CoreDNS, the CNCF
# distribution registry and the pod sandbox (pause) binary, each from its Go module into a
# cache outside the repository keyed by version. Rebuilds only what is missing.
#   e2e/cluster/build.sh            build if missing, print NAME=<path> lines
# Environment: WARDEN_CACHE_DIR (default ~/.cache/warden)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod_version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$1/go.mod"; }
KUBE_VERSION="$(mod_version "$here/node" k8s.io/kubernetes)"
APISERVER_KUBE_VERSION="$(mod_version "$here/../controlplane/kube-apiserver" k8s.io/kubernetes)"
COREDNS_VERSION="$(mod_version "$here/coredns" github.com/coredns/coredns)"
REGISTRY_VERSION="$(mod_version "$here/registry" github.com/distribution/distribution/v3)"
cache="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}"
kdir="$cache/cluster/kubernetes-$KUBE_VERSION"
ddir="$cache/cluster/coredns-$COREDNS_VERSION"
rdir="$cache/cluster/registry-$REGISTRY_VERSION"
pdir="$cache/cluster/pause-$(sha256sum "$here/pause/main.go" | cut -c1-12)"

log() { printf '[cluster] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required (1.26+) to build the node components: https://go.dev/doc/install"; exit 1; }
if [ "$KUBE_VERSION" != "$APISERVER_KUBE_VERSION" ]; then
  log "e2e/cluster/node/go.mod pins k8s.io/kubernetes $KUBE_VERSION but e2e/controlplane/kube-apiserver/go.mod pins $APISERVER_KUBE_VERSION: keep them equal (version skew between kubelet and API server)"
  exit 1
fi

build() { # dir module-dir ldflags cgo packages...
  local dir="$1" moddir="$2" ldflags="$3" cgo="$4"; shift 4
  local missing=() pkg
  for pkg in "$@"; do [ -x "$dir/${pkg##*/}" ] || missing+=("$pkg"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  mkdir -p "$dir"
  local names="${missing[*]##*/}"
  log "building $names from Go modules into $dir"
  log "the first build downloads modules and compiles for several minutes; later runs reuse the cache"
  local start=$SECONDS tmp="$dir/.tmp.$$"
  mkdir -p "$tmp"
  (cd "$moddir" && CGO_ENABLED="$cgo" go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${missing[@]}") &
  local pid=$!
  local next=15
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - start)) -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      log "  still building $names ($((SECONDS - start)) s)"
      next=$((next + 15))
    fi
  done
  wait "$pid" || { rm -rf "$tmp"; log "build of $names failed (see the go output above)"; exit 1; }
  for pkg in "${missing[@]}"; do mv "$tmp/${pkg##*/}" "$dir/"; done
  rm -rf "$tmp"
  log "built $names in $((SECONDS - start)) s"
}

minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
# The pause binary first (seconds), then the registry (about a minute), then the
# Kubernetes components (several minutes), then CoreDNS (the most modules).
build "$pdir" "$here/pause" "-s -w" 0 warden.dev/cluster/pause
build "$rdir" "$here/registry" "-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION" 0 \
  github.com/distribution/distribution/v3/cmd/registry
build "$kdir" "$here/node" "$kube_ldflags" 1 \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
build "$ddir" "$here/coredns" "-s -w" 0 github.com/coredns/coredns

printf 'KUBELET=%s\nKUBE_PROXY=%s\nKUBE_CONTROLLER_MANAGER=%s\nKUBE_SCHEDULER=%s\nCOREDNS=%s\nREGISTRY=%s\nPAUSE=%s\n' \
  "$kdir/kubelet" "$kdir/kube-proxy" "$kdir/kube-controller-manager" "$kdir/kube-scheduler" \
  "$ddir/coredns" "$rdir/registry" "$pdir/pause"
