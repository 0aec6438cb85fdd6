/**
 * Broker benchmark: the latency the broker adds to an MCP tools/call versus calling the same
 * upstream MCP server directly, at fixed open-loop rates (200 and 1,000 req/s on loopback, 5 s
 * each), and the broker's RSS at idle and under load.
 *
 * The broker runs in its own process, started from a plain-JS bundle of this module (esbuild, as
 * a production build would run: no TypeScript loader in the process) with
 * WARDEN_BENCH_BROKER_CHILD=1, so its RSS and CPU time are its own. The upstream is a minimal
 * JSON-RPC MCP responder (initialize → session id, tools/call → canned result) so the machine can
 * sustain the rates; the MCP semantics are covered by broker/*.int.test.ts against the SDK server.
 * The load generator and upstream share this process: both paths pay the same client and upstream
 * costs, and the difference is the broker. `cpuMicrosPerOp` of the via-broker rows is the broker
 * process's CPU time per request — the steady number when the machine is busy.
 */
import { fork } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './lib.js';
import { percentile } from './lib.js';

const CHILD_ENV = 'WARDEN_BENCH_BROKER_CHILD';
const RATES = [200, 1000];
const DURATION_MS = 5_000;

interface Sample {
  latencies: number[];
  errors: number;
}

/** POST one JSON-RPC message and wait for the whole answer; resolves with µs elapsed. */
function post(agent: Agent, url: URL, sessionId: string, body: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-06-18',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
          else resolve(Number(process.hrtime.bigint() - t0) / 1000);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function initialize(url: URL): Promise<string> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'bench', version: '1' },
      },
    }),
  });
  await r.text();
  const sid = r.headers.get('mcp-session-id');
  if (!sid) throw new Error(`no session from ${url} (HTTP ${r.status})`);
  await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sid,
    },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  }).then((x) => x.text());
  return sid;
}

