#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from their Go modules into a cache outside the
# repository, keyed by version. Rebuilds only what is missing.
#   e2e/controlplane/build.sh            build if missing, print the bin dir
# Environment: WARDEN_CACHE_DIR (default ~/.cache/warden)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBE_VERSION="v1.36.3"
ETCD_VERSION="$(awk '/go.etcd.io\/etcd\/server\/v3 v/ {print $NF; exit}' "$here/etcd/go.mod")"
cache="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}/controlplane"
kdir="$cache/kubernetes-$KUBE_VERSION"
edir="$cache/etcd-$ETCD_VERSION"

log() { printf '[controlplane] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required (1.26+) to build kube-apiserver and etcd: https://go.dev/doc/install"; exit 1; }

build() { # name dir module-dir package ldflags
  local name="$1" dir="$2" moddir="$3" pkg="$4" ldflags="$5"
  if [ -x "$dir/$name" ]; then return 0; fi
  mkdir -p "$dir"
  log "building $name from its Go module into $dir"
  log "the first build downloads modules and compiles for several minutes; later runs reuse the cache"
  local start=$SECONDS tmp="$dir/.$name.tmp.$$"
  # -p bounds parallel compiles so a 2-core machine stays responsive.
  (cd "$moddir" && go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg") &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && log "  still building $name ($((SECONDS - start)) s)"
  done
  wait "$pid" || { rm -f "$tmp"; log "build of $name failed (see the go output above)"; exit 1; }
  mv "$tmp" "$dir/$name"
  log "built $name in $((SECONDS - start)) s"
}

minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
build etcd "$edir" "$here/etcd" go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver "$kdir" "$here/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
  "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

# kubectl of the same version, so tests and the demo use a client without version skew.
build kubectl "$kdir" "$here/kube-apiserver" k8s.io/kubernetes/cmd/kubectl \
  "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

printf 'KUBE_APISERVER=%s\nETCD=%s\nKUBECTL=%s\n' "$kdir/kube-apiserver" "$edir/etcd" "$kdir/kubectl"
