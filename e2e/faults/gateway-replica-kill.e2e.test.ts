/**
 * Fault: a shared-gateway replica SIGKILLed mid-traffic (#23). Two `warden gateway` processes,
 * each with its own audit spool directory (a pod's emptyDir), behind a loopback round-robin
 * forwarder (what the gateway Service does); an agent without a sidecar sends HTTP calls with its
 * projected token (audience warden.dev/gateway) through the forwarder while, at seeded random
 * moments, one replica and then the other is SIGKILLed and started again on the same ports and
 * spool. Afterwards every decision the agent received is in its AuditRecords exactly once with the
 * decision it saw; no request id twice; the chain verifies (e2e/faults/crash-matrix.ts judgeTrail).
 * GATEWAY_KILL_SEED repeats a run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningController } from '../../controller/run.js';
import type { AuditEntry, AuditRecord } from '../../core/api/index.js';
import {
  ANNOTATION_AGENT,
  API_VERSION,
  DEFAULT_BROKER_AUDIENCE,
  GATEWAY_AUDIENCE,
  PLURAL,
} from '../../core/constants.js';
import { createCertificateAuthority } from '../../core/x509.js';
import { KubeConfigApi, type ObjectList } from '../../kube/kube.js';
import { startTestController, wardenObjectCreator } from '../agent-stack.js';
import { tlsFetch } from '../gateway-fixture.js';
import { freshNamespace, kubeConfig } from '../harness/index.js';
import { drive, judgeTrail, prng, type Sent, startForwarder, startTarget } from './crash-matrix.js';
import { freePort, type GatewayChild, spawnGateway } from './faults-a-fixture.js';

const seed = Number(process.env.GATEWAY_KILL_SEED ?? Date.now() % 100_000);
const RATE = 80;
const SECONDS = 30;
const AGENT = 'bot';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let ns: string;
let dir: string;
let controller: RunningController | undefined;
let target: { url: string; close(): Promise<void> } | undefined;
let forwarder: { port: number; close(): Promise<void> } | undefined;
let agentToken: string;
let ca: string;
let podName: string;
const replicas: Array<GatewayChild | undefined> = [undefined, undefined];
let restart: (i: number) => Promise<void>;

beforeAll(async () => {
  const kc = kubeConfig();
  ns = await freshNamespace('gw-replica-kill');
  const core = kc.makeApiClient(CoreV1Api);
  const create = wardenObjectCreator(kc, ns);
  target = await startTarget();
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: AGENT } } });
  await core.createNamespacedServiceAccount({
    namespace: ns,
    body: { metadata: { name: 'warden-gateway' } },
  });
  await create(PLURAL.AgentIdentity, 'AgentIdentity', AGENT, { serviceAccountName: AGENT });
  await create(PLURAL.CredentialProvider, 'CredentialProvider', 'api', {
    target: { url: target.url, protocol: 'HTTP' },
    type: 'JWT',
    jwt: { audience: 'api', defaultTTL: '30m' },
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', 'bot-read', {
    agentSelector: { names: [AGENT] },
    effect: 'Allow',
    rules: [{ targets: ['api'], http: { methods: ['GET'], paths: ['/ok/**'] } }],
  });
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: `${AGENT}-0`, annotations: { [ANNOTATION_AGENT]: AGENT } },
      spec: {
        serviceAccountName: AGENT,
        automountServiceAccountToken: false,
        containers: [{ name: 'agent', image: 'ghcr.io/acme/agent@sha256:0000' }],
      },
    },
  });
  podName = pod.metadata?.name ?? '';

  const authorityPort = await freePort();
  const issuer = `http://127.0.0.1:${authorityPort}`;
  controller = await startTestController(kc, {
    namespace: ns,
    log: pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' }),
    identityPrefix: 'gw-kill',
    issuer,
    authorityPort,
    gatewayServiceAccounts: [`${ns}/warden-gateway`],
    audit: { maxEntries: 200, maxBytes: 256 * 1024, maxAgeMs: 500 },
  });

  const token = async (sa: string, audience: string, bound: boolean): Promise<string> => {
    const tr = await core.createNamespacedServiceAccountToken({
      namespace: ns,
      name: sa,
      body: {
        spec: {
          audiences: [audience],
          expirationSeconds: 3600,
          ...(bound
            ? {
                boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: podName, uid: pod.metadata?.uid },
              }
            : {}),
        },
      },
    });
    return tr.status?.token ?? '';
  };
  dir = mkdtempSync(join(tmpdir(), 'warden-gw-kill-'));
  const files = {
    token: join(dir, 'gateway-token'),
    cert: join(dir, 'tls.crt'),
    key: join(dir, 'tls.key'),
  };
  writeFileSync(files.token, await token('warden-gateway', DEFAULT_BROKER_AUDIENCE, false));
  agentToken = await token(AGENT, GATEWAY_AUDIENCE, true);
  const authority = await createCertificateAuthority('warden-gw-kill-ca', 3600_000);
  const leaf = await authority.issue({
    commonName: 'warden-gateway',
    ipAddresses: ['127.0.0.1'],
    validityMs: 3600_000,
    usage: 'server',
  });
  ca = authority.certPem;
  writeFileSync(files.cert, leaf.certPem);
  writeFileSync(files.key, leaf.keyPem, { mode: 0o600 });

  const ports = [
    { listen: await freePort(), health: await freePort() },
    { listen: await freePort(), health: await freePort() },
  ];
  restart = async (i: number) => {
    replicas[i] = await spawnGateway({
      tokenFile: files.token,
      authorityUrl: issuer,
      tlsCertFile: files.cert,
      tlsKeyFile: files.key,
      listenPort: ports[i]!.listen,
      healthPort: ports[i]!.health,
      // The replica's emptyDir: the same one after a restart of its container.
      auditSpool: join(dir, `spool-${i}`),
      podName: `warden-gateway-${i}`,
    });
  };
  await Promise.all([restart(0), restart(1)]);
  forwarder = await startForwarder(ports.map((p) => p.listen));
}, 240_000);

afterAll(async () => {
  for (const r of replicas) await r?.kill();
  await forwarder?.close();
  await controller?.stop();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function trail(): Promise<{ entries: AuditEntry[]; records: AuditRecord[] }> {
  const api = new KubeConfigApi(kubeConfig());
  const list = await api.request<ObjectList<AuditRecord>>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
  );
  const records = list.items
    .filter((r) => r.spec.agent === AGENT)
    .sort((a, b) => a.spec.sequence - b.spec.sequence);
  return { records, entries: records.flatMap((r) => r.spec.entries) };
}

describe('fault: a gateway replica SIGKILLed under traffic', () => {
  it('every decision the agent received through either replica is in the trail exactly once', async () => {
    const random = prng(seed);
    const fetchTls = tlsFetch(ca);
    const headers = { authorization: `Bearer ${agentToken}` };
    // One kill of each replica at seeded moments in the middle of the traffic, one at a time.
    const plan = [0, 1]
      .map((replica) => ({ replica, at: (0.15 + 0.6 * random()) * SECONDS * 1000 }))
      .sort((a, b) => a.at - b.at);
    const killed: number[] = [];
    const t0 = Date.now();
    let faultError: unknown;
    const faults = (async () => {
      for (const f of plan) {
        const wait = t0 + f.at - Date.now();
        if (wait > 0) await sleep(wait);
        await replicas[f.replica]?.kill();
        killed.push(f.replica);
        await sleep(500 + random() * 2000);
        await restart(f.replica);
      }
    })().catch((err: unknown) => {
      faultError = err;
    });
    const prefix = `gk${seed}`;
    const sent: Sent[] = await drive(`https://127.0.0.1:${forwarder!.port}`, {
      rate: RATE,
      seconds: SECONDS,
      prefix,
      fetch: fetchTls,
      headers,
    });
    await faults;
    if (faultError) throw faultError;

    // The agent calls each replica again (as it would): a restarted replica ships what its spool
    // kept once it serves the agent's session again.
    for (const [i, r] of replicas.entries()) {
      const res = await fetchTls(`${r!.url}/http/api/ok/after-${i}`, {
        headers: { ...headers, 'x-request-id': `after-${seed}-${i}` },
      });
      expect(res.status, await res.text()).toBe(200);
    }
    const received = sent.filter((s) => s.decision !== undefined);
    let t = await trail();
    for (let i = 0; i < 90; i++) {
      const have = new Set(t.entries.map((e) => e.requestId));
      if (received.every((s) => have.has(s.id))) break;
      await sleep(2000);
      t = await trail();
    }
    // A little longer: a late duplicate would land now.
    await sleep(5000);
    const judged = judgeTrail(sent, await trail(), prefix);
    const unanswered = sent.length - received.length;
    console.log(
      `[gateway replica kill] seed ${seed}: ${sent.length} requests, ${received.length} decisions ` +
        `(${received.filter((s) => s.decision === 'Allow').length} Allow), ${unanswered} unanswered; ` +
        `killed replicas ${killed.join(', ')}; trail: ${judged.entries} entries in ${judged.records} records, ` +
        `missing ${judged.missing.length}, duplicated ${judged.duplicates.length}, ` +
        `entries of unanswered requests ${judged.unansweredInTrail}`,
    );
    expect(killed.sort()).toEqual([0, 1]);
    expect(received.some((s) => s.decision === 'Allow')).toBe(true);
    expect(received.some((s) => s.decision === 'Deny')).toBe(true);
    expect(judged.missing).toEqual([]);
    expect(judged.mismatched).toEqual([]);
    expect(judged.duplicates).toEqual([]);
    expect(judged.chainProblems).toEqual([]);
    expect(judged.entries).toBe(received.length + judged.unansweredInTrail);
  }, 300_000);
});
