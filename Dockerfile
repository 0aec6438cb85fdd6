# syntax=docker/dockerfile:1
# One image, one entry point: `warden controller` (operator + webhook + authority)
# and `warden broker` (the sidecar the webhook injects). docs/adr/0009-packaging.md.
#
#   docker build -t warden:dev .
#   docker run --rm warden:dev --help
#
# The two Node stages produce architecture-independent output (compiled JavaScript
# and pure-JS dependencies: none has a native addon), so they run on the build
# platform and only the final stage is per target: `docker buildx build
# --platform linux/amd64,linux/arm64` needs no emulation.

# Node 24 LTS, the major .node-version pins (the exact patch follows the tags).
ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# --- build: compile TypeScript to dist/ (what `make build` runs) ---------------
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The sources (.dockerignore keeps tests, docs, charts and e2e harnesses out).
COPY . .
RUN npx tsc -p tsconfig.build.json

# --- deps: production dependencies only -----------------------------------------
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no runtime dependency needs an install script, and none should
# run code at build time.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: distroless Node 24, no shell, no package manager, non-root ---------
FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="warden" \
      org.opencontainers.image.description="Kubernetes-native identity and access management for AI agents" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
WORKDIR /app
ENV NODE_ENV=production
# package.json carries "type": "module", which Node needs to load dist/ as ESM.
COPY --from=deps /src/package.json ./package.json
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# cli/warden.ts reads its version from '../package.json' relative to itself, which
# in the compiled tree is dist/package.json.
COPY --from=deps /src/package.json ./dist/package.json
# 65532 = "nonroot" in distroless; numeric so the kubelet can verify runAsNonRoot.
# The chart and the injected broker both run as this UID.
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli/warden.js"]
CMD ["--help"]
