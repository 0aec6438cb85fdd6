/**
 * The webhook against the real kube-apiserver: the API server calls it over
 * HTTPS (url: https://127.0.0.1:<port>/mutate, caBundle from the shared TLS
 * Secret) when pods are created, stores the mutated pod, and shows rejections
 * to kubectl. Scoped to this file's namespace by the namespaceSelector.
 */
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig, kubectl } from '../e2e/harness/index.js';
import { ApiEventRecorder } from '../kube/events.js';
import { type KubeApi, KubeConfigApi } from '../kube/kube.js';
import { webhookConfiguration } from './config.js';
import { recorderEvents } from './events.js';
import { type RunningWebhook, startWebhook } from './index.js';
import { TlsStore } from './tls-store.js';
import { type BrokerConfig, DEFAULT_BROKER_CONFIG } from './types.js';

const BROKER: BrokerConfig = {
  ...DEFAULT_BROKER_CONFIG,
  version: '0.1.0-int',
  image: 'ghcr.io/warden-dev/warden:int-test',
  authorityUrl: 'https://warden.warden-system.svc:8443',
};
const NAMES = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
const DAY = 24 * 3600 * 1000;
const logger = pino({ level: 'silent' });
const MWC_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

interface PodJson {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    serviceAccountName?: string;
    initContainers?: {
      name: string;
      restartPolicy?: string;
      volumeMounts?: { name: string }[];
      startupProbe?: unknown;
    }[];
    containers: {
      name: string;
      env?: { name: string; value?: string }[];
      volumeMounts?: { name: string }[];
    }[];
    volumes?: {
      name: string;
      projected?: { sources: { serviceAccountToken?: { audience: string; expirationSeconds: number } }[] };
    }[];
  };
}

let api: KubeApi;
let ns: string;
let wardenNs: string;
let configName: string;
let a: RunningWebhook;
let b: RunningWebhook | undefined;

function pod(name: string, opts: { agent?: string; sa?: string; extra?: Record<string, unknown> } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      annotations: (opts.agent === undefined ? {} : { 'warden.dev/agent': opts.agent }) as Record<
        string,
        string
      >,
    },
    spec: {
      serviceAccountName: opts.sa ?? 'bot-sa',
      containers: [{ name: 'agent', image: 'ghcr.io/acme/bot:1' }],
      ...opts.extra,
    },
  };
}

async function createPod(manifest: unknown, extraArgs: string[] = []) {
  return kubectl(['create', '-n', ns, '-o', 'json', ...extraArgs, '-f', '-'], {
    input: JSON.stringify(manifest),
  });
}

async function readPod(name: string): Promise<PodJson> {
  return api.request<PodJson>('GET', `/api/v1/namespaces/${ns}/pods/${name}`);
}

/** The API server picks configuration changes up asynchronously; dry-run until the webhook answers. */
async function waitForWebhook(): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const res = await createPod(pod(`probe-${Date.now()}`, { agent: 'bot' }), ['--dry-run=server']);
    if (
      res.code === 0 &&
      (JSON.parse(res.stdout) as PodJson).spec.initContainers?.[0]?.name === 'warden-broker'
    )
      return;
    last = res.stderr || res.stdout.slice(0, 200);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`webhook never took effect: ${last}`);
}