/** Open loop: requests start on schedule whether or not earlier ones finished. */
async function load(url: URL, sessionId: string, rate: number, durationMs: number): Promise<Sample> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round((rate * durationMs) / 1000);
  const interval = 1e9 / rate;
  const latencies: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < total; i++) {
    const due = start + BigInt(Math.round(i * interval));
    while (process.hrtime.bigint() < due) await new Promise((r) => setImmediate(r));
    const body = `{"jsonrpc":"2.0","id":${i + 1},"method":"tools/call","params":{"name":"jira.search","arguments":{"q":"printer ${i}"}}}`;
    inflight.push(
      post(agent, url, sessionId, body).then(
        (us) => {
          latencies.push(us);
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(inflight);
  agent.destroy();
  return { latencies, errors };
}

/** Closed loop, one call at a time: the hop's own latency, without queueing behind other calls. */
async function sequential(url: URL, sessionId: string, n: number): Promise<Sample> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let errors = 0;
  for (let i = 0; i < n; i++) {
    const body = `{"jsonrpc":"2.0","id":${i + 1},"method":"tools/call","params":{"name":"jira.search","arguments":{"q":"printer ${i}"}}}`;
    try {
      latencies.push(await post(agent, url, sessionId, body));
    } catch {
      errors++;
    }
  }
  agent.destroy();
  return { latencies, errors };
}

function result(
  name: string,
  s: Sample,
  rate: number,
  note: string,
  cpuMicrosPerOp = Number.NaN,
): BenchResult {
  const sorted = [...s.latencies].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  return {
    name,
    p50Micros: p50,
    p99Micros: p99,
    meanMicros: mean,
    opsPerSec: rate,
    cpuMicrosPerOp,
    iterations: sorted.length,
    repeats: 1,
    spread: { p50: { min: p50, max: p50 }, p99: { min: p99, max: p99 }, opsPerSec: { min: rate, max: rate } },
    note: `${note}${s.errors ? `; ${s.errors} errors` : ''}`,
  };
}

interface ChildHandle {
  port: number;
  rss(): Promise<number>;
  /** Total CPU time (user + system) of the broker process so far, µs. */
  cpu(): Promise<number>;
  stop(): void;
}

/** Bundle this module to plain JS (dependencies stay external, resolved from node_modules). */
async function bundleChild(): Promise<string> {
  const { build } = await import('esbuild');
  const dir = fileURLToPath(new URL('../node_modules/.cache/warden-bench/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const outfile = `${dir}broker-child.mjs`;
  await build({
    entryPoints: [fileURLToPath(import.meta.url)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

async function startBrokerProcess(upstreamUrl: string): Promise<ChildHandle> {
  const child = fork(await bundleChild(), [], {
    // V8 flags for the broker process, e.g. "--max-semi-space-size=4" (what the sidecar would get
    // through NODE_OPTIONS) to see their effect on RSS and latency.
    execArgv: (process.env.WARDEN_BENCH_BROKER_NODE_FLAGS ?? '').split(' ').filter(Boolean),
    env: { ...process.env, [CHILD_ENV]: '1', UPSTREAM_URL: upstreamUrl },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port?: number }) =>
      m.port ? resolve(m.port) : reject(new Error('no port')),
    );
    child.once('exit', (code) => reject(new Error(`broker process exited with ${code}`)));
  });
  return {
    port,
    rss: () =>
      new Promise((resolve) => {
        child.once('message', (m: { rss?: number }) => resolve(m.rss ?? Number.NaN));
        child.send('rss');
      }),
    cpu: () =>
      new Promise((resolve) => {
        child.once('message', (m: { cpu?: number }) => resolve(m.cpu ?? Number.NaN));
        child.send('cpu');
      }),
    stop: () => child.kill(),
  };
}

/** The broker process: a composed broker with an in-process snapshot and issuer, on loopback. */
async function childMain(): Promise<void> {
  const { pino } = await import('pino');
  const { composeBroker } = await import('../broker/compose.js');
  const { StaticSnapshotSource } = await import('../broker/decider.js');
  const { MemoryAuditSink } = await import('../broker/audit.js');
  const { RecordingIssuer, provider, snapshot } = await import('../broker/testing.js');
  const source = new StaticSnapshotSource();
  source.set(
    snapshot({
      policies: [
        { name: 'bench', spec: { rules: [{ targets: ['jira'], tools: ['jira.search', 'jira.get_*'] }] } },
      ],
      providers: [provider('jira', process.env.UPSTREAM_URL ?? '')],
    }),
  );
  // Keep the snapshot fresh, as the stream's pings would.
  setInterval(() => source.heartbeat(), 1000);
  const broker = composeBroker({
    source,
    issuer: new RecordingIssuer(),
    audit: new MemoryAuditSink(1000),
    log: pino({ level: 'silent' }),
  });
  await new Promise<void>((resolve) => broker.server.listen(0, '127.0.0.1', resolve));
  process.on('message', (m) => {
    if (m === 'rss') process.send?.({ rss: process.memoryUsage().rss });
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send?.({ cpu: u.user + u.system });
    }
  });
  process.send?.({ port: (broker.server.address() as AddressInfo).port });
}

/** A minimal MCP-over-HTTP JSON responder: session on initialize, 202 for notifications, canned tool results. */
async function startLightUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { id?: unknown; method?: string };
      if (msg.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      const result =
        msg.method === 'initialize'
          ? {
              protocolVersion: '2025-06-18',
              capabilities: { tools: {} },
              serverInfo: { name: 'light', version: '1' },
            }
          : { content: [{ type: 'text', text: 'results for printer' }] };
      const body = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...(msg.method === 'initialize' ? { 'mcp-session-id': 'bench-session' } : {}),
      });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function run(): Promise<BenchResult[]> {
  const upstream = await startLightUpstream();
  const broker = await startBrokerProcess(upstream.url);
  const results: BenchResult[] = [];
  try {
    const direct = new URL(upstream.url);
    const via = new URL(`http://127.0.0.1:${broker.port}/mcp/jira`);
    const directSid = await initialize(direct);
    const viaSid = await initialize(via);
    // Warm-up both paths (JIT, connection pools, credential cache).
    await load(direct, directSid, 500, 1000);
    await load(via, viaSid, 500, 1000);
    await new Promise((r) => setTimeout(r, 500));
    const rssIdle = await broker.rss();
    let rssLoad = 0;
    {
      const d = await sequential(direct, directSid, 2000);
      const cpu0 = await broker.cpu();
      const b = await sequential(via, viaSid, 2000);
      const cpuPerOp = ((await broker.cpu()) - cpu0) / 2000;
      const dr = result('broker/mcp-tools-call/direct@sequential', d, Number.NaN, 'one call at a time');
      const br = result(
        'broker/mcp-tools-call/via-broker@sequential',
        b,
        Number.NaN,
        'one call at a time',
        cpuPerOp,
      );
      results.push(dr, br, {
        ...br,
        name: 'broker/added-latency@sequential',
        p50Micros: br.p50Micros - dr.p50Micros,
        p99Micros: br.p99Micros - dr.p99Micros,
        meanMicros: br.meanMicros - dr.meanMicros,
        target: { metric: 'p50Micros', max: 1000 },
        note: `the hop itself: p50 ${(br.p50Micros / 1000).toFixed(2)} vs ${(dr.p50Micros / 1000).toFixed(2)} ms (ratio ${(br.p50Micros / dr.p50Micros).toFixed(2)}×), p99 ${(br.p99Micros / 1000).toFixed(2)} vs ${(dr.p99Micros / 1000).toFixed(2)} ms`,
      });
    }
    for (const rate of RATES) {
      const d = await load(direct, directSid, rate, DURATION_MS);
      const cpu0 = await broker.cpu();
      const probe = setTimeout(() => {
        void broker.rss().then((r) => {
          rssLoad = Math.max(rssLoad, r);
        });
      }, DURATION_MS / 2);
      const b = await load(via, viaSid, rate, DURATION_MS);
      clearTimeout(probe);
      const cpuPerOp = ((await broker.cpu()) - cpu0) / Math.max(1, b.latencies.length + b.errors);
      rssLoad = Math.max(rssLoad, await broker.rss());
      const dr = result(
        `broker/mcp-tools-call/direct@${rate}rps`,
        d,
        rate,
        'client → upstream MCP responder',
      );
      const br = result(
        `broker/mcp-tools-call/via-broker@${rate}rps`,
        b,
        rate,
        'client → broker → upstream; cpuMicrosPerOp = broker CPU per call',
        cpuPerOp,
      );
      const addedP50 = br.p50Micros - dr.p50Micros;
      const addedP99 = br.p99Micros - dr.p99Micros;
      results.push(dr, br);
      results.push({
        ...br,
        name: `broker/added-latency@${rate}rps`,
        p50Micros: addedP50,
        p99Micros: addedP99,
        meanMicros: br.meanMicros - dr.meanMicros,
        spread: {
          ...br.spread,
          p50: { min: addedP50, max: addedP50 },
          p99: { min: addedP99, max: addedP99 },
        },
        target: { metric: 'p50Micros', max: 1000 },
        note: `broker p50 ${(br.p50Micros / 1000).toFixed(2)} ms vs direct ${(dr.p50Micros / 1000).toFixed(2)} ms (ratio ${(br.p50Micros / dr.p50Micros).toFixed(2)}×); p99 ${(br.p99Micros / 1000).toFixed(2)} vs ${(dr.p99Micros / 1000).toFixed(2)} ms (ratio ${(br.p99Micros / dr.p99Micros).toFixed(2)}×); targets: +<1 ms p50, +<3 ms p99`,
      });
      results.push({
        ...br,
        name: `broker/added-latency-p99@${rate}rps`,
        p50Micros: addedP50,
        p99Micros: addedP99,
        meanMicros: br.meanMicros - dr.meanMicros,
        target: { metric: 'p99Micros', max: 3000 },
        note: 'added p99 (target < 3 ms)',
      });
    }
    const mb = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;
    const rssResult = (name: string, bytes: number): BenchResult => ({
      name,
      p50Micros: Number.NaN,
      p99Micros: Number.NaN,
      meanMicros: Number.NaN,
      opsPerSec: Number.NaN,
      cpuMicrosPerOp: Number.NaN,
      iterations: 1,
      repeats: 1,
      spread: {
        p50: { min: Number.NaN, max: Number.NaN },
        p99: { min: Number.NaN, max: Number.NaN },
        opsPerSec: { min: Number.NaN, max: Number.NaN },
      },
      note: `RSS ${mb(bytes)} MB (target < 80 MB)`,
    });
    results.push(rssResult('broker/rss-idle', rssIdle), rssResult('broker/rss-under-load', rssLoad));
    process.stderr.write(
      `broker RSS idle ${mb(rssIdle)} MB, under load ${mb(rssLoad)} MB; added p50 ${results
        .filter((r) => r.name.startsWith('broker/added-latency@'))
        .map(
          (r) =>
            `${r.name.split('@')[1]}: +${Math.round(r.p50Micros)} µs p50 / +${Math.round(r.p99Micros)} µs p99`,
        )
        .join(', ')}\n`,
    );
  } finally {
    broker.stop();
    await upstream.close();
  }
  return results;
}

if (process.env[CHILD_ENV] === '1') void childMain();
