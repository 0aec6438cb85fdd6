/**
 * The load stack (issue 10, part 3): a real `warden controller` (runController: operator +
 * authority + audit writer, in this process) against a real API server, a real HTTP upstream, an
 * agent pod with its AgentIdentity and AccessPolicy, and ONE real broker (runBroker, attested with
 * a TokenRequest token) in a process of its own, so its RSS and CPU time are its own.
 *
 * The broker process runs a plain-JS bundle of this module (esbuild, dependencies left external)
 * with LOAD_BROKER_CHILD=1, as a production build would run it: no TypeScript loader in it.
 *
 * `drive()` is an open-loop load generator: requests start on schedule whether or not earlier ones
 * finished. GET is allowed by policy, POST denied; anything else (a GET that is not 200, a POST
 * denied for a reason that is not a policy's, a connection error) is counted as an error.
 */

import { fork } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { runBroker } from '../broker/main.js';
import type { RunningController } from '../controller/run.js';
import type { AgentIdentity, AuditRecord } from '../core/api/index.js';
import { eventually } from './eventually.js';

const CHILD_ENV = 'LOAD_BROKER_CHILD';

/** Denial reasons that come from policy (core/policy DecisionReason); any other denial is an error. */
export const POLICY_DENIAL_REASONS: ReadonlySet<string> = new Set([
  'DeniedByPolicy',
  'NoMatchingAllow',
  'ConditionFailed',
]);

export interface LoadStackOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  agent?: string;
  /** The controller's audit batching; the controller's defaults when omitted. */
  audit?: { maxEntries: number; maxBytes: number; maxAgeMs: number };
  /** Level of the controller's and broker's logs (default silent; WARDEN_E2E_LOG overrides). */
  logLevel?: string;
}

/** Memory and CPU of the broker process. */
export interface BrokerProcessStats {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Memory outside the JS heap that V8 knows of (Buffers, ArrayBuffers). */
  external: number;
  /** user + system CPU time so far, µs. */
  cpuMicros: number;
}

export interface LoadStack {
  namespace: string;
  agent: string;
  controller: RunningController;
  /** The broker's agent-facing base URL. */
  brokerUrl: string;
  /** The authority's base URL (plain HTTP on loopback). */
  authorityUrl: string;
  /** The agent pod's projected service-account token (for a second client of the same pod). */
  tokenFile: string;
  /** Requests the upstream answered. */
  upstreamRequests(): number;
  /** Stats of the broker process; `gc` first runs a full garbage collection there. */
  brokerStats(gc?: boolean): Promise<BrokerProcessStats>;
  /** Resolves when the broker answers an allowed call (attested, snapshot received). */
  waitReady(timeoutMs?: number): Promise<void>;
  getAgent(): Promise<AgentIdentity>;
  auditRecords(): Promise<AuditRecord[]>;
  stop(): Promise<void>;
}

export interface DriveOptions {
  rate: number;
  durationMs: number;
  /** Every n-th request is a POST (denied by policy); default 4. */
  denyEvery?: number;
  /** x-request-id prefix, so this run's audit entries can be told apart. */
  requestIdPrefix: string;
  /** Connections to the broker (default 128). */
  maxSockets?: number;
}

export interface DriveResult {
  sent: number;
  allowed: number;
  denied: number;
  /** Failures not caused by policy, with a few samples to read. */
  errors: number;
  errorSamples: string[];
  /** Per-request latency (µs), in completion order. */
  latencies: Float64Array;
  elapsedMs: number;
}

export { eventually };

/** Decision entries of an agent's AuditRecords whose request id has the prefix, by decision. */
export function countDecisions(records: readonly AuditRecord[], requestIdPrefix: string) {
  let allowed = 0;
  let denied = 0;
  for (const r of records) {
    for (const e of r.spec.entries) {
      if (e.kind !== 'Decision' || !e.requestId?.startsWith(requestIdPrefix)) continue;
      if (e.decision === 'Allow') allowed++;
      else denied++;
    }
  }
  return { allowed, denied };
}

/** A plain HTTP upstream that answers every request with a small JSON body (keeps no history). */
async function startCountingUpstream(): Promise<{ url: string; count(): number; close(): Promise<void> }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    count: () => n,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Bundles this module to plain JS for the broker process; a per-process file, as workers run in
 * parallel. This module's dynamic imports (the controller side: startLoadStack) stay outside the
 * bundle: esbuild would otherwise hoist their packages' imports (the Kubernetes client, OIDC, pg)
 * to the top of the bundle, and the broker process would load — and count in its RSS — code a
 * broker never runs. The child never calls them, so they never resolve.
 */
