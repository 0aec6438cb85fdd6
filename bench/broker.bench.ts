/**
 * Broker benchmark: the latency the broker adds to an MCP tools/call versus calling the same
 * upstream MCP server directly — one call at a time, and open loop at 200 and 1,000 req/s on
 * loopback — and the broker's RSS at idle, under load, and of the real `warden broker` entry point.
 *
 * Each comparison runs WARDEN_BENCH_BROKER_REPEATS times (default 3; WARDEN_BENCH_BROKER_SECONDS
 * each, default 3), the direct path and the broker path back to back, so each ratio comes from
 * the same moment of a shared machine; results are medians across repeats with their spread, and
 * the "added" rows are the median of the per-repeat differences.
 *
 * The broker runs in its own process, started from a plain-JS bundle of this module (esbuild, as
 * a production build would run: no TypeScript loader in the process) with
 * WARDEN_BENCH_BROKER_CHILD=1, so its RSS and CPU time are its own; WARDEN_BENCH_BROKER_NODE_FLAGS
 * passes V8 flags to it. The upstream is a minimal JSON-RPC MCP responder (initialize → session
 * id, tools/call → canned result) so the machine can sustain the rates; the MCP semantics are
 * covered by broker/*.int.test.ts against the SDK server. The load generator and upstream share
 * this process: both paths pay the same client and upstream costs, and the difference is the
 * broker. `cpuMicrosPerOp` of the via-broker rows is the broker process's CPU time per request —
 * the steady number when the machine is busy.
 */
import { fork, spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type BenchResult, latencyResult, median, percentile, spreadOf } from './lib.js';

const CHILD_ENV = 'WARDEN_BENCH_BROKER_CHILD';
const RATES = [200, 1000];
const DURATION_MS = Number(process.env.WARDEN_BENCH_BROKER_SECONDS ?? 3) * 1000;

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

/**
 * Open loop: requests start on schedule whether or not earlier ones finished. The generator sleeps
 * on a timer between due times and sends everything due when it wakes (a burst of one or two at
 * 1,000 req/s) instead of spinning: a spinning generator would hold one of the machine's cores and
 * starve the broker process it measures. Latency is timed from the actual send.
 */
