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
 * WARDEN_BENCH_BROKER_CHILD=1, so its RSS and CPU time are its own; it runs with the injected
 * sidecar's NODE_OPTIONS unless WARDEN_BENCH_BROKER_NODE_FLAGS says otherwise. Two peers share the
 * broker's process: a bare Node proxy (pipes both bodies: the floor for any Node proxy) and a
 * buffering JSON proxy (reads both bodies whole, one parse, one serialisation: the floor for a
 * proxy that decides on the message); the via-broker rows' target is the broker's CPU per call
 * over the bare proxy's (issue 20: ≤ 1.2×). After the repeats, 60 s at 1,000 req/s through the
 * bare proxy and then the broker (WARDEN_BENCH_BROKER_SUSTAINED_SECONDS), with the RSS sampled
 * every second. The upstream is a minimal JSON-RPC MCP responder (initialize → session
 * id, tools/call → canned result) so the machine can sustain the rates; the MCP semantics are
 * covered by broker/*.int.test.ts against the SDK server. The load generator and upstream share
 * this process: both paths pay the same client and upstream costs, and the difference is the
 * broker. `cpuMicrosPerOp` of the via-broker rows is the broker process's CPU time per request —
 * the steady number when the machine is busy.
 */
import { fork, spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { Agent, createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKER_NODE_OPTIONS } from '../webhook/broker-sidecar.js';
import { type BenchResult, latencyResult, median, percentile, spreadOf } from './lib.js';

const CHILD_ENV = 'WARDEN_BENCH_BROKER_CHILD';
/**
 * A directory: the broker process profiles each 1,000 req/s run of the bare proxy and of the
 * broker separately (node:inspector, PROFILE_INTERVAL_US sampling) and writes
 * `<path>-1000rps-r<repeat>.cpuprofile` there; `npx tsx bench/cpuprofile.ts <files>` summarises.
 */
const PROFILE_DIR = process.env.WARDEN_BENCH_BROKER_PROFILE ?? '';
const PROFILE_INTERVAL_US = 200;
/**
 * V8/Node flags of the broker process: by default the injected sidecar's NODE_OPTIONS (what a
 * broker runs with in a pod); WARDEN_BENCH_BROKER_NODE_FLAGS replaces them ('' = none).
 */
const BROKER_FLAGS = process.env.WARDEN_BENCH_BROKER_NODE_FLAGS ?? BROKER_NODE_OPTIONS;
/** The sustained run: 1,000 req/s for this long through the bare proxy, then the broker (0 = skip). */
const SUSTAINED_SECONDS = Number(process.env.WARDEN_BENCH_BROKER_SUSTAINED_SECONDS ?? 60);
/** Broker CPU per call over the bare Node proxy's (issue 20). */
const CPU_RATIO_TARGET = 1.2;
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
  /**
   * A Node.js proxy that does the broker's minimum work on the bytes and nothing else: reads the
   * request whole, parses it once and forwards its own serialisation, reads the answer whole and
   * writes it back — the floor for a proxy that must decide on the message (same process).
   */
  bufferingPort: number;
  /** The broker process's memory: RSS and V8's view of it (heap, external, array buffers). */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** CPU time of the broker process so far, µs: user + system, and system (the kernel's) alone. */
  cpu(): Promise<{ total: number; system: number }>;
  /** Start the V8 CPU profiler in the broker process (node:inspector, one profile at a time). */
  profileStart(): Promise<void>;
  /** Stop it and write the profile to `file` (a .cpuprofile). */
  profileStop(file: string): Promise<void>;
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
    // For WARDEN_BENCH_BROKER_PROFILE: bench/cpuprofile.ts maps the bundle's frames back to
    // Warden's source files with it (the map is not loaded at run time).
    sourcemap: 'linked',
  });
  return outfile;
}

