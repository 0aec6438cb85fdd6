# Warden — `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json

# Every target runs under the Node.js that scripts/ensure-node.sh provides: the node on PATH when it
# is at least the major in .node-version, else the pinned version bootstrapped (checksum-verified)
# into ~/.cache/warden/node/<version>. Its directory goes first on PATH, so npm, npx and every
# `#!/usr/bin/env node` script run on it too (the system npm works under a newer node).
NODE_INFO := $(shell scripts/ensure-node.sh)
ifneq ($(.SHELLSTATUS),0)
$(error Node.js $(shell cat .node-version) is not available (the reason is printed above))
endif
NODE_BIN := $(word 1,$(NODE_INFO))
export PATH := $(patsubst %/,%,$(dir $(NODE_BIN))):$(PATH)

##@ Getting started

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: demo
demo: needs-root deps cluster-build helm-build postgres ## Run the story on a real single-node cluster: helm install, injected pods (root; else use demo-local)
	npx tsx e2e/cluster/demo.ts

.PHONY: needs-root
needs-root:
	@if [ "$$(id -u)" -ne 0 ]; then echo "This target runs a real single-node cluster and needs root (network namespace, cgroups, mounts) and a Linux kernel with overlayfs, veth, bridge and netfilter. Run it as root, or run 'make demo-local' (the story with host processes, no root) or 'make test-unit test-integration test-demo' (everything but the real node)." >&2; exit 2; fi

.PHONY: demo-local
demo-local: deps controlplane-build postgres ## Run the story with host processes around an embedded local control plane (no root, no containers)
	npx tsx e2e/demo/demo.ts

.PHONY: controlplane
controlplane: deps controlplane-build ## Start a local kube-apiserver + etcd in the foreground and print KUBECONFIG
	npx tsx e2e/controlplane/cli.ts

.PHONY: which-node
which-node: ## Print "<path-to-node> <version>" of the Node.js every target runs under
	@echo "$(NODE_INFO)"

.PHONY: cluster
cluster: needs-root deps cluster-build helm-build ## Start a real single-node cluster (kubelet, containerd; root) in the foreground, push the images, print KUBECONFIG
	npx tsx e2e/cluster/cli.ts

##@ Development

deps: $(NPM_STAMP) ## Install npm dependencies (npm ci) when the lockfile changed

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: controlplane-build
controlplane-build: ## Build kube-apiserver and etcd from their Go modules (cached in ~/.cache/warden)
	e2e/controlplane/build.sh >/dev/null

.PHONY: postgres
postgres: ## Install PostgreSQL server binaries (Debian package) when missing: the harness starts its own server
	scripts/ensure-postgres.sh

.PHONY: python-clients
python-clients: ## Install the Python MCP SDK the standard-clients test drives the broker with (a venv in ~/.cache/warden)
	scripts/ensure-python-clients.sh >/dev/null

.PHONY: cluster-build
cluster-build: controlplane-build ## Install containerd, runc, CNI plugins, iptables (Debian) and build kubelet, kube-proxy, controller-manager, scheduler, CoreDNS, registry (cached)
	scripts/ensure-cluster-packages.sh
	e2e/cluster/build.sh >/dev/null

.PHONY: helm-build
helm-build: ## Build helm from its Go module (cached in ~/.cache/warden/tools)
	e2e/tools/build-helm.sh >/dev/null

.PHONY: otelcol-build
otelcol-build: ## Build a minimal OpenTelemetry Collector (OTLP receiver + file exporter) from its Go modules (cached in ~/.cache/warden/tools)
	e2e/tools/build-otelcol.sh >/dev/null

.PHONY: registry-build
registry-build: ## Build the CNCF distribution registry (an OCI registry, for the signed-image tests) from its Go module (cached in ~/.cache/warden/tools)
	e2e/tools/build-registry.sh >/dev/null

.PHONY: minio-build
minio-build: ## Build the MinIO server (S3 + OpenID STS, a test harness only: AGPL, never shipped) from its Go module (cached in ~/.cache/warden/tools)
	e2e/tools/build-minio.sh >/dev/null

.PHONY: generate
generate: deps ## Generate TypeScript types (and chart CRDs) from crds/
	npx tsx scripts/generate.ts

.PHONY: verify
verify: deps ## Regenerate and fail if generated files differ from what is committed
	scripts/verify-generated.sh

.PHONY: format
format: deps ## Format and apply safe lint fixes
	npx biome check --write .

.PHONY: build
build: deps ## Compile TypeScript to dist/ (dist/cli/kubectl-warden.js is an executable kubectl plugin)
	npx tsc -p tsconfig.build.json
	scripts/finish-build.sh dist

##@ Deploying (needs Docker)

.PHONY: kind-up
kind-up: ## Create a kind cluster for Warden (needs Docker and kind)
	scripts/kind-up.sh

.PHONY: deploy
deploy: ## Build the image, load it into kind and helm install Warden
	scripts/deploy.sh

##@ Testing

.PHONY: test
test: needs-root deps controlplane-build cluster-build helm-build postgres python-clients typecheck lint verify test-unit test-integration test-sdk-python test-cluster test-demo ## Typecheck, lint, verify generated files, unit, integration/e2e tests, the Python SDK's tests, the real-node suite (root) and the demo

.PHONY: typecheck
typecheck: deps ## tsc --noEmit
	npx tsc --noEmit

.PHONY: lint
lint: deps ## Lint and check formatting (biome); check the layering of imports (docs/conventions.md §1)
	npx biome check .
	npx tsx scripts/import-graph.ts

.PHONY: test-unit
test-unit: deps ## Unit tests (no control plane)
	npx vitest run --project unit

.PHONY: test-integration
test-integration: deps controlplane-build helm-build otelcol-build registry-build minio-build postgres python-clients ## Integration and e2e tests against a real local control plane
	npx vitest run --project integration

.PHONY: test-sdk-python
test-sdk-python: deps controlplane-build ## The Python agent SDK (sdk/python) in its own venv (pinned deps from PyPI), against the real broker and the real gateway
	scripts/sdk-python-venv.sh .venv-sdk-python
	cd sdk/python && ../../.venv-sdk-python/bin/python -m unittest discover -s tests -v

.PHONY: test-cluster
test-cluster: needs-root deps cluster-build helm-build postgres ## The real-node suite (e2e/cluster): helm install on a real single-node cluster (root)
	npx vitest run --project cluster

.PHONY: test-demo
test-demo: deps controlplane-build postgres ## The demo as a smoke test (fails if any step of the story fails), with the optional gateway step
	WARDEN_DEMO_GATEWAY=1 npx tsx e2e/demo/demo.ts

.PHONY: bench
bench: deps controlplane-build postgres ## Run the benchmarks; writes bench/results/latest.{json,md,svg} and the growth-*.svg plots (docs/benchmarks.md)
	npx tsx bench/run.ts