beforeAll(async () => {
  api = new KubeConfigApi(kubeConfig());
  ns = await freshNamespace('webhook');
  wardenNs = await freshNamespace('webhook-warden');
  configName = `warden-pod-injector-${ns}`;

  for (const sa of ['bot-sa', 'default']) {
    await api.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
      body: { metadata: { name: sa } },
    });
  }
  const agents = [
    {
      name: 'bot',
      spec: {
        serviceAccountName: 'bot-sa',
        attestation: { audience: 'warden.dev/int-test', tokenExpirationSeconds: 900 },
      },
    },
    {
      name: 'frozen',
      spec: { serviceAccountName: 'bot-sa', suspended: true, suspendReason: 'incident INC-7' },
    },
  ];
  for (const { name, spec } of agents) {
    await api.request('POST', `/apis/warden.dev/v1alpha1/namespaces/${ns}/agentidentities`, {
      body: { apiVersion: 'warden.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name }, spec },
    });
  }

  const events = recorderEvents(new ApiEventRecorder({ api, instance: 'webhook-int-a', logger }));
  a = await startWebhook({
    api,
    namespace: wardenNs,
    configurationName: configName,
    names: NAMES,
    broker: BROKER,
    port: 0,
    host: '127.0.0.1',
    logger,
    events,
  });
  // Registered without a caBundle: the TLS store fills it in from the Secret.
  const cfg = webhookConfiguration({
    name: configName,
    wardenNamespace: wardenNs,
    clientConfig: { url: `https://127.0.0.1:${a.port}/mutate` },
    namespaceMatchLabels: { 'kubernetes.io/metadata.name': ns },
  });
  await api.request('POST', MWC_PATH, { body: cfg });
  await a.store.ensure();
  await waitForWebhook();
});

afterAll(async () => {
  await api?.request('DELETE', `${MWC_PATH}/${configName}`).catch(() => {});
  await a?.stop();
  await b?.stop();
});

