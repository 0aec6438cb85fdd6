/**
 * Builds the authority on the process's API client and shared cache (a Manager's): key store, token
 * reviewer, sessions, user-token verifier, handlers and the HTTP server. The `warden controller`
 * entry point calls createAuthority() with its Manager's client and cache; the authority makes no
 * API client of its own there (a standalone authority, in tests, makes exactly one).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { type Logger, pino } from 'pino';
import type { BrokerExpectation } from '../core/identity/broker-pod.js';
import { SharedCache } from '../kube/cache.js';
import { type KubeApi, KubeConfigApi } from '../kube/kube.js';
import type { WardenMetrics } from '../observability/metrics.js';
import { ApiTokenReviewer, CachedTokenReviewer } from './attest.js';
import { type AuditSink, PinoAuditSink } from './audit.js';
import {
  type BrokerAuditTrail,
  type BrokerEventSink,
  handleAudit,
  LogBrokerEventSink,
} from './audit-endpoint.js';
import { handleCredentials } from './credentials.js';
import type { FetchLike } from './fetch.js';
import { type ImageSignatureVerifier, RegistrySignatureVerifier } from './image-signatures.js';
import { handleIntrospect, liveAgentState } from './introspect.js';
import type { Issued } from './issuance-stats.js';
import { apiProviderGetter, type IssuanceDeps } from './issue.js';
import type { RotationPolicy } from './keys.js';
import { SecretKeyStore } from './keystore.js';
import { type AgentIdentityGetter, ApiKube, type PodGetter, WatchedPods } from './kube.js';
import { createMinters, type MinterRegistry } from './mint/index.js';
import { kubeSecretsReader } from './mint/secrets.js';
import { InformerPolicyStore } from './policy-store.js';
import { handleQuota, QuotaLedger } from './quota.js';
import { DEFAULT_RATE_LIMIT, FailureRateLimiter, type RateLimitOptions } from './ratelimit.js';
import type { IssuedCredentials } from './revocation.js';
import { createAuthorityServer } from './server.js';
import { Sessions } from './session.js';
import { handleStream } from './stream.js';
import { type Attested, handleTokenExchange } from './token.js';
import { UserTokenVerifier } from './user-token.js';

export interface AuthorityOptions {
  /** Only without `kube` (a standalone authority, tests): its one API client is made from it. */
  kubeConfig?: KubeConfig;
  /** Namespace of the signing-key Secret (Warden's own namespace). */
  namespace: string;
  /** Issuer URL: how brokers and targets reach the authority (https in production). */
  issuer: string;
  /**
   * Broker images a pod's `warden-broker` container may run to attest: the image the webhook
   * injects, plus (during an upgrade) the ones running pods were injected with. The broker's
   * `--authority-url` must be `issuer`. Pods without that broker get no session.
   */
  trustedBrokerImages: readonly string[];
  log?: Logger;
  audit?: AuditSink;
  rateLimit?: RateLimitOptions;
  keyRotation?: RotationPolicy;
  /** HTTP client for identity providers (e.g. httpsFetch({ca}) for a private CA). */
  idpFetch?: FetchLike;
  tls?: Parameters<typeof createAuthorityServer>[0]['tls'];
  /**
   * How attestation finds the token's pod: 'watch' (default) — from a watch of agent pods, read
   * live on a miss, a UID other than the token's, a terminating pod or a reconnecting watch
   * (authority/kube.ts watchedPodAnswers), so no API call per exchange; 'live' — a GET on every
   * exchange, which also closes the watch-latency window for a force-deleted pod (docs/adr/0006).
   */
  podLookup?: 'live' | 'watch';
  /** Watch AgentIdentities/AccessPolicies (and agent pods) in this namespace only (default: all). */
  watchNamespace?: string;
  /**
   * The process's API client and shared cache (a Manager's): TokenReviews, pod and Secret reads,
   * the signing-key Secret and the policy store all go through them (one client, one keep-alive
   * agent, one watch per resource in the process); the cache's owner starts and stops it.
   * Absent: the authority makes one client and cache from `kubeConfig` (standalone, tests).
   */
  kube?: { api: KubeApi; cache: SharedCache };
  /**
   * The audit trail POST /v1/audit admits broker events to: the one dedupe by entry id; it exports and
   * persists what it meets for the first time. Default: every event is new and goes to the sinks only.
   */
  brokerAuditTrail?: BrokerAuditTrail;
  /**
   * Who else reads broker audit events (decision counters, the circuit breaker, tool usage): given
   * only the events the trail admitted as new, so each entry is counted once. Default: log lines.
   */
  brokerAuditSinks?: BrokerEventSink[];
  /** Where issued, revocable credentials are remembered for the kill switch (shared with the revoker). */
  issuedCredentials?: IssuedCredentials;
  /** Minters (default: createMinters with this issuer and key store). */
  minters?: MinterRegistry;
  /** The process's metrics (token exchanges, credential decisions, credentials issued); absent = none. */
  metrics?: WardenMetrics;
  /** Told of every successful attestation (the controller writes status.lastAttestation). */
  onAttested?: (a: Attested) => void;
  /**
   * Service accounts of the shared gateway (`system:serviceaccount:<ns>:<name>`): only these may
   * hold sessions for agents without a sidecar (token.ts). Empty: no gateway.
   */
  gatewayServiceAccounts?: readonly string[];
  /** Told of every credential issued at /v1/credentials (the controller writes status.issuedCount). */
  onIssued?: (i: Issued) => void;
  /** Verifies running images' cosign signatures (spec.attestation.images.signatures); default: the images' registries. */
  imageSignatures?: ImageSignatureVerifier;
}