async function load(url: URL, sessionId: string, rate: number, durationMs: number): Promise<Sample> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round((rate * durationMs) / 1000);
  const intervalMs = 1000 / rate;
  const latencies: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const now = performance.now() - start;
    for (; i < total && i * intervalMs <= now; i++) {
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
    if (i < total) await new Promise((r) => setTimeout(r, Math.max(0, i * intervalMs - now - 0.5)));
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

function errorsNote(samples: readonly Sample[]): string {
  const errors = samples.reduce((n, x) => n + x.errors, 0);
  return errors > 0 ? `; ${errors} errors` : '';
}

/** One result over repeats (each a Sample); `cpuMicrosPerOp` per repeat when it was measured. */
function result(
  name: string,
  samples: readonly Sample[],
  rate: number,
  note: string,
  extra: { cpuMicrosPerOp?: readonly number[]; baseline?: string } = {},
): BenchResult {
  const r = latencyResult(
    name,
    samples.map((x) => x.latencies),
    {
      note: `${note}${errorsNote(samples)}`,
      ...(extra.cpuMicrosPerOp ? { cpuMicrosPerOp: extra.cpuMicrosPerOp } : {}),
      ...(extra.baseline ? { baseline: extra.baseline } : {}),
    },
  );
  // Open loop: the rate is the schedule, not a measurement.
  return Number.isNaN(rate)
    ? r
    : { ...r, opsPerSec: rate, spread: { ...r.spread, opsPerSec: { min: rate, max: rate } } };
}

/** What the broker adds: per repeat, broker p50/p99 minus direct p50/p99 of the same repeat. */
function added(
  name: string,
  via: readonly Sample[],
  direct: readonly Sample[],
  viaResult: BenchResult,
  directResult: BenchResult,
  metric: 'p50Micros' | 'p99Micros',
): BenchResult {
  const p = (x: Sample, q: number) => percentile(Float64Array.from(x.latencies).sort(), q);
  const d50 = via.map((v, i) => p(v, 50) - p(direct[i] as Sample, 50));
  const d99 = via.map((v, i) => p(v, 99) - p(direct[i] as Sample, 99));
  const ms = (us: number) => (us / 1000).toFixed(2);
  return {
    name,
    p50Micros: median(d50),
    p99Micros: median(d99),
    meanMicros: viaResult.meanMicros - directResult.meanMicros,
    opsPerSec: viaResult.opsPerSec,
    ...(viaResult.cpuMicrosPerOp !== undefined ? { cpuMicrosPerOp: viaResult.cpuMicrosPerOp } : {}),
    iterations: viaResult.iterations,
    repeats: via.length,
    spread: { p50: spreadOf(d50), p99: spreadOf(d99), opsPerSec: viaResult.spread.opsPerSec },
    target: metric === 'p50Micros' ? { metric, max: 1000 } : { metric, max: 3000 },
    note: `median over ${via.length} repeats of (broker − direct) in the same repeat; broker p50 ${ms(viaResult.p50Micros)} ms vs direct ${ms(directResult.p50Micros)} ms (${(viaResult.p50Micros / directResult.p50Micros).toFixed(2)}×), p99 ${ms(viaResult.p99Micros)} vs ${ms(directResult.p99Micros)} ms (${(viaResult.p99Micros / directResult.p99Micros).toFixed(2)}×); target ${metric === 'p50Micros' ? '+< 1 ms at p50' : '+< 3 ms at p99'}`,
  };
}

interface ChildHandle {
  port: number;
  /** The bare Node.js proxy in the same process (the floor for any Node proxy). */
  barePort: number;
  /** The broker process's memory: RSS and V8's view of it (heap, external, array buffers). */
  memory(): Promise<NodeJS.MemoryUsage>;
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
    target: 'node24',
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
  const ports = await new Promise<{ port: number; barePort: number }>((resolve, reject) => {
    child.once('message', (m: { port?: number; barePort?: number }) =>
      m.port && m.barePort ? resolve({ port: m.port, barePort: m.barePort }) : reject(new Error('no port')),
    );
    child.once('exit', (code) => reject(new Error(`broker process exited with ${code}`)));
  });
  return {
    ...ports,
    memory: () =>
      new Promise((resolve) => {
        child.once('message', (m: { memory?: NodeJS.MemoryUsage }) =>
          resolve(
            m.memory ?? {
              rss: Number.NaN,
              heapTotal: Number.NaN,
              heapUsed: Number.NaN,
              external: Number.NaN,
              arrayBuffers: Number.NaN,
            },
          ),
        );
        child.send('memory');
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
  const bare = bareProxy(new URL(process.env.UPSTREAM_URL ?? ''));
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  process.on('message', (m) => {
    if (m === 'memory') process.send?.({ memory: process.memoryUsage() });
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send?.({ cpu: u.user + u.system });
    }
  });
  // Exit normally on stop so V8 flags like --cpu-prof (WARDEN_BENCH_BROKER_NODE_FLAGS) can write their output.
  process.on('SIGTERM', () => process.exit(0));
  process.send?.({
    port: (broker.server.address() as AddressInfo).port,
    barePort: (bare.address() as AddressInfo).port,
  });
}

/** Hop-by-hop headers a proxy does not forward. */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'proxy-connection']);

/**
 * The floor for any Node.js proxy: forward the request to the upstream with a keep-alive agent and
 * pipe the answer back — no parsing, no decision, no credential, no audit. Same process and
 * runtime as the broker, so the broker's CPU per call minus this one is what Warden's own logic costs.
 */
function bareProxy(upstream: URL): Server {
  const agent = new Agent({ keepAlive: true });
  return createServer((req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: upstream.pathname,
        method: req.method,
        headers,
        agent,
      },
      (up) => {
        const back: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) back[k] = v;
        res.writeHead(up.statusCode ?? 502, back);
        up.pipe(res);
      },
    );
    out.on('error', () => res.writeHead(502).end());
    req.pipe(out);
  });
}