async function startBrokerProcess(upstreamUrl: string): Promise<ChildHandle> {
  const child = fork(await bundleChild(), [], {
    // V8 flags for the broker process, e.g. "--max-semi-space-size=4" (what the sidecar would get
    // through NODE_OPTIONS) to see their effect on RSS and latency.
    execArgv: BROKER_FLAGS.split(' ').filter(Boolean),
    env: { ...process.env, [CHILD_ENV]: '1', UPSTREAM_URL: upstreamUrl },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ports = await new Promise<{ port: number; barePort: number; bufferingPort: number }>(
    (resolve, reject) => {
      child.once('message', (m: { port?: number; barePort?: number; bufferingPort?: number }) =>
        m.port && m.barePort && m.bufferingPort
          ? resolve({ port: m.port, barePort: m.barePort, bufferingPort: m.bufferingPort })
          : reject(new Error('no port')),
      );
      child.once('exit', (code) => reject(new Error(`broker process exited with ${code}`)));
    },
  );
  /** One request to the broker process, resolved by the first reply that carries `key`. */
  const ask = <T>(request: unknown, key: string): Promise<T> =>
    new Promise((resolve) => {
      const onReply = (m: Record<string, unknown>): void => {
        if (m === null || typeof m !== 'object' || !(key in m)) return;
        child.off('message', onReply);
        resolve(m[key] as T);
      };
      child.on('message', onReply);
      child.send(request as string);
    });
  return {
    ...ports,
    memory: () => ask<NodeJS.MemoryUsage>('memory', 'memory'),
    cpu: () =>
      ask<{ total: number; system: number }>('cpu', 'cpu').then((c) =>
        typeof c === 'object' ? c : { total: Number.NaN, system: Number.NaN },
      ),
    profileStart: () => ask<boolean>({ profile: 'start' }, 'profiling').then(() => undefined),
    profileStop: (file) => ask<string>({ profile: 'stop', file }, 'profiled').then(() => undefined),
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
  const buffering = bufferingProxy(new URL(process.env.UPSTREAM_URL ?? ''));
  await new Promise<void>((resolve) => buffering.listen(0, '127.0.0.1', resolve));
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  let profiler: InstanceType<typeof Session> | undefined;
  process.on('message', (m: unknown) => {
    if (m === 'memory') process.send?.({ memory: process.memoryUsage() });
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send?.({ cpu: { total: u.user + u.system, system: u.system } });
    }
    const p = m as { profile?: 'start' | 'stop'; file?: string };
    if (p.profile === 'start') {
      profiler = new Session();
      profiler.connect();
      void profiler
        .post('Profiler.enable')
        .then(() => profiler?.post('Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US }))
        .then(() => profiler?.post('Profiler.start'))
        // Allocations too (sampled every 16 KiB, including objects already collected): what
        // feeds the garbage collector per call. Written next to the CPU profile as .heapprofile.
        .then(() =>
          profiler?.post('HeapProfiler.startSampling', {
            samplingInterval: 16_384,
            includeObjectsCollectedByMajorGC: true,
            includeObjectsCollectedByMinorGC: true,
          }),
        )
        .then(() => process.send?.({ profiling: true }));
    }
    if (p.profile === 'stop' && profiler) {
      const session = profiler;
      profiler = undefined;
      const file = p.file ?? 'broker.cpuprofile';
      void session
        .post('Profiler.stop')
        .then(({ profile }) => writeFile(file, JSON.stringify(profile)))
        .then(() => session.post('HeapProfiler.stopSampling'))
        .then(({ profile }) =>
          writeFile(file.replace(/\.cpuprofile$/, '.heapprofile'), JSON.stringify(profile)),
        )
        .then(() => session.disconnect())
        .then(() => process.send?.({ profiled: p.file }));
    }
  });
  // Exit normally on stop so V8 flags like --cpu-prof (WARDEN_BENCH_BROKER_NODE_FLAGS) can write their output.
  process.on('SIGTERM', () => process.exit(0));
  process.send?.({
    port: (broker.server.address() as AddressInfo).port,
    barePort: (bare.address() as AddressInfo).port,
    bufferingPort: (buffering.address() as AddressInfo).port,
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

/**
 * The floor for a proxy that decides on the message (see ChildHandle.bufferingPort): both bodies
 * read whole, one JSON parse and one serialisation of the request, the answer decoded and encoded
 * once (as a scrubber must), headers filtered as the bare proxy does — no decision, credential,
 * audit or schema.
 */
function bufferingProxy(upstream: URL): Server {
  const agent = new Agent({ keepAlive: true });
  const filtered = (h: IncomingHttpHeaders): Record<string, string | string[]> => {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(h))
      if (v !== undefined && !HOP.has(k) && k !== 'content-length') out[k] = v;
    return out;
  };
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.from(JSON.stringify(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      const headers = { ...filtered(req.headers), 'content-length': String(body.length) };
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
          const answer: Buffer[] = [];
          up.on('data', (c: Buffer) => answer.push(c));
          up.on('end', () => {
            const payload = Buffer.from(Buffer.concat(answer).toString('utf8'));
            res.writeHead(up.statusCode ?? 502, {
              ...filtered(up.headers),
              'content-length': String(payload.length),
            });
            res.end(payload);
          });
        },
      );
      out.on('error', () => res.writeHead(502).end());
      out.end(body);
    });
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
      ...BROKER_FLAGS.split(' ').filter(Boolean),
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
  if (PROFILE_DIR) await mkdir(PROFILE_DIR, { recursive: true });
  const upstream = await startLightUpstream();
  const broker = await startBrokerProcess(upstream.url);
  const results: BenchResult[] = [];
  const flagNote = BROKER_FLAGS
    ? `; broker node flags: ${BROKER_FLAGS}${process.env.WARDEN_BENCH_BROKER_NODE_FLAGS === undefined ? " (the sidecar's NODE_OPTIONS)" : ''}`
    : '; no broker node flags';
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
    const buffering = new URL(`http://127.0.0.1:${broker.bufferingPort}/mcp`);
    const bufferingSid = await initialize(buffering);
    await load(buffering, bufferingSid, 500, 1000);
    let peak = idle;
    const sample = (m: NodeJS.MemoryUsage): void => {
      if (m.rss > peak.rss) peak = m;
    };
    // Each repeat runs the direct path, then the broker path, back to back: a ratio from the same
    // moment of a shared machine. The median over repeats and its spread go in the result.
    type Measured = {
      d: Sample[];
      n: Sample[];
      ncpu: number[];
      j: Sample[];
      jcpu: number[];
      b: Sample[];
      cpu: number[];
      /** System (kernel) CPU per call of the bare proxy and of the broker. */
      nsys: number[];
      sys: number[];
    };
    const perCall = async (run: () => Promise<Sample>): Promise<{ s: Sample; cpu: number; sys: number }> => {
      const cpu0 = await broker.cpu();
      const s = await run();
      const cpu1 = await broker.cpu();
      const calls = Math.max(1, s.latencies.length + s.errors);
      return { s, cpu: (cpu1.total - cpu0.total) / calls, sys: (cpu1.system - cpu0.system) / calls };
    };
    /** perCall, under the broker process's CPU profiler when `file` is set. */
    const profiled = async (file: string | undefined, run: () => Promise<Sample>) => {
      if (file === undefined) return perCall(run);
      await broker.profileStart();
      const measured = await perCall(run);
      await broker.profileStop(file);
      return measured;
    };
    const measurePair = async (
      once: (url: URL, sid: string) => Promise<Sample>,
      profileAs?: string,
    ): Promise<Measured> => {
      const m: Measured = {
        d: [],
        n: [],
        ncpu: [],
        j: [],
        jcpu: [],
        b: [],
        cpu: [],
        nsys: [],
        sys: [],
      };
      const profileFile = (path: string, r: number) =>
        PROFILE_DIR && profileAs ? join(PROFILE_DIR, `${path}-${profileAs}-r${r}.cpuprofile`) : undefined;
      for (let r = 0; r < REPEATS; r++) {
        m.d.push(await once(direct, directSid));
        const n = await profiled(profileFile('bare', r), () => once(bare, bareSid));
        m.n.push(n.s);
        m.ncpu.push(n.cpu);
        m.nsys.push(n.sys);
        const j = await profiled(profileFile('buffering', r), () => once(buffering, bufferingSid));
        m.j.push(j.s);
        m.jcpu.push(j.cpu);
        const probe = setTimeout(() => {
          void broker.memory().then(sample);
        }, DURATION_MS / 2);
        const b = await profiled(profileFile('broker', r), () => once(via, viaSid));
        clearTimeout(probe);
        m.b.push(b.s);
        m.cpu.push(b.cpu);
        m.sys.push(b.sys);
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
      const jr = result(
        `broker/mcp-tools-call/buffering-json-proxy@${label}`,
        m.j,
        rate,
        `${what}: client → minimal Node.js proxy that reads both bodies whole, parses the request once and forwards its serialisation, decodes and re-encodes the answer (same process; no decision, credential, audit or schema) → upstream; the floor for a proxy that decides on the message; CPU ${median(m.jcpu.map((c, i) => c / (m.ncpu[i] ?? Number.NaN))).toFixed(2)}× the bare proxy's`,
        { cpuMicrosPerOp: m.jcpu, baseline: directName },
      );
      const ratios = m.cpu.map((c, i) => c / (m.ncpu[i] ?? Number.NaN));
      const cpuRatio = median(ratios);
      const vsBuffering = median(m.cpu.map((c, i) => c / (m.jcpu[i] ?? Number.NaN)));
      const br: BenchResult = {
        ...result(
          `broker/mcp-tools-call/via-broker@${label}`,
          m.b,
          rate,
          `${what}: client → broker → upstream; cpu µs/op = broker process CPU per call, ${cpuRatio.toFixed(2)}× the bare Node proxy's in the same process and repeat (${nr.cpuMicrosPerOp?.toFixed(0)} µs; per repeat ${ratios.map((x) => x.toFixed(2)).join(', ')}), so Warden's own work ≈ ${((br0(m) ?? 0) - (nr.cpuMicrosPerOp ?? 0)).toFixed(0)} µs; ${vsBuffering.toFixed(2)}× the buffering JSON proxy's (${jr.cpuMicrosPerOp?.toFixed(0)} µs); of it in the kernel (system CPU) ${median(m.sys).toFixed(0)} µs, the bare proxy's ${median(m.nsys).toFixed(0)} µs; target ≤ ${CPU_RATIO_TARGET}×${flagNote}`,
          { cpuMicrosPerOp: m.cpu, baseline: directName },
        ),
        cpuRatio,
        target: { metric: 'cpuRatio', max: CPU_RATIO_TARGET },
      };
      results.push(
        dr,
        nr,
        jr,
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
        await measurePair((u, sid) => load(u, sid, rate, DURATION_MS), rate === 1000 ? '1000rps' : undefined),
        `open loop at ${rate} req/s for ${DURATION_MS / 1000} s`,
      );
    let sustainedPeak: NodeJS.MemoryUsage | undefined;
    if (SUSTAINED_SECONDS > 0) {
      const ms = SUSTAINED_SECONDS * 1000;
      const n = await perCall(() => load(bare, bareSid, 1000, ms));
      // RSS every second of the broker's run: the highest is what a memory limit must allow.
      const probe = setInterval(() => {
        void broker.memory().then((m) => {
          sample(m);
          if (!sustainedPeak || m.rss > sustainedPeak.rss) sustainedPeak = m;
        });
      }, 1000);
      const b = await perCall(() => load(via, viaSid, 1000, ms));
      clearInterval(probe);
      const label = `1000rps-${SUSTAINED_SECONDS}s`;
      const what = `open loop at 1000 req/s for ${SUSTAINED_SECONDS} s`;
      const bareName = `broker/mcp-tools-call/bare-node-proxy@${label}`;
      const nr = result(bareName, [n.s], 1000, `${what}: the bare Node proxy, run just before the broker`, {
        cpuMicrosPerOp: [n.cpu],
      });
      const ratio = b.cpu / n.cpu;
      results.push(nr, {
        ...result(
          `broker/mcp-tools-call/via-broker@${label}`,
          [b.s],
          1000,
          `${what}: client → broker → upstream, p99 target < 10 ms; peer: the bare Node proxy's run just before (p99 ${(nr.p99Micros / 1000).toFixed(2)} ms); broker CPU per call ${b.cpu.toFixed(0)} µs (system ${b.sys.toFixed(0)}) = ${ratio.toFixed(2)}× the bare proxy's ${n.cpu.toFixed(0)} µs (system ${n.sys.toFixed(0)}); RSS highest ${sustainedPeak ? mb(sustainedPeak.rss) : '?'} MB${flagNote}`,
          { cpuMicrosPerOp: [b.cpu], baseline: bareName },
        ),
        cpuRatio: ratio,
        target: { metric: 'p99Micros', max: 10_000 },
      });
    }
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
        `highest sample during and after the load runs${sustainedPeak ? ` (of the ${SUSTAINED_SECONDS} s run at 1,000 req/s: ${mb(sustainedPeak.rss)} MB, ${heapNote(sustainedPeak)})` : ''}; ${heapNote(peak)}${flagNote}`,
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