async function bundleChild(): Promise<string> {
  const { build } = await import('esbuild');
  const self = fileURLToPath(import.meta.url);
  const dir = fileURLToPath(new URL('../node_modules/.cache/warden-load/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const outfile = `${dir}broker-${process.pid}.mjs`;
  await build({
    entryPoints: [self],
    bundle: true,
    plugins: [
      {
        name: 'controller-side-stays-out',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (a) =>
            a.kind === 'dynamic-import' && a.importer === self ? { path: a.path, external: true } : undefined,
          );
        },
      },
    ],
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

interface ChildStart {
  tokenFile: string;
  authorityUrl: string;
  podName: string;
  upstreamUrl: string;
  logLevel: string;
}

/** Inside the broker process: runBroker as `warden broker` would, then answer stats requests. */
async function childMain(): Promise<void> {
  const o = await new Promise<ChildStart>((resolve) =>
    process.once('message', (m) => resolve(m as ChildStart)),
  );
  const broker = await runBroker({
    tokenFile: o.tokenFile,
    authorityUrl: o.authorityUrl,
    listen: { host: '127.0.0.1', port: 0 },
    healthPort: 0,
    healthHost: '127.0.0.1',
    podName: o.podName,
    providers: [
      {
        name: 'api',
        url: o.upstreamUrl,
        protocol: 'HTTP',
        inject: { header: 'Authorization', format: 'Bearer {token}' },
      },
    ],
    log: pino({ level: o.logLevel }, pino.destination(2)),
  });
  process.on('message', (m) => {
    if (m === 'stop') {
      void broker.close().then(() => process.exit(0));
      return;
    }
    if (m !== 'stats' && m !== 'stats+gc') return;
    // gc exists when the process runs with --expose-gc (the parent starts it so).
    if (m === 'stats+gc') (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const stats: BrokerProcessStats = {
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      external: mem.external,
      cpuMicros: cpu.user + cpu.system,
    };
    process.send?.({ stats });
  });
  process.send?.({ port: broker.ports.listen });
}

export async function startLoadStack(o: LoadStackOptions): Promise<LoadStack> {
  // Imported here, not at the top: the broker process runs a bundle of this module and must not
  // load the controller (its RSS would not be a broker's).
  const { createAgentWithApi, startTestController, writePodToken } = await import('./agent-stack.js');
  const { DEFAULT_BATCH_LIMITS } = await import('../core/audit/batcher.js');
  const { KubeConfigApi } = await import('../kube/kube.js');
  const { API_VERSION, PLURAL } = await import('../core/constants.js');

  const ns = o.namespace;
  const agent = o.agent ?? 'load-bot';
  const kc = o.kubeConfig;
  const api = new KubeConfigApi(kc);
  const logLevel = process.env.WARDEN_E2E_LOG ?? o.logLevel ?? 'silent';
  const log = pino({ level: logLevel }, pino.destination(2));

  const upstream = await startCountingUpstream();
  const pod = await createAgentWithApi(kc, { namespace: ns, agent, upstreamUrl: upstream.url });
  const controller = await startTestController(kc, {
    namespace: ns,
    log,
    identityPrefix: 'load',
    audit: o.audit ?? DEFAULT_BATCH_LIMITS,
  });
  const { dir: tokenDir, tokenFile } = await writePodToken(kc, {
    namespace: ns,
    serviceAccount: agent,
    pod,
    prefix: 'warden-load-',
  });

  const bundle = await bundleChild();
  const child = fork(bundle, [], {
    // LOAD_BROKER_NODE_FLAGS: V8/Node flags for the broker process (e.g. --cpu-prof, --max-semi-space-size=4).
    execArgv: ['--expose-gc', ...(process.env.LOAD_BROKER_NODE_FLAGS ?? '').split(' ').filter(Boolean)],
    env: { ...process.env, [CHILD_ENV]: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const start: ChildStart = {
    tokenFile,
    authorityUrl: `http://127.0.0.1:${controller.authorityPort}`,
    podName: pod.metadata?.name ?? '',
    upstreamUrl: upstream.url,
    logLevel: logLevel === 'silent' ? 'warn' : logLevel,
  };
  child.send(start);
  const port = await Promise.race([
    new Promise<number>((resolve) =>
      child.on('message', (m: { port?: number }) => {
        if (m.port) resolve(m.port);
      }),
    ),
    exited.then((code) => {
      throw new Error(`the broker process exited with ${code} before listening`);
    }),
  ]);
  const brokerUrl = `http://127.0.0.1:${port}`;
  const resourcePath = (plural: string, name = '') =>
    `/apis/${API_VERSION}/namespaces/${ns}/${plural}${name ? `/${name}` : ''}`;

  return {
    namespace: ns,
    agent,
    controller,
    brokerUrl,
    authorityUrl: start.authorityUrl,
    tokenFile,
    upstreamRequests: upstream.count,
    brokerStats: (gc = false) =>
      new Promise((resolve, reject) => {
        const onMessage = (m: { stats?: BrokerProcessStats }) => {
          if (!m.stats) return;
          child.off('message', onMessage);
          resolve(m.stats);
        };
        child.on('message', onMessage);
        child.send(gc ? 'stats+gc' : 'stats', (err) => err && reject(err));
      }),
    async waitReady(timeoutMs = 60_000) {
      await eventually(
        'the broker to allow a call',
        async () => {
          const r = await fetch(`${brokerUrl}/http/api/ready`);
          await r.text();
          return r.status === 200;
        },
        timeoutMs,
        200,
      );
    },
    getAgent: () => api.request<AgentIdentity>('GET', resourcePath(PLURAL.AgentIdentity, agent)),
    async auditRecords() {
      const list = await api.request<{ items: AuditRecord[] }>('GET', resourcePath(PLURAL.AuditRecord));
      return list.items.filter((r) => r.spec.agent === agent);
    },
    async stop() {
      if (child.exitCode === null) {
        child.send('stop');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await controller.stop();
      await upstream.close();
      rmSync(tokenDir, { recursive: true, force: true });
      rmSync(bundle, { force: true });
    },
  };
}

/** One request to the broker; resolves with the status and body (never rejects on HTTP status). */
function send(
  agent: Agent,
  url: string,
  method: 'GET' | 'POST',
  requestId: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        headers: {
          'x-request-id': requestId,
          ...(method === 'POST' ? { 'content-type': 'application/json', 'content-length': 2 } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

/** Pure: whether a response is what policy says it should be; the problem otherwise. */
export function classify(
  method: 'GET' | 'POST',
  status: number,
  body: string,
): 'allowed' | 'denied' | string {
  if (method === 'GET') return status === 200 ? 'allowed' : `GET: HTTP ${status} ${body.slice(0, 200)}`;
  if (status !== 403) return `POST: HTTP ${status} ${body.slice(0, 200)}`;
  let reason: unknown;
  try {
    reason = (JSON.parse(body) as { reason?: unknown }).reason;
  } catch {
    return `POST: 403 with a body that is not JSON: ${body.slice(0, 200)}`;
  }
  return typeof reason === 'string' && POLICY_DENIAL_REASONS.has(reason)
    ? 'denied'
    : `POST: denied for a reason that is not policy: ${String(reason)}`;
}

/** Open loop at `rate` requests/s for `durationMs`, every n-th a POST; waits for every answer. */
export async function drive(brokerUrl: string, o: DriveOptions): Promise<DriveResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.maxSockets ?? 128 });
  const total = Math.round((o.rate * o.durationMs) / 1000);
  const denyEvery = o.denyEvery ?? 4;
  const latencies = new Float64Array(total);
  const r: DriveResult = {
    sent: 0,
    allowed: 0,
    denied: 0,
    errors: 0,
    errorSamples: [],
    latencies,
    elapsedMs: 0,
  };
  let done = 0;
  let measured = 0;
  const error = (what: string) => {
    r.errors++;
    if (r.errorSamples.length < 10) r.errorSamples.push(what);
  };
  const t0 = performance.now();
  let finish: () => void = () => {};
  const allDone = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const fire = (i: number) => {
    const method = i % denyEvery === 0 ? 'POST' : 'GET';
    const started = performance.now();
    send(agent, `${brokerUrl}/http/api/v1/tickets/${i}`, method, `${o.requestIdPrefix}${i}`)
      .then(
        (res) => {
          latencies[measured++] = (performance.now() - started) * 1000;
          const c = classify(method, res.status, res.body);
          if (c === 'allowed') r.allowed++;
          else if (c === 'denied') r.denied++;
          else error(c);
        },
        (err: unknown) => error(`${method}: ${err instanceof Error ? err.message : String(err)}`),
      )
      .finally(() => {
        done++;
        if (done === total) finish();
      });
  };
  // Ticks of a few ms send whatever is due by then: the schedule holds without a busy loop that
  // would take a core from the broker on a small machine.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * o.rate) / 1000) + 1);
      while (r.sent < due) fire(r.sent++);
      if (r.sent >= total) resolve();
      else setTimeout(tick, 2);
    };
    tick();
  });
  if (total > 0) await allDone;
  r.elapsedMs = performance.now() - t0;
  agent.destroy();
  return { ...r, latencies: latencies.subarray(0, measured) };
}

if (process.env[CHILD_ENV] === '1') {
  void childMain().catch((err: unknown) => {
    process.stderr.write(`load broker process failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