/** The pieces other endpoints build on. */
export interface AuthorityParts {
  issuer: string;
  sessions: Sessions;
  keys: SecretKeyStore;
  reviewer: CachedTokenReviewer;
  pods: PodGetter;
  identities: AgentIdentityGetter;
  userTokens: UserTokenVerifier;
  audit: AuditSink;
  limiter: FailureRateLimiter;
  log: Logger;
  store: InformerPolicyStore;
  /** Credential minting after an Allow at /v1/credentials. */
  issuance: IssuanceDeps;
  metrics?: WardenMetrics | undefined;
  onAttested?: ((a: Attested) => void) | undefined;
  onIssued?: ((i: Issued) => void) | undefined;
  /** The broker a pod must carry to attest. */
  broker: BrokerExpectation;
  /** The shared gateway's service accounts (token.ts gateway sessions). */
  gateway: { readonly serviceAccounts: readonly string[] };
  /** Running images' signature checks at attestation (image-signatures.ts). */
  imageSignatures: ImageSignatureVerifier;
}

export interface Authority extends AuthorityParts {
  server: Server;
  /** Listens on host:port (0 = any free port) and returns the bound port. */
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

function standaloneApi(kubeConfig: KubeConfig | undefined): KubeApi {
  if (!kubeConfig)
    throw new Error("createAuthority: pass kube (the Manager's client and cache) or a kubeConfig");
  return new KubeConfigApi(kubeConfig);
}

export async function createAuthority(opts: AuthorityOptions): Promise<Authority> {
  const log =
    opts.log ??
    pino({
      name: 'warden-authority',
      redact: [
        '*.token',
        '*.subject_token',
        'req.headers.authorization',
        'req.headers["x-warden-user-token"]',
      ],
    });
  const api = opts.kube?.api ?? standaloneApi(opts.kubeConfig);
  const keys = new SecretKeyStore({ api, namespace: opts.namespace, policy: opts.keyRotation, log });
  await keys.start();
  // Our own cache only when no process cache was handed in; its lifetime is then ours.
  const ownCache = opts.kube
    ? undefined
    : new SharedCache({ api, logger: log, namespace: opts.watchNamespace });
  const cache = opts.kube?.cache ?? (ownCache as SharedCache);
  const store = new InformerPolicyStore(cache);
  ownCache?.start();
  await store.waitForSync();
  const kube = new ApiKube(api, (ns, name) => {
    const id = store.identity(ns, name);
    return id && { metadata: { name: id.name, namespace: id.namespace, labels: id.labels }, spec: id.spec };
  });
  const watchedPods =
    opts.podLookup !== 'live' ? new WatchedPods(api, kube, log, opts.watchNamespace) : undefined;
  await watchedPods?.start();
  const parts: AuthorityParts = {
    issuer: opts.issuer,
    sessions: new Sessions({ issuer: opts.issuer, keys }),
    keys,
    reviewer: new CachedTokenReviewer(new ApiTokenReviewer(api)),
    pods: watchedPods ?? kube,
    identities: kube,
    userTokens: new UserTokenVerifier({ fetch: opts.idpFetch, warden: { issuer: opts.issuer, keys } }),
    audit: opts.audit ?? new PinoAuditSink(log),
    limiter: new FailureRateLimiter(opts.rateLimit ?? DEFAULT_RATE_LIMIT),
    log,
    store,
    issuance: {
      minters: opts.minters ?? createMinters({ issuer: opts.issuer, keys }),
      providers: apiProviderGetter(api),
      secrets: kubeSecretsReader(api),
      ...(opts.issuedCredentials ? { issued: opts.issuedCredentials } : {}),
    },
    metrics: opts.metrics,
    onAttested: opts.onAttested,
    onIssued: opts.onIssued,
    broker: { trustedImages: [...opts.trustedBrokerImages], authorityUrl: opts.issuer },
    gateway: { serviceAccounts: [...(opts.gatewayServiceAccounts ?? [])] },
    imageSignatures: opts.imageSignatures ?? new RegistrySignatureVerifier(),
  };
  // Quota counts of this replica (rules[].limits); brokers lease from it.
  const quotaLedger = new QuotaLedger();
  const server = createAuthorityServer({
    issuer: opts.issuer,
    keys,
    audit: parts.audit,
    limiter: parts.limiter,
    log,
    tls: opts.tls,
    token: (ctx) => handleTokenExchange(ctx, parts),
    credentials: (ctx) => handleCredentials(ctx, parts),
    stream: (ctx) => handleStream(ctx, parts),
    routes: {
      '/v1/audit': (ctx) =>
        handleAudit(ctx, {
          sessions: parts.sessions,
          ...(opts.brokerAuditTrail ? { trail: opts.brokerAuditTrail } : {}),
          sinks: opts.brokerAuditSinks ?? [new LogBrokerEventSink(log)],
        }),
      '/v1/quota': (ctx) =>
        handleQuota(ctx, {
          sessions: parts.sessions,
          policySet: (namespace, agent) => store.policySet(namespace, agent),
          ledger: quotaLedger,
        }),
      '/v1/introspect': (ctx) =>
        handleIntrospect(ctx, {
          issuer: opts.issuer,
          keys,
          agentState: liveAgentState(api),
        }),
    },
  });
  return {
    ...parts,
    server,
    listen: (port, host = '0.0.0.0') =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    close: async () => {
      keys.stop();
      if (!opts.minters) await parts.issuance.minters.PostgreSQL.close();
      await ownCache?.stop();
      await watchedPods?.stop();
      // A standalone authority's own client: close its kept-alive connections.
      if (!opts.kube && api instanceof KubeConfigApi) api.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
