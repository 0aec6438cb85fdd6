#!/usr/bin/env bash
# Creates a local kind cluster for Warden (needs Docker and kind; not used by the
# tests, which run on the embedded control plane). Idempotent: an existing cluster
# of the same name is reused.
#   scripts/kind-up.sh                    create (or reuse) the cluster "warden"
# Environment:
#   KIND_CLUSTER     cluster name (default: warden)
#   KIND_NODE_IMAGE  node image, e.g. kindest/node:v1.33.1 (default: kind's own; Warden needs >= 1.30)
#   KIND_WORKERS     worker nodes (default: 2, so the controller's two replicas land on different nodes)
# Next: scripts/deploy.sh (or `make deploy`). docs/runbook.md has the whole walk-through.
set -euo pipefail

cluster="${KIND_CLUSTER:-warden}"
workers="${KIND_WORKERS:-2}"
log() { printf '[kind-up] %s\n' "$*" >&2; }

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { log "$tool is required: see docs/runbook.md (Install on kind)"; exit 1; }
done
docker info >/dev/null 2>&1 || { log "the Docker engine is not reachable (docker info failed); start Docker and retry"; exit 1; }

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "cluster $cluster exists; reusing it"
else
  config="$(mktemp)"
  trap 'rm -f "$config"' EXIT
  {
    echo 'kind: Cluster'
    echo 'apiVersion: kind.x-k8s.io/v1alpha4'
    echo 'nodes:'
    echo '  - role: control-plane'
    for _ in $(seq 1 "$workers"); do echo '  - role: worker'; done
  } >"$config"
  args=(create cluster --name "$cluster" --config "$config" --wait 120s)
  [ -n "${KIND_NODE_IMAGE:-}" ] && args+=(--image "$KIND_NODE_IMAGE")
  log "creating cluster $cluster (1 control plane, $workers workers)"
  kind "${args[@]}"
fi

kubectl config use-context "kind-$cluster" >/dev/null
kubectl wait --for=condition=Ready nodes --all --timeout=120s >/dev/null
log "cluster $cluster is ready (kubectl context kind-$cluster)"
log "next: scripts/deploy.sh"