/** A minimal MCP-over-HTTP JSON responder: session on initialize, 202 for notifications, one tool listed, canned tool results. */
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
          : msg.method === 'tools/list'
            ? // The broker asks once per session: a tools/call must name an advertised tool.
              { tools: [{ name: 'jira.search', inputSchema: { type: 'object' } }] }
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

const mb = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;

/** Where the memory is: V8 heap (used of reserved), and buffers outside it. */
function heapNote(m: NodeJS.MemoryUsage): string {
  return `heap ${mb(m.heapUsed)} of ${mb(m.heapTotal)} MB, external ${mb(m.external)} MB (array buffers ${mb(m.arrayBuffers)} MB)`;
}

function rssResult(name: string, bytes: number, note: string): BenchResult {
  const nan = { min: Number.NaN, max: Number.NaN };
  return {
    name,
    p50Micros: Number.NaN,
    p99Micros: Number.NaN,
    meanMicros: Number.NaN,
    opsPerSec: Number.NaN,
    iterations: 1,
    repeats: 1,
    spread: { p50: nan, p99: nan, opsPerSec: nan },
    note: `RSS ${mb(bytes)} MB (target < 80 MB); ${note}`,
  };
}

/**
 * RSS of the real entry point, `warden broker` from cli/warden.ts, a few seconds after start (the
 * authority is unreachable, so it keeps retrying attestation): what the sidecar pays before any
 * traffic, including every module its entry point loads. Bundled with code splitting so dynamic
 * imports stay lazy, as in the tsc-compiled image.
 */
