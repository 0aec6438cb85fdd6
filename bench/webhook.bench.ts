/**
 * Admission webhook benchmarks.
 *  - webhook/admission/in-process: parse → handleReview → serialize for 10,000
 *    AdmissionReviews of a realistic agent pod (target p99 < 2 ms).
 *  - webhook/admission/https-loopback: the same through the HTTPS server on
 *    loopback with a kept-alive connection, as the API server calls it.
 *  - webhook/pod-create/*: pod creation through a real kube-apiserver (booted
 *    here) without any webhook registered, with the webhook registered but the
 *    pod not an agent pod (matchConditions skip the call), and for an agent pod
 *    (webhook called and patch applied), and the same with an informer cache.
 *    Their CPU µs/op counts this process only (client and webhook), not the API server.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import { startControlPlane } from '../e2e/controlplane/controlplane.js';
import { installCrds } from '../e2e/harness/crds.js';
import { resourceInformer } from '../kube/informer.js';
import { KubeConfigApi, type KubeObject } from '../kube/kube.js';
import { handleReview } from '../webhook/admission.js';
import { DEFAULT_CONFIGURATION_NAME, webhookConfiguration } from '../webhook/config.js';
import { noEvents } from '../webhook/events.js';
import { startWebhook } from '../webhook/index.js';
import { apiLookup, cachedLookup } from '../webhook/lookup.js';
import { WebhookServer } from '../webhook/server.js';
import { TEST_BROKER, testDeps } from '../webhook/test-builders.js';
import { issueMaterial } from '../webhook/tls.js';
import type { AgentIdentityView } from '../webhook/types.js';
import { type BenchResult, measureAsync } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURE = join(here, '..', 'webhook', 'testdata', 'inject-existing-fields.input.json');

function fixture(): { body: string; agents: AgentIdentityView[] } {
  const f = JSON.parse(readFileSync(FIXTURE, 'utf8')) as {
    review: unknown;
    agentIdentities: AgentIdentityView[];
  };
  return { body: JSON.stringify(f.review), agents: f.agentIdentities };
}

async function inProcess(): Promise<BenchResult> {
  const { body, agents } = fixture();
  const deps = testDeps(agents);
  return measureAsync(
    'webhook/admission/in-process',
    async () => JSON.stringify((await handleReview(JSON.parse(body), deps)).review),
    {
      iterations: 10_000,
      repeats: 3,
      warmup: 2_000,
      target: { metric: 'p99Micros', max: 2000 },
      note: 'parse + checks + mutate + diff + serialize, 2 containers + 1 init container pod, in-memory lookup',
    },
  );
}

async function overHttps(): Promise<BenchResult> {
  const { body, agents } = fixture();
  const material = await issueMaterial({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, new Date());
  const server = new WebhookServer(testDeps(agents), material);
  const port = await server.listen(0, '127.0.0.1');
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: material.caBundlePem });
  const call = () =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/mutate',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  try {
    return await measureAsync('webhook/admission/https-loopback', call, {
      baseline: 'webhook/admission/in-process',
      iterations: 2_000,
      repeats: 3,
      warmup: 200,
      note: 'one kept-alive TLS connection, as the API server reuses connections',
    });
  } finally {
    agent.destroy();
    await server.close();
  }
}

async function podCreate(): Promise<BenchResult[]> {
  const cp = await startControlPlane();
  const logger = pino({ level: 'silent' });
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const api = new KubeConfigApi(kc);
    const ns = 'bench';
    await api.request('POST', '/api/v1/namespaces', { body: { metadata: { name: ns } } });
    await api.request('POST', '/api/v1/namespaces', { body: { metadata: { name: 'warden-system' } } });
    await api.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
      body: { metadata: { name: 'bot-sa' } },
    });
    await api.request('POST', `/apis/warden.dev/v1alpha1/namespaces/${ns}/agentidentities`, {
      body: {
        apiVersion: 'warden.dev/v1alpha1',
        kind: 'AgentIdentity',
        metadata: { name: 'bot' },
        spec: { serviceAccountName: 'bot-sa' },
      },
    });
    let seq = 0;
    const create = (agentPod: boolean) => () =>
      api.request('POST', `/api/v1/namespaces/${ns}/pods`, {
        body: {
          metadata: { name: `p-${seq++}`, annotations: agentPod ? { 'warden.dev/agent': 'bot' } : {} },
          spec: {
            serviceAccountName: 'bot-sa',
            containers: [{ name: 'agent', image: 'ghcr.io/acme/bot:1' }],
          },
        },
      });
    const opts = { iterations: 300, repeats: 3, warmup: 30 };
    const results: BenchResult[] = [];
    results.push(await measureAsync('webhook/pod-create/no-webhook', create(false), opts));

    const hook = await startWebhook({
      api,
      namespace: 'warden-system',
      names: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
      broker: TEST_BROKER,
      port: 0,
      host: '127.0.0.1',
      logger,
      events: noEvents,
    });
    try {
      await api.request('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
        body: webhookConfiguration({
          wardenNamespace: 'warden-system',
          clientConfig: { url: `https://127.0.0.1:${hook.port}/mutate` },
          caBundlePem: hook.material().caBundlePem,
        }),
      });
      // Wait until the API server calls the webhook.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const p = (await create(true)()) as { spec?: { initContainers?: { name: string }[] } };
        if (p.spec?.initContainers?.[0]?.name === 'warden-broker') break;
        if (Date.now() > deadline) throw new Error('webhook never took effect');
        await new Promise((r) => setTimeout(r, 200));
      }
      results.push(
        await measureAsync('webhook/pod-create/webhook-registered-plain-pod', create(false), {
          ...opts,
          baseline: 'webhook/pod-create/no-webhook',
          note: 'matchConditions keep the API server from calling the webhook',
        }),
      );
      results.push(
        await measureAsync('webhook/pod-create/webhook-agent-pod', create(true), {
          ...opts,
          baseline: 'webhook/pod-create/no-webhook',
          note: 'webhook called over HTTPS: AgentIdentity GET + mutation + patch applied',
        }),
      );
    } finally {
      await hook.stop();
    }

    // Same, with the AgentIdentity answered from an informer cache instead of a GET.
    const informer = resourceInformer<KubeObject & AgentIdentityView>(
      api,
      { group: GROUP, version: VERSION, plural: PLURAL.AgentIdentity },
      undefined,
      { logger },
    );
    informer.start();
    await informer.waitForSync();
    const cachedHook = await startWebhook({
      api,
      namespace: 'warden-system',
      names: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
      broker: TEST_BROKER,
      port: 0,
      host: '127.0.0.1',
      logger,
      events: noEvents,
      lookup: cachedLookup(informer, apiLookup(api)),
    });
    try {
      const cfgPath = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${DEFAULT_CONFIGURATION_NAME}`;
      const cfg = await api.request<{ webhooks: { clientConfig: { url?: string } }[] }>('GET', cfgPath);
      for (const w of cfg.webhooks) w.clientConfig.url = `https://127.0.0.1:${cachedHook.port}/mutate`;
      await api.request('PUT', cfgPath, { body: cfg });
      // The old instance is stopped: creation succeeds again only once the API server uses the new URL.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const ok = await create(true)().then(
          () => true,
          () => false,
        );
        if (ok) break;
        if (Date.now() > deadline) throw new Error('reconfigured webhook never took effect');
        await new Promise((r) => setTimeout(r, 200));
      }
      results.push(
        await measureAsync('webhook/pod-create/webhook-agent-pod-informer-cache', create(true), {
          ...opts,
          baseline: 'webhook/pod-create/no-webhook',
          note: 'as above, AgentIdentity from the informer cache (no GET per admission)',
        }),
      );
    } finally {
      await cachedHook.stop();
      await informer.stop();
    }
    return results;
  } finally {
    await cp.stop();
  }
}

/** Shared 2-core machines are often busy; record how busy next to each number. */
function withLoad(r: BenchResult, before: number): BenchResult {
  const load = `load average ${before.toFixed(1)} → ${loadavg()[0]?.toFixed(1)} on ${cpus().length} CPUs`;
  return { ...r, note: r.note ? `${r.note}; ${load}` : load };
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const step = async (f: () => Promise<BenchResult | BenchResult[]>) => {
    const before = loadavg()[0] ?? 0;
    const out = await f();
    results.push(...(Array.isArray(out) ? out : [out]).map((r) => withLoad(r, before)));
  };
  await step(inProcess);
  await step(overHttps);
  // WARDEN_BENCH_SKIP_CONTROLPLANE=1 measures only the in-process numbers.
  if (process.env.WARDEN_BENCH_SKIP_CONTROLPLANE !== '1') await step(podCreate);
  return results;
}
