/**
 * The audit crash matrix (#18): traffic through a real `warden broker` (with its audit spool) to a
 * real HTTP target, two real `warden controller` replicas (leader election; each serves the
 * authority and writes AuditRecords) behind a loopback forwarder (what a Service does), on a
 * PRIVATE control plane whose kube-apiserver can be killed — while, at seeded random moments, the
 * broker, the leader controller and kube-apiserver are SIGKILLed and started again.
 *
 * Afterwards every decision the agent received must be in the trail exactly once, with the
 * decision it saw; no request id twice; the chain verifies. Used by
 * audit-crash-matrix.e2e.test.ts (reduced, in `make test`) and bench/audit-crash.bench.ts (full).
 */
import { mkdtempSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createConnection, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { AuditEntry, AuditRecord } from '../../core/api/index.js';
import { verifyChain } from '../../core/audit/chain.js';
import { API_VERSION, LEADER_LEASE_NAME, PLURAL } from '../../core/constants.js';
import { KubeConfigApi, type ObjectList } from '../../kube/kube.js';
import { type ControlPlane, installCrds, startControlPlane } from '../harness/index.js';
import {
  type BrokerChild,
  createAgentPod,
  createWardenObject,
  freePort,
  spawnBroker,
} from './faults-a-fixture.js';
import { type ControllerProcess, leaseHolder, spawnController } from './faults-b-fixture.js';

export interface CrashMatrixOptions {
  /** Requests per second the agent sends (open loop). */
  readonly rate: number;
  readonly seconds: number;
  /** SIGKILLs of each process during the traffic. */
  readonly kills: { readonly broker: number; readonly controller: number; readonly apiserver: number };
  readonly seed: number;
  readonly log?: (line: string) => void;
}

export type Decision = 'Allow' | 'Deny';

export interface CrashMatrixResult {
  readonly seed: number;
  readonly seconds: number;
  /** Requests sent, and per second over the traffic phase. */
  readonly sent: number;
  readonly sentPerSecond: number;
  /** Requests answered with a decision (200 = Allow, 403 with a decision body = Deny). */
  readonly decisions: number;
  readonly allowed: number;
  readonly denied: number;
  /** Requests without a decision (broker down: connection refused/reset, timeouts), and why. */
  readonly unanswered: number;
  readonly unansweredBy: Readonly<Record<string, number>>;
  /** Kills done, by process. */
  readonly killed: { broker: number; controller: number; apiserver: number };
  /** Decision entries of this run's requests in the trail, and AuditRecords of the agent. */
  readonly entries: number;
  readonly records: number;
  /** Received decisions missing from the trail, or there with another decision. */
  readonly missing: readonly string[];
  readonly mismatched: readonly string[];
  /** Request ids with more than one Decision entry. */
  readonly duplicates: readonly string[];
  /** Entries for requests the agent got no decision for (spooled, then the broker died before answering). */
  readonly unansweredInTrail: number;
  readonly chainProblems: readonly string[];
  /** Seconds from the end of traffic until every received decision was in the trail. */
  readonly settleSeconds: number;
}

/** mulberry32: a small seeded PRNG, so a failing run can be repeated with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** After the traffic: how long the trail may go without a new entry before missing ones count as lost. */
const STALL_MS = 60_000;
/** And the longest wait for a draining backlog (one agent's chain writes ~130-200 entries/s here). */
const SETTLE_LIMIT_MS = 30 * 60_000;

/** A loopback TCP forwarder to whichever backend accepts the connection (a Service in front of replicas). */
export async function startForwarder(
  ports: readonly number[],
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let next = 0;
  const server = createTcpServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    const attempt = (tries: number): void => {
      if (tries >= ports.length) {
        client.destroy();
        return;
      }
      const port = ports[next++ % ports.length] as number;
      const upstream = createConnection({ host: '127.0.0.1', port });
      let connected = false;
      upstream.on('error', () => {
        if (connected) client.destroy();
        else attempt(tries + 1);
      });
      upstream.once('connect', () => {
        connected = true;
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        client.on('error', () => upstream.destroy());
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A loopback HTTP target answering 200 to everything (the provider behind the broker). */
export async function startTarget(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createHttpServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface MatrixStack {
  readonly cp: ControlPlane;
  readonly api: KubeConfigApi;
  readonly namespace: string;
  readonly agent: string;
  /** The broker's agent-facing base URL. */
  readonly brokerUrl: string;
  broker(): BrokerChild | undefined;
  /** (Re)starts the broker on the same ports, spool and token file; resolves once it listens. */
  startBroker(spool?: boolean): Promise<void>;
  killBroker(): Promise<void>;
  /** SIGKILLs the leader controller (or replica a when the Lease cannot be read) and starts it again. */
  crashLeader(downMs: number): Promise<string>;
  crashApiServer(downMs: number): Promise<void>;
  /** Every Decision entry of the agent, in chain order, and the records. */
  trail(): Promise<{ entries: AuditEntry[]; records: AuditRecord[] }>;
  stop(): Promise<void>;
}

const AGENT = 'bot';

/** The control plane, two controller replicas, the forwarder, the target and the broker, ready. */
export async function startMatrixStack(log: (line: string) => void = () => {}): Promise<MatrixStack> {
  const cp = await startControlPlane();
  const cleanups: Array<() => Promise<void>> = [() => cp.stop()];
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const api = new KubeConfigApi(kc);
    const namespace = 'crash-matrix';
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    const target = await startTarget();
    cleanups.push(() => target.close());
    await createWardenObject(api, namespace, 'CredentialProvider', 'api', {
      target: { url: target.url, protocol: 'HTTP' },
      type: 'JWT',
      jwt: { audience: 'api', defaultTTL: '30m' },
    });
    await createWardenObject(api, namespace, 'AccessPolicy', 'bot-read', {
      agentSelector: { names: [AGENT] },
      effect: 'Allow',
      rules: [{ targets: ['api'], http: { methods: ['GET'], paths: ['/ok/**'] } }],
    });
    const pod = await createAgentPod(kc, api, { namespace, agent: AGENT });

    const ports = [await freePort(), await freePort()];
    const identities = ['replica-a', 'replica-b'];
    const replicas = new Map<string, ControllerProcess>();
    const spawn = async (i: number) => {
      const c = await spawnController({
        kubeconfigPath: cp.kubeconfigPath,
        namespace,
        identity: identities[i] as string,
        authorityPort: ports[i] as number,
        auditFlushSeconds: 1,
      });
      replicas.set(identities[i] as string, c);
      return c;
    };
    await Promise.all([spawn(0), spawn(1)]);
    cleanups.push(async () => {
      await Promise.all([...replicas.values()].map((r) => r.kill()));
    });
    const fwd = await startForwarder(ports);
    cleanups.push(() => fwd.close());

    const spoolDir = mkdtempSync(join(tmpdir(), 'warden-crash-spool-'));
    const brokerPorts = { listen: await freePort(), health: await freePort() };
    let broker: BrokerChild | undefined;
    const startBroker = async (spool = true) => {
      broker = await spawnBroker({
        tokenFile: pod.tokenFile,
        authorityUrl: `http://127.0.0.1:${fwd.port}`,
        listenPort: brokerPorts.listen,
        healthPort: brokerPorts.health,
        podName: pod.podName,
        ...(spool ? { auditSpool: spoolDir } : {}),
        listeningOnly: true,
      });
    };
    cleanups.push(async () => {
      await broker?.kill();
    });
    await startBroker();
    // Ready: attested with a snapshot (through the forwarder).
    for (let i = 0; i < 600; i++) {
      if ((await broker?.readiness().catch(() => ({ status: 0 })))?.status === 200) break;
      await sleep(200);
    }

    return {
      cp,
      api,
      namespace,
      agent: AGENT,
      brokerUrl: `http://127.0.0.1:${brokerPorts.listen}`,
      broker: () => broker,
      startBroker,
      killBroker: async () => {
        await broker?.kill();
      },
      crashLeader: async (downMs) => {
        const holder = await Promise.race([
          leaseHolder(api, namespace, LEADER_LEASE_NAME),
          sleep(2000).then(() => undefined),
        ]);
        const name = holder && replicas.has(holder) ? holder : 'replica-a';
        await replicas.get(name)?.kill();
        log(`killed controller ${name}${holder === name ? ' (leader)' : ''}`);
        await sleep(downMs);
        await spawn(identities.indexOf(name));
        return name;
      },
      crashApiServer: async (downMs) => {
        await cp.killApiServer();
        log('killed kube-apiserver');
        await sleep(downMs);
        // Clients retrying against the dead port can briefly hold it (a TCP self-connect from
        // the ephemeral range the port was picked from): the start is tried again.
        for (let attempt = 1; ; attempt++) {
          try {
            await cp.startApiServer();
            return;
          } catch (err) {
            if (attempt >= 5) throw err;
            log(`kube-apiserver did not start (attempt ${attempt}): ${String(err).split('\n')[0]}`);
            await sleep(1000);
          }
        }
      },
      trail: async () => {
        const list = await api.request<ObjectList<AuditRecord>>(
          'GET',
          `/apis/${API_VERSION}/namespaces/${namespace}/${PLURAL.AuditRecord}`,
        );
        const records = list.items
          .filter((r) => r.spec.agent === AGENT)
          .sort((a, b) => a.spec.sequence - b.spec.sequence);
        return { records, entries: records.flatMap((r) => r.spec.entries) };
      },
      stop: async () => {
        for (const c of cleanups.reverse()) await c().catch(() => {});
      },
    };
  } catch (err) {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    throw err;
  }
}

/** One agent request: the decision it received, or none. */
export interface Sent {
  readonly id: string;
  decision?: Decision;
  /** Without a decision: the HTTP status, or the error. */
  outcome?: string;
}

/** Sends `rate` requests/s for `seconds` (1 in 4 a POST the policy denies); resolves with every request. */
export async function drive(
  url: string,
  o: {
    rate: number;
    seconds: number;
    prefix: string;
    latencies?: number[];
    /** The agent's HTTP client (default: global fetch) and headers it adds (the gateway's bearer token). */
    fetch?: typeof fetch;
    headers?: Readonly<Record<string, string>>;
  },
): Promise<Sent[]> {
  const send = o.fetch ?? fetch;
  const sent: Sent[] = [];
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  const total = Math.round(o.rate * o.seconds);
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / o.rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    // Open loop, but bounded: a broker that is down answers nothing, and a backlog would swamp
    // the machine when it returns.
    if (pending.size >= 512) await Promise.race(pending);
    const s: Sent = { id: `${o.prefix}-${i}` };
    sent.push(s);
    const post = i % 4 === 3;
    const t0 = performance.now();
    const p = send(`${url}/http/api/ok/${i}`, {
      method: post ? 'POST' : 'GET',
      headers: { ...o.headers, 'x-request-id': s.id },
      signal: AbortSignal.timeout(15_000),
    })
      .then(async (r) => {
        const text = await r.text();
        if (r.status === 200) s.decision = 'Allow';
        else if (r.status === 403) {
          const body = JSON.parse(text) as { decision?: string };
          if (body.decision === 'Deny') s.decision = 'Deny';
        }
        if (s.decision) o.latencies?.push(performance.now() - t0);
        else s.outcome = `HTTP ${r.status}`;
      })
      .catch((err: unknown) => {
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        s.outcome = cause ?? (err instanceof Error ? err.name : 'error');
      })
      .finally(() => pending.delete(p));
    pending.add(p);
  }
  await Promise.all(pending);
  return sent;
}

/** Runs the matrix on a fresh stack; the result says what was checked (the caller asserts). */
export async function runCrashMatrix(o: CrashMatrixOptions): Promise<CrashMatrixResult> {
  const log = o.log ?? (() => {});
  const random = prng(o.seed);
  const stack = await startMatrixStack(log);
  try {
    // The faults, at seeded random moments in the middle 80 % of the traffic, one at a time.
    const plan = [
      ...Array.from({ length: o.kills.broker }, () => 'broker' as const),
      ...Array.from({ length: o.kills.controller }, () => 'controller' as const),
      ...Array.from({ length: o.kills.apiserver }, () => 'apiserver' as const),
    ]
      .map((kind) => ({ kind, at: (0.1 + 0.8 * random()) * o.seconds * 1000 }))
      .sort((a, b) => a.at - b.at);
    const killed = { broker: 0, controller: 0, apiserver: 0 };
    const t0 = Date.now();
    const faults = (async () => {
      for (const f of plan) {
        const wait = t0 + f.at - Date.now();
        if (wait > 0) await sleep(wait);
        const downMs = 500 + random() * 2500;
        if (f.kind === 'broker') {
          await stack.killBroker();
          log('killed broker');
          await sleep(downMs);
          await stack.startBroker();
        } else if (f.kind === 'controller') {
          await stack.crashLeader(downMs);
        } else {
          await stack.crashApiServer(downMs);
        }
        killed[f.kind]++;
      }
    })();
    // Awaited after the traffic; until then a failure must not escape as an unhandled rejection
    // (which would end the process without stopping the stack).
    let faultError: unknown;
    const faultsDone = faults.catch((err: unknown) => {
      faultError = err;
    });
    const prefix = `cm${o.seed}`;
    const sent = await drive(stack.brokerUrl, { rate: o.rate, seconds: o.seconds, prefix });
    const trafficSeconds = (Date.now() - t0) / 1000;
    await faultsDone;
    if (faultError) throw faultError;

    // Everything is up again (the faults loop restarts what it kills): wait for the trail.
    const received = sent.filter((s) => s.decision !== undefined);
    // Waits as long as the trail keeps growing: a backlog still draining from the spool is not a
    // loss, a trail that stopped growing with decisions missing is. Gives up after STALL_MS without
    // a new entry, or at the hard limit.
    const settleStart = Date.now();
    let trail = await stack.trail();
    let lastGrowth = Date.now();
    let lastCount = trail.entries.length;
    while (Date.now() - settleStart < SETTLE_LIMIT_MS) {
      const have = new Set(trail.entries.map((e) => e.requestId));
      if (received.every((s) => have.has(s.id))) break;
      if (Date.now() - lastGrowth > STALL_MS) break;
      await sleep(2000);
      trail = await stack.trail();
      if (trail.entries.length > lastCount) {
        lastCount = trail.entries.length;
        lastGrowth = Date.now();
      }
    }
    const settleSeconds = (Date.now() - settleStart) / 1000;
    // A little longer: a late duplicate would land now.
    await sleep(5000);
    trail = await stack.trail();

    const judged = judgeTrail(sent, trail, prefix);
    return {
      seed: o.seed,
      seconds: trafficSeconds,
      sent: sent.length,
      sentPerSecond: sent.length / trafficSeconds,
      decisions: received.length,
      allowed: received.filter((s) => s.decision === 'Allow').length,
      denied: received.filter((s) => s.decision === 'Deny').length,
      unanswered: sent.length - received.length,
      unansweredBy: sent.reduce<Record<string, number>>((m, s) => {
        if (s.outcome) m[s.outcome] = (m[s.outcome] ?? 0) + 1;
        return m;
      }, {}),
      killed,
      ...judged,
      settleSeconds,
    };
  } finally {
    await stack.stop();
  }
}

/** What the trail says about the decisions the agent received (the caller asserts). */
export interface TrailJudgement {
  readonly entries: number;
  readonly records: number;
  readonly missing: readonly string[];
  readonly mismatched: readonly string[];
  readonly duplicates: readonly string[];
  readonly unansweredInTrail: number;
  readonly chainProblems: readonly string[];
}

/**
 * Compares the requests sent (ids `<prefix>-<n>`) with the agent's trail: every decision received
 * must be there once with the decision the agent saw; the records' chain must verify.
 */
export function judgeTrail(
  sent: readonly Sent[],
  trail: { entries: AuditEntry[]; records: AuditRecord[] },
  prefix: string,
): TrailJudgement {
  const received = sent.filter((s) => s.decision !== undefined);
  const ours = trail.entries.filter((e) => e.kind === 'Decision' && e.requestId?.startsWith(`${prefix}-`));
  const byId = new Map<string, AuditEntry[]>();
  for (const e of ours) byId.set(e.requestId as string, [...(byId.get(e.requestId as string) ?? []), e]);
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const s of received) {
    const got = byId.get(s.id);
    if (!got) missing.push(s.id);
    else if (got[0]?.decision !== s.decision)
      mismatched.push(`${s.id}: agent saw ${s.decision}, trail says ${got[0]?.decision}`);
  }
  const duplicates = [...byId].filter(([, es]) => es.length > 1).map(([id]) => id);
  const answered = new Set(received.map((s) => s.id));
  const chain = verifyChain(trail.records.map((r) => ({ name: r.metadata.name ?? '', spec: r.spec })));
  return {
    entries: ours.length,
    records: trail.records.length,
    missing,
    mismatched,
    duplicates,
    unansweredInTrail: [...byId.keys()].filter((id) => !answered.has(id)).length,
    chainProblems: chain.problems.map((p) => JSON.stringify(p)),
  };
}

/** One line per number, for the test's and the benchmark's output. */
export function describeResult(r: CrashMatrixResult): string {
  return [
    `crash matrix (seed ${r.seed}): ${r.sent} requests in ${r.seconds.toFixed(1)} s (${r.sentPerSecond.toFixed(0)}/s)`,
    `  kills: broker ${r.killed.broker}, leader controller ${r.killed.controller}, kube-apiserver ${r.killed.apiserver}`,
    `  decisions received: ${r.decisions} (${r.allowed} Allow, ${r.denied} Deny); unanswered: ${r.unanswered} (${Object.entries(
      r.unansweredBy,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
    `  trail: ${r.entries} Decision entries in ${r.records} AuditRecords; settled ${r.settleSeconds.toFixed(1)} s after the traffic`,
    `  missing ${r.missing.length}, wrong decision ${r.mismatched.length}, duplicated ${r.duplicates.length}, entries of unanswered requests ${r.unansweredInTrail}, chain problems ${r.chainProblems.length}`,
  ].join('\n');
}