async function entryPointRss(): Promise<number> {
  const { build } = await import('esbuild');
  const dir = fileURLToPath(new URL('../node_modules/.cache/warden-bench/cli/', import.meta.url));
  await rm(dir, { recursive: true, force: true });
  await build({
    entryPoints: [fileURLToPath(new URL('../cli/warden.ts', import.meta.url))],
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    outdir: dir,
    logLevel: 'error',
  });
  const child = spawn(
    process.execPath,
    [
      ...(process.env.WARDEN_BENCH_BROKER_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      `${dir}warden.js`,
      'broker',
      `--token-file=${dir}no-token`,
      '--authority-url=http://127.0.0.1:9',
      '--listen=127.0.0.1:0',
      '--health-listen=127.0.0.1:0',
      '--log-level=silent',
    ],
    { stdio: 'ignore' },
  );
  try {
    await new Promise((r) => setTimeout(r, 3_000));
    if (child.exitCode !== null || child.pid === undefined) return Number.NaN;
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? Number.NaN : Number(kb) * 1024;
  } finally {
    child.kill();
  }
}

/** Median broker CPU per call of a measurement. */
const br0 = (m: { cpu: number[] }): number | undefined => (m.cpu.length > 0 ? median(m.cpu) : undefined);

const REPEATS = Number(process.env.WARDEN_BENCH_BROKER_REPEATS ?? 3);
const SEQUENTIAL_CALLS = 2_000;

export async function run(): Promise<BenchResult[]> {
  const upstream = await startLightUpstream();
  const broker = await startBrokerProcess(upstream.url);
  const results: BenchResult[] = [];
  const flags = process.env.WARDEN_BENCH_BROKER_NODE_FLAGS ?? '';
  const flagNote = flags ? `; broker node flags: ${flags}` : '';
  try {
    const direct = new URL(upstream.url);
    const via = new URL(`http://127.0.0.1:${broker.port}/mcp/jira`);
    const directSid = await initialize(direct);
    const viaSid = await initialize(via);
    // Warm-up both paths (JIT, connection pools, credential cache).
    await load(direct, directSid, 500, 1000);
    await load(via, viaSid, 500, 1000);
    await new Promise((r) => setTimeout(r, 500));
    const idle = await broker.memory();
    // The bare proxy is warmed only after the idle sample, so it does not inflate the broker's idle RSS.
    const bare = new URL(`http://127.0.0.1:${broker.barePort}/mcp`);
    const bareSid = await initialize(bare);
    await load(bare, bareSid, 500, 1000);
    let peak = idle;
    const sample = (m: NodeJS.MemoryUsage): void => {
      if (m.rss > peak.rss) peak = m;
    };
    // Each repeat runs the direct path, then the broker path, back to back: a ratio from the same
    // moment of a shared machine. The median over repeats and its spread go in the result.
    type Measured = { d: Sample[]; n: Sample[]; ncpu: number[]; b: Sample[]; cpu: number[] };
    const perCall = async (run: () => Promise<Sample>): Promise<{ s: Sample; cpu: number }> => {
      const cpu0 = await broker.cpu();
      const s = await run();
      return { s, cpu: ((await broker.cpu()) - cpu0) / Math.max(1, s.latencies.length + s.errors) };
    };
    const measurePair = async (once: (url: URL, sid: string) => Promise<Sample>): Promise<Measured> => {
      const m: Measured = { d: [], n: [], ncpu: [], b: [], cpu: [] };
      for (let r = 0; r < REPEATS; r++) {
        m.d.push(await once(direct, directSid));
        const n = await perCall(() => once(bare, bareSid));
        m.n.push(n.s);
        m.ncpu.push(n.cpu);
        const probe = setTimeout(() => {
          void broker.memory().then(sample);
        }, DURATION_MS / 2);
        const b = await perCall(() => once(via, viaSid));
        clearTimeout(probe);
        m.b.push(b.s);
        m.cpu.push(b.cpu);
      }
      sample(await broker.memory());
      return m;
    };
    const rows = (label: string, rate: number, m: Measured, what: string) => {
      const directName = `broker/mcp-tools-call/direct@${label}`;
      const bareName = `broker/mcp-tools-call/bare-node-proxy@${label}`;
      const dr = result(directName, m.d, rate, `${what}: client → upstream MCP responder`);
      const nr = result(
        bareName,
        m.n,
        rate,
        `${what}: client → minimal Node.js proxy (same process as the broker, no parsing, decision, credential or audit) → upstream; the floor for any Node proxy`,
        { cpuMicrosPerOp: m.ncpu, baseline: directName },
      );
      const br = result(
        `broker/mcp-tools-call/via-broker@${label}`,
        m.b,
        rate,
        `${what}: client → broker → upstream; cpu µs/op = broker process CPU per call (bare Node proxy: ${nr.cpuMicrosPerOp?.toFixed(0)} µs, so Warden's own work ≈ ${((br0(m) ?? 0) - (nr.cpuMicrosPerOp ?? 0)).toFixed(0)} µs)${flagNote}`,
        { cpuMicrosPerOp: m.cpu, baseline: directName },
      );
      results.push(
        dr,
        nr,
        br,
        added(`broker/added-latency@${label}`, m.b, m.d, br, dr, 'p50Micros'),
        added(`broker/added-latency-p99@${label}`, m.b, m.d, br, dr, 'p99Micros'),
      );
    };
    rows(
      'sequential',
      Number.NaN,
      await measurePair((u, sid) => sequential(u, sid, SEQUENTIAL_CALLS)),
      'one call at a time',
    );
    for (const rate of RATES)
      rows(
        `${rate}rps`,
        rate,
        await measurePair((u, sid) => load(u, sid, rate, DURATION_MS)),
        `open loop at ${rate} req/s for ${DURATION_MS / 1000} s`,
      );
    const entry = await entryPointRss();
    results.push(
      rssResult(
        'broker/rss-idle',
        idle.rss,
        `composed broker (bench child) after warm-up; ${heapNote(idle)}${flagNote}`,
      ),
      rssResult(
        'broker/rss-under-load',
        peak.rss,
        `highest sample during and after the load runs; ${heapNote(peak)}${flagNote}`,
      ),
      rssResult(
        'broker/rss-entrypoint-start',
        entry,
        `\`warden broker\` from cli/warden.ts 3 s after start, before attestation: every module its entry point loads${flagNote}`,
      ),
    );
    process.stderr.write(
      `broker RSS idle ${mb(idle.rss)} MB (${heapNote(idle)}), under load ${mb(peak.rss)} MB (${heapNote(peak)}), entry point ${mb(entry)} MB; ${results
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
