#!/usr/bin/env bash
# Builds the Warden image, loads it into the kind cluster and installs (or upgrades)
# the Helm chart. Needs Docker, kind, kubectl; helm is taken from PATH or built from
# its Go module by e2e/tools/build-helm.sh.
#   scripts/deploy.sh [extra helm args...]   e.g. scripts/deploy.sh --set certificates.source=certManager
# Environment:
#   KIND_CLUSTER   cluster name (default: warden)
#   NAMESPACE      release namespace (default: warden-system)
#   RELEASE        release name (default: warden)
#   IMAGE          image name:tag to build and load (default: warden:dev)
#   SKIP_BUILD=1   reuse an image already built
# docs/runbook.md explains each step.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="${KIND_CLUSTER:-warden}"
namespace="${NAMESPACE:-warden-system}"
release="${RELEASE:-warden}"
image="${IMAGE:-warden:dev}"
repo="${image%:*}" tag="${image##*:}"
log() { printf '[deploy] %s\n' "$*" >&2; }

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { log "$tool is required: see docs/runbook.md (Install on kind)"; exit 1; }
done
kind get clusters 2>/dev/null | grep -qx "$cluster" || { log "no kind cluster named $cluster; run scripts/kind-up.sh first"; exit 1; }
helm="$(command -v helm || true)"
if [ -z "$helm" ]; then
  helm="$("$root/e2e/tools/build-helm.sh" | sed -n 's/^HELM=//p')"
fi

if [ "${SKIP_BUILD:-}" != 1 ]; then
  log "building image $image"
  version="$(node -p "require('$root/package.json').version" 2>/dev/null || echo dev)"
  docker build --build-arg "VERSION=$version" -t "$image" "$root"
fi
log "loading $image into kind cluster $cluster"
kind load docker-image "$image" --name "$cluster"

ctx="kind-$cluster"
# Helm installs crds/ only on first install and never upgrades them; apply them
# server-side first so an upgrade gets schema changes too.
log "applying CRDs"
kubectl --context "$ctx" apply --server-side --force-conflicts -f "$root/charts/warden/crds" >/dev/null
kubectl --context "$ctx" wait --for=condition=Established --timeout=60s -f "$root/charts/warden/crds" >/dev/null

log "installing chart as release $release in namespace $namespace"
# The image exists only inside the kind nodes: the controller never pulls it, and
# the injected broker (same image, a non-"latest" tag, IfNotPresent) finds it there.
"$helm" upgrade --install "$release" "$root/charts/warden" \
  --kube-context "$ctx" --namespace "$namespace" --create-namespace \
  --set image.repository="$repo" --set image.tag="$tag" --set image.pullPolicy=Never \
  --wait --timeout 5m "$@"

# --wait above returns once the Deployment is available; show what runs.
kubectl --context "$ctx" -n "$namespace" get pods -l "app.kubernetes.io/instance=$release" -o wide
log "Warden is running. Try: kubectl apply -f samples/ ; kubectl get agentidentities -A"
