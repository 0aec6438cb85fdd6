/**
 * The parts e2e stacks share: an agent with an HTTP API it may GET (AgentIdentity, a JWT
 * CredentialProvider `api`, a read-only AccessPolicy and an annotated pod), a `warden controller`
 * in-process with test settings, and the pod-bound token a broker attests with.
 *
 * Used by killswitch-fixture.ts (in-process broker) and load-fixture.ts (broker in its own
 * process; that module imports this one lazily so the broker's bundle stays free of it).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type ControllerOptions, type RunningController, runController } from '../controller/run.js';
import {
  ANNOTATION_AGENT,
  API_VERSION,
  DEFAULT_BROKER_AUDIENCE,
  GROUP,
  PLURAL,
  VERSION,
} from '../core/constants.js';
import { injectBroker } from '../webhook/test-builders.js';

/** The issuer e2e controllers announce (brokers reach them by URL, not by name). */
export const E2E_ISSUER = 'http://warden-authority.e2e';
/** The broker image e2e controllers inject and trust; e2e agent pods carry it as the webhook would. */
export const E2E_BROKER_IMAGE = 'warden:e2e';

/** Creates Warden objects (AgentIdentity, AccessPolicy, CredentialProvider, …) in `namespace`. */
export function wardenObjectCreator(
  kc: KubeConfig,
  namespace: string,
): (plural: string, kind: string, name: string, spec: unknown) => Promise<unknown> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return (plural, kind, name, spec) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural,
      body: { apiVersion: API_VERSION, kind, metadata: { name, namespace }, spec },
    });
}

/**
 * Creates the agent's ServiceAccount, AgentIdentity, the `api` CredentialProvider (Warden JWTs
 * for `upstreamUrl`), an AccessPolicy allowing GET on it (so a POST is a denial) and the pod.
 */
export async function createAgentWithApi(
  kc: KubeConfig,
  o: { namespace: string; agent: string; upstreamUrl: string },
): Promise<V1Pod> {
  const ns = o.namespace;
  const core = kc.makeApiClient(CoreV1Api);
  const create = wardenObjectCreator(kc, ns);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: o.agent } } });
  await create(PLURAL.AgentIdentity, 'AgentIdentity', o.agent, { serviceAccountName: o.agent });
  // Warden-minted JWTs for the upstream: the broker injects them, the kill switch revokes them.
  await create(PLURAL.CredentialProvider, 'CredentialProvider', 'api', {
    target: { url: o.upstreamUrl, protocol: 'HTTP' },
    type: 'JWT',
    jwt: { audience: 'api', defaultTTL: '5m' },
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', `${o.agent}-read`, {
    agentSelector: { names: [o.agent] },
    effect: 'Allow',
    rules: [{ targets: ['api'], http: { methods: ['GET'], paths: ['/**'] } }],
  });
  return createAgentPod(kc, { namespace: ns, agent: o.agent, name: `${o.agent}-0` });
}

/** One more pod of the agent, as the webhook admits it (another replica: its own broker). */
export function createAgentPod(
  kc: KubeConfig,
  o: { namespace: string; agent: string; name: string; issuer?: string },
): Promise<V1Pod> {
  // As the webhook admits it (no webhook runs here): the authority attests only injected pods.
  return kc.makeApiClient(CoreV1Api).createNamespacedPod({
    namespace: o.namespace,
    body: injectBroker(
      {
        metadata: { name: o.name, annotations: { [ANNOTATION_AGENT]: o.agent } },
        spec: {
          serviceAccountName: o.agent,
          automountServiceAccountToken: false,
          containers: [{ name: 'agent', image: 'ghcr.io/acme/agent@sha256:0000' }],
        },
      },
      // The broker's --authority-url must be the issuer of the controller it attests to.
      { agent: o.agent, issuer: o.issuer ?? E2E_ISSUER, image: E2E_BROKER_IMAGE },
    ),
  });
}

/** `warden controller` in-process for one namespace: plain-HTTP authority, no webhook registration. */
export function startTestController(
  kc: KubeConfig,
  o: Pick<ControllerOptions, 'audit'> &
    Partial<ControllerOptions> & { namespace: string; log: Logger; identityPrefix: string },
): Promise<RunningController> {
  const { identityPrefix, ...rest } = o;
  return runController({
    kubeConfig: kc,
    watchNamespace: o.namespace,
    identity: `${identityPrefix}-${randomBytes(3).toString('hex')}`,
    leaderElection: false,
    host: '127.0.0.1',
    webhookPort: 0,
    authorityPort: 0,
    healthPort: 0,
    tlsNames: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
    webhookConfigurationName: null,
    issuer: E2E_ISSUER,
    authorityTls: false,
    broker: { image: E2E_BROKER_IMAGE, imagePullPolicy: 'IfNotPresent' },
    tlsSecret: `warden-tls-${randomBytes(3).toString('hex')}`,
    version: '0.0.0-e2e',
    ...rest,
  });
}

/**
 * The pod-bound projected token the kubelet would mount into the broker, written to a fresh
 * temp dir (remove `dir` when done).
 */
export async function writePodToken(
  kc: KubeConfig,
  o: { namespace: string; serviceAccount: string; pod: V1Pod; prefix: string },
): Promise<{ dir: string; tokenFile: string }> {
  const tr = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace: o.namespace,
    name: o.serviceAccount,
    body: {
      spec: {
        audiences: [DEFAULT_BROKER_AUDIENCE],
        expirationSeconds: 3600,
        boundObjectRef: {
          kind: 'Pod',
          apiVersion: 'v1',
          name: o.pod.metadata?.name,
          uid: o.pod.metadata?.uid,
        },
      },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), o.prefix));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, tr.status?.token ?? '');
  return { dir, tokenFile };
}
