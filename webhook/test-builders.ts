/** Builders for webhook tests and benchmarks: small, explicit test objects. */
import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATION_AGENT } from '../core/constants.js';
import type { AdmissionDeps, AdmissionLogger } from './admission.js';
import { MemoryEvents } from './events.js';
import { mutatePod } from './mutate.js';
import { type AgentIdentityView, type BrokerConfig, DEFAULT_BROKER_CONFIG } from './types.js';

export const TEST_BROKER: BrokerConfig = {
  ...DEFAULT_BROKER_CONFIG,
  version: '0.1.0-test',
  image: 'ghcr.io/warden-dev/warden@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  authorityUrl: 'https://warden.warden-system.svc:8443',
};

/** The broker image test authorities trust (createAuthority trustedBrokerImages) and test agent pods run. */
export const TEST_BROKER_IMAGE = TEST_BROKER.image;

/**
 * `pod` as the webhook admits it for AgentIdentity `agent`: the broker native sidecar (running
 * `image`, pointed at `issuer`), its projected token volume for `audience`, the agent env vars,
 * the agent label and the `warden.dev/injected` record — built by the webhook's own mutation.
 */
export function injectBroker(
  pod: V1Pod,
  o: { agent: string; issuer: string; image?: string; audience?: string },
): V1Pod {
  return mutatePod(
    pod,
    o.agent,
    {
      metadata: { name: o.agent },
      spec: {
        serviceAccountName: pod.spec?.serviceAccountName ?? '',
        ...(o.audience ? { attestation: { audience: o.audience } } : {}),
      },
    },
    { ...TEST_BROKER, image: o.image ?? TEST_BROKER_IMAGE, authorityUrl: o.issuer },
  );
}

export function agentPod(overrides: { name?: string; agent?: string; sa?: string } = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: overrides.name ?? 'support-bot-7d9f',
      namespace: 'team-a',
      annotations: { [ANNOTATION_AGENT]: overrides.agent ?? 'support-bot' },
    },
    spec: {
      serviceAccountName: overrides.sa ?? 'support-bot',
      containers: [{ name: 'agent', image: 'ghcr.io/acme/support-bot:1.2.3' }],
    },
  };
}

export function agentIdentity(
  spec: Partial<AgentIdentityView['spec']> = {},
  name = 'support-bot',
): AgentIdentityView {
  return {
    metadata: { name, namespace: 'team-a', uid: '6f1c2a8e-0000-4000-8000-000000000001' },
    spec: { serviceAccountName: 'support-bot', ...spec },
  };
}

export function admissionReview(
  object: unknown,
  request: Record<string, unknown> = {},
): { apiVersion: string; kind: string; request: Record<string, unknown> } {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'team-a',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object,
      oldObject: null,
      dryRun: false,
      ...request,
    },
  };
}

export const silentLogger: AdmissionLogger = { info() {}, warn() {}, error() {} };

/** Deps with an in-memory set of AgentIdentities (keyed `namespace/name`). */
export function testDeps(
  agents: AgentIdentityView[] = [agentIdentity()],
  extra: Partial<AdmissionDeps> = {},
): AdmissionDeps & { events: MemoryEvents } {
  const byKey = new Map(agents.map((a) => [`${a.metadata.namespace}/${a.metadata.name}`, a]));
  return {
    broker: TEST_BROKER,
    lookup: async (ns, name) => byKey.get(`${ns}/${name}`),
    events: new MemoryEvents(),
    logger: silentLogger,
    ...extra,
  } as AdmissionDeps & { events: MemoryEvents };
}