describe('admission through the real API server', () => {
  it('has the caBundle patched from the TLS Secret', async () => {
    const cfg = await api.request<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
      'GET',
      `${MWC_PATH}/${configName}`,
    );
    const bundle = Buffer.from(cfg.webhooks[0]?.clientConfig.caBundle ?? '', 'base64').toString();
    expect(bundle).toBe(a.material().caBundlePem);
  });

  it('stores an annotated pod with the broker sidecar, the token volume, env and markers', async () => {
    const res = await createPod(pod('injected', { agent: 'bot' }));
    expect(res.stderr).toBe('');
    const stored = await readPod('injected');
    const broker = stored.spec.initContainers?.[0];
    expect(broker?.name).toBe('warden-broker');
    expect(broker?.restartPolicy).toBe('Always');
    expect(broker?.startupProbe).toBeDefined();
    expect(broker?.volumeMounts?.map((m) => m.name)).toContain('warden-broker-token');
    const vol = stored.spec.volumes?.find((v) => v.name === 'warden-broker-token');
    expect(vol?.projected?.sources[0]?.serviceAccountToken).toEqual({
      audience: 'warden.dev/int-test',
      expirationSeconds: 900,
      path: 'token',
    });
    const agent = stored.spec.containers[0];
    expect(agent?.env?.map((e) => e.name)).toEqual([
      'WARDEN_MCP_BASE',
      'WARDEN_HTTP_BASE',
      'WARDEN_PG_BASE',
      'WARDEN_USER_TOKEN_HEADER',
    ]);
    expect(agent?.volumeMounts?.map((m) => m.name) ?? []).not.toContain('warden-broker-token');
    expect(stored.metadata.labels?.['warden.dev/agent']).toBe('bot');
    expect(JSON.parse(stored.metadata.annotations?.['warden.dev/injected'] ?? '{}')).toMatchObject({
      version: '0.1.0-int',
      brokerImage: BROKER.image,
      agent: 'bot',
    });
  });

  it('records the injection as an Event on the AgentIdentity', async () => {
    const deadline = Date.now() + 20_000;
    let found = false;
    while (!found && Date.now() < deadline) {
      const list = await api.request<{
        items: { reason: string; note: string; regarding: { kind: string; name: string } }[];
      }>('GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
      found = list.items.some(
        (e) =>
          e.regarding.kind === 'AgentIdentity' &&
          e.regarding.name === 'bot' &&
          e.reason === 'Injected' &&
          e.note.includes('pod injected'),
      );
      if (!found) await new Promise((r) => setTimeout(r, 250));
    }
    expect(found).toBe(true);
  });

  it('leaves pods without the annotation alone (the API server does not even call the webhook)', async () => {
    expect((await createPod(pod('plain'))).code).toBe(0);
    const stored = await readPod('plain');
    expect(stored.spec.initContainers).toBeUndefined();
    expect(stored.metadata.labels?.['warden.dev/agent']).toBeUndefined();
  });

  it('honours the opt-out annotation', async () => {
    const p = pod('opted-out', { agent: 'bot' });
    p.metadata.annotations['warden.dev/inject'] = 'false';
    expect((await createPod(p)).code).toBe(0);
    expect((await readPod('opted-out')).spec.initContainers).toBeUndefined();
  });

  it.each<[string, () => unknown, RegExp]>([
    [
      'a missing AgentIdentity',
      () => pod('r-missing', { agent: 'nobody' }),
      /AgentIdentity "nobody" not found in namespace/,
    ],
    [
      'a service-account mismatch',
      () => pod('r-sa', { agent: 'bot', sa: 'default' }),
      /spec\.serviceAccountName: pod runs as service account "default" but AgentIdentity "bot" requires "bot-sa"/,
    ],
    [
      'a suspended agent',
      () => pod('r-frozen', { agent: 'frozen' }),
      /the agent is suspended \(reason: incident INC-7\)/,
    ],
    [
      'hostNetwork',
      () => pod('r-hostnet', { agent: 'bot', extra: { hostNetwork: true } }),
      /spec\.hostNetwork: agent pods cannot use the host network/,
    ],
    [
      'no containers',
      () => pod('r-empty', { agent: 'bot', extra: { containers: [] } }),
      /spec\.containers: the pod has no containers/,
    ],
    [
      'a container named like the broker',
      () =>
        pod('r-name', {
          agent: 'bot',
          extra: {
            containers: [
              { name: 'agent', image: 'x' },
              { name: 'warden-broker', image: 'x' },
            ],
          },
        }),
      /spec\.containers\[1\]\.name: "warden-broker" is reserved/,
    ],
    [
      'a volume named like the token volume',
      () =>
        pod('r-vol', { agent: 'bot', extra: { volumes: [{ name: 'warden-broker-token', emptyDir: {} }] } }),
      /spec\.volumes\[0\]\.name: "warden-broker-token" is reserved/,
    ],
    [
      'an agent container mounting its own token for the broker audience',
      () =>
        pod('r-own-token', {
          agent: 'bot',
          extra: {
            volumes: [
              {
                name: 'stolen',
                projected: {
                  sources: [{ serviceAccountToken: { audience: 'warden.dev/broker', path: 't' } }],
                },
              },
            ],
            containers: [
              { name: 'agent', image: 'x', volumeMounts: [{ name: 'stolen', mountPath: '/var/run/t' }] },
            ],
          },
        }),
      /spec\.containers\[0\]\.volumeMounts\[0\]: container "agent" mounts volume "stolen", which projects a service-account token for the Warden broker audience "warden\.dev\/broker"/,
    ],
    [
      "an init container mounting a token for the AgentIdentity's own audience",
      () =>
        pod('r-init-token', {
          agent: 'bot',
          extra: {
            volumes: [
              {
                name: 'side',
                projected: {
                  sources: [{ serviceAccountToken: { audience: 'warden.dev/int-test', path: 't' } }],
                },
              },
            ],
            initContainers: [
              { name: 'fetch', image: 'x', volumeMounts: [{ name: 'side', mountPath: '/var/run/t' }] },
            ],
          },
        }),
      /spec\.initContainers\[0\]\.volumeMounts\[0\]: container "fetch" mounts volume "side".*"warden\.dev\/int-test"/,
    ],
    [
      'a shared process namespace',
      () => pod('r-sharepid', { agent: 'bot', extra: { shareProcessNamespace: true } }),
      /spec\.shareProcessNamespace: a shared process namespace lets every container read the broker's files/,
    ],
    [
      'a hand-written broker carrying a forged injected record',
      () => {
        const p = pod('r-forged', {
          agent: 'bot',
          extra: {
            initContainers: [
              {
                name: 'warden-broker',
                image: 'docker.io/evil/broker:1',
                restartPolicy: 'Always',
                args: [
                  'broker',
                  '--token-file=/var/run/secrets/warden.dev/broker/token',
                  `--authority-url=${BROKER.authorityUrl}`,
                ],
                volumeMounts: [
                  {
                    name: 'warden-broker-token',
                    mountPath: '/var/run/secrets/warden.dev/broker',
                    readOnly: true,
                  },
                ],
              },
            ],
            volumes: [
              {
                name: 'warden-broker-token',
                projected: {
                  sources: [{ serviceAccountToken: { audience: 'warden.dev/int-test', path: 'token' } }],
                },
              },
            ],
          },
        });
        p.metadata.annotations['warden.dev/injected'] = JSON.stringify({
          agent: 'bot',
          container: 'warden-broker',
          volume: 'warden-broker-token',
          audience: 'warden.dev/int-test',
        });
        return p;
      },
      /spec\.initContainers\[0\]\.image: container "warden-broker" runs image "docker\.io\/evil\/broker:1", which is not a broker image this Warden trusts/,
    ],
  ])('rejects %s with the message shown by kubectl', async (_name, manifest, message) => {
    const res = await createPod(manifest());
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(
      /admission webhook "inject\.pods\.warden\.dev" denied the request: warden: pod r-/,
    );
    expect(res.stderr).toMatch(message);
  });
});

describe('reinvocation through the real API server', () => {
  it('runs again after a later webhook adds a container, giving it the env without duplicating anything', async () => {
    // A second webhook, ordered after ours by configuration name, that adds a
    // container to pods carrying a test annotation.
    let lateSawBroker: boolean | undefined;
    const late = createHttpsServer({ cert: a.material().certPem, key: a.material().keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString()) as {
          request: { uid: string; object: PodJson };
        };
        const has = review.request.object.spec.containers.some((c) => c.name === 'late-sidecar');
        // Proves the order: this webhook runs after Warden's, so a new container needs reinvocation.
        if (review.request.object.metadata.name === 'reinvoked') {
          lateSawBroker =
            review.request.object.spec.initContainers?.some((c) => c.name === 'warden-broker') ?? false;
        }
        const patch = has
          ? []
          : [{ op: 'add', path: '/spec/containers/-', value: { name: 'late-sidecar', image: 'busybox' } }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: {
              uid: review.request.uid,
              allowed: true,
              ...(patch.length
                ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }
                : {}),
            },
          }),
        );
      });
    });
    await new Promise<void>((r) => late.listen(0, '127.0.0.1', r));
    const latePort = (late.address() as AddressInfo).port;
    const lateName = `zz-late-adder-${ns}`;
    await api.request('POST', MWC_PATH, {
      body: {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: lateName },
        webhooks: [
          {
            name: 'late.test.warden.dev',
            admissionReviewVersions: ['v1'],
            clientConfig: {
              url: `https://127.0.0.1:${latePort}/`,
              caBundle: Buffer.from(a.material().caBundlePem).toString('base64'),
            },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
            matchConditions: [
              {
                name: 'marked',
                expression:
                  "has(object.metadata.annotations) && 'test/late-add' in object.metadata.annotations",
              },
            ],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            reinvocationPolicy: 'Never',
            timeoutSeconds: 5,
          },
        ],
      },
    });
    try {
      const marked = (name: string) => {
        const p = pod(name, { agent: 'bot' });
        p.metadata.annotations['test/late-add'] = 'true';
        return p;
      };
      // Wait until the API server knows the second webhook.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const res = await createPod(marked(`late-probe-${Date.now()}`), ['--dry-run=server']);
        if (
          res.code === 0 &&
          (JSON.parse(res.stdout) as PodJson).spec.containers.some((c) => c.name === 'late-sidecar')
        )
          break;
        if (Date.now() > deadline) throw new Error(`late webhook never took effect: ${res.stderr}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect((await createPod(marked('reinvoked'))).code).toBe(0);
      expect(lateSawBroker).toBe(true);
      const stored = await readPod('reinvoked');
      expect(stored.spec.containers.map((c) => c.name)).toEqual(['agent', 'late-sidecar']);
      expect(stored.spec.containers[1]?.env?.map((e) => e.name)).toEqual([
        'WARDEN_MCP_BASE',
        'WARDEN_HTTP_BASE',
        'WARDEN_PG_BASE',
        'WARDEN_USER_TOKEN_HEADER',
      ]);
      expect(stored.spec.initContainers?.filter((c) => c.name === 'warden-broker')).toHaveLength(1);
      expect(stored.spec.volumes?.filter((v) => v.name === 'warden-broker-token')).toHaveLength(1);
    } finally {
      await api.request('DELETE', `${MWC_PATH}/${lateName}`).catch(() => {});
      late.closeAllConnections();
      await new Promise((r) => late.close(r));
    }
  });
});

describe('TLS shared by replicas', () => {
  it('gives a second instance the same certificate, which the API server trusts with the same caBundle', async () => {
    const events = recorderEvents(new ApiEventRecorder({ api, instance: 'webhook-int-b', logger }));
    b = await startWebhook({
      api,
      namespace: wardenNs,
      configurationName: configName,
      names: NAMES,
      broker: BROKER,
      port: 0,
      host: '127.0.0.1',
      logger,
      events,
      // B also hands brokers the CA bundle (the authority shares the certificate).
      injectAuthorityCa: true,
    });
    expect(b.material()).toEqual(a.material());

    // Send the API server to instance B only.
    const cfg = await api.request<{ webhooks: { clientConfig: { url?: string; caBundle?: string } }[] }>(
      'GET',
      `${MWC_PATH}/${configName}`,
    );
    const bundleBefore = cfg.webhooks[0]?.clientConfig.caBundle;
    for (const w of cfg.webhooks) w.clientConfig.url = `https://127.0.0.1:${b.port}/mutate`;
    await api.request('PUT', `${MWC_PATH}/${configName}`, { body: cfg });
    await a.stop();
    await waitForWebhook();
    expect((await createPod(pod('via-b', { agent: 'bot' }))).code).toBe(0);
    const viaB = await readPod('via-b');
    expect(viaB.spec.initContainers?.[0]?.name).toBe('warden-broker');
    // The API server accepted the downward-API projection of the CA annotation.
    expect(viaB.metadata.annotations?.['warden.dev/authority-ca']).toBe(b.material().caBundlePem);
    expect(JSON.stringify(viaB.spec.volumes)).toContain("metadata.annotations['warden.dev/authority-ca']");
    const after = await api.request<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
      'GET',
      `${MWC_PATH}/${configName}`,
    );
    expect(after.webhooks[0]?.clientConfig.caBundle).toBe(bundleBefore);
  });

  it('lets exactly one of two racing replicas create the Secret; the other adopts it', async () => {
    const mk = () =>
      new TlsStore({ api, namespace: wardenNs, secretName: 'race-create', names: NAMES, logger });
    const [m1, m2] = await Promise.all([mk().ensure(), mk().ensure()]);
    expect(m1).toEqual(m2);
  });

  it('rotates once when two replicas find the certificate due at the same time, keeping the old CA trusted', async () => {
    const raceConfig = `warden-race-${ns}`;
    await api.request('POST', MWC_PATH, {
      body: webhookConfiguration({
        name: raceConfig,
        wardenNamespace: wardenNs,
        clientConfig: { url: 'https://127.0.0.1:1/mutate' },
        namespaceMatchLabels: { 'warden.dev/never-matches': 'true' },
      }),
    });
    try {
      const store = (now: Date) =>
        new TlsStore({
          api,
          namespace: wardenNs,
          secretName: 'race-rotate',
          webhookConfigurationName: raceConfig,
          names: NAMES,
          logger,
          now: () => now,
          validityMs: 90 * DAY,
        });
      const t0 = new Date();
      const first = await store(t0).ensure();
      const later = new Date(t0.getTime() + 61 * DAY);
      const [r1, r2] = await Promise.all([store(later).ensure(), store(later).ensure()]);
      expect(r1).toEqual(r2);
      expect(r1.certPem).not.toBe(first.certPem);
      expect(r1.caBundlePem).toContain(first.caBundlePem.trim());
      const cfg = await api.request<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
        'GET',
        `${MWC_PATH}/${raceConfig}`,
      );
      expect(Buffer.from(cfg.webhooks[0]?.clientConfig.caBundle ?? '', 'base64').toString()).toBe(
        r1.caBundlePem,
      );
    } finally {
      await api.request('DELETE', `${MWC_PATH}/${raceConfig}`).catch(() => {});
    }
  });
});
