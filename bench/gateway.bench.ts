/**
 * Gateway benchmark: what `warden gateway` adds to an HTTP-proxied call, next to what the sidecar
 * adds, through the real chain (a local API server, a `warden controller`, the agent's pod with a
 * broker-audience token for the sidecar path and a gateway-audience token for the gateway path,
 * the same JWT CredentialProvider and upstream). Three paths, back to back in each repeat: direct
 * to the upstream, through the sidecar (loopback HTTP), through the gateway (TLS + the caller's
 * bearer token, keep-alive as an agent's HTTP client would). One call at a time, and open loop at
 * WARDEN_BENCH_GATEWAY_RATE req/s (default 1,000, the rate).
 *
 * The sidecar and the gateway each run as their own process, started with the real CLI (`warden
 * broker`, `warden gateway`) and the flags they are deployed with (each with its audit spool; the
 * gateway with a per-caller limit set well above the load, so its cost is counted but nothing is
 * refused). `cpuMicrosPerOp` of those rows is that process's CPU (all its threads, /proc) per call:
 * what Warden itself spends, apart from the client, the upstream and the controller, which share
 * this process. Every call is audited through the controller on both paths.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { GATEWAY_AUDIENCE } from '../core/constants.js';
import { createAgentPod, writePodToken } from '../e2e/agent-stack.js';
import { freePort, startControlPlane } from '../e2e/controlplane/controlplane.js';
import { eventually } from '../e2e/eventually.js';
import { type GatewayStack, startGatewayStack } from '../e2e/gateway-fixture.js';
import { installCrds } from '../e2e/harness/crds.js';
import { type BenchResult, latencyResult, median, percentile } from './lib.js';

const REPEATS = Number(process.env.WARDEN_BENCH_GATEWAY_REPEATS ?? 3);
const SEQUENTIAL = Number(process.env.WARDEN_BENCH_GATEWAY_CALLS ?? 500);
const RATE = Number(process.env.WARDEN_BENCH_GATEWAY_RATE ?? 1000);
const SECONDS = Number(process.env.WARDEN_BENCH_GATEWAY_SECONDS ?? 3);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A Warden process started with the CLI; its CPU read from /proc. */
interface WardenProcess {
  readonly child: ChildProcess;
  cpuMicros(): number;
  stop(): Promise<void>;
}

function startWarden(args: readonly string[], env: Record<string, string> = {}): WardenProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/warden.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return {
    child,
    cpuMicros() {
      // Nanoseconds on a CPU of each of its threads (main, libuv pool, V8 helpers): finer than
      // /proc/<pid>/stat's 10 ms ticks, which are too coarse for 500 calls.
      let ns = 0;
      for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
        try {
          ns += Number(readFileSync(`/proc/${child.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        } catch {
          // The thread ended between the listing and the read.
        }
      }
      return ns / 1000;
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

interface Path {
  readonly name: string;
  call(i: number): Promise<number>;
  /** CPU (µs) the Warden process on this path has used so far; absent for the direct path. */
  readonly wardenCpu?: () => number;
  close(): void;
}

function httpPath(
  name: string,
  base: string,
  headers: Record<string, string>,
  o: { ca?: string; wardenCpu?: () => number } = {},
): Path {
  const tls = base.startsWith('https:');
  const agent = tls
    ? new Agent({ keepAlive: true, maxSockets: 256, ...(o.ca ? { ca: o.ca } : {}) })
    : new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const doRequest = tls ? httpsRequest : httpRequest;
  return {
    name,
    ...(o.wardenCpu ? { wardenCpu: o.wardenCpu } : {}),
    call: (i) => {
      const t0 = process.hrtime.bigint();
      return new Promise((resolve, reject) => {
        const req = doRequest(`${base}/api/v1/tickets/B-${i}`, { agent, headers }, (res) => {
          res.on('data', () => {});
          res.on('end', () =>
            res.statusCode === 200
              ? resolve(Number(process.hrtime.bigint() - t0) / 1000)
              : reject(new Error(`${name}: HTTP ${res.statusCode}`)),
          );
        });
        req.on('error', reject);
        req.end();
      });
    },
    close: () => agent.destroy(),
  };
}

interface Measured {
  readonly lat: number[];
  /** The Warden process's CPU per completed call (µs); NaN for the direct path. */
  readonly wardenCpu: number;
  /** This process's CPU per completed call (client, upstream, controller; µs). */
  readonly benchCpu: number;
  /** Completed calls per second of wall time, first send to last answer. */
  readonly achieved: number;
  readonly errors: number;
}

async function measure(p: Path, run: (lat: number[], fail: () => void) => Promise<void>): Promise<Measured> {
  const lat: number[] = [];
  let errors = 0;
  const c0 = process.cpuUsage();
  const w0 = p.wardenCpu?.() ?? Number.NaN;
  const t0 = performance.now();
  await run(lat, () => {
    errors++;
  });
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const n = Math.max(1, lat.length);
  return {
    lat,
    wardenCpu: ((p.wardenCpu?.() ?? Number.NaN) - w0) / n,
    benchCpu: (c.user + c.system) / n,
    achieved: lat.length / seconds,
    errors,
  };
}

function sequential(p: Path, n: number): Promise<Measured> {
  return measure(p, async (lat, fail) => {
    for (let i = 0; i < n; i++) {
      try {
        lat.push(await p.call(i));
      } catch {
        fail();
      }
    }
  });
}

function openLoop(p: Path, rate: number, seconds: number): Promise<Measured> {
  return measure(p, async (lat, fail) => {
    const total = Math.round(rate * seconds);
    const interval = 1000 / rate;
    const inflight: Promise<void>[] = [];
    const start = performance.now();
    let i = 0;
    while (i < total) {
      const now = performance.now() - start;
      for (; i < total && i * interval <= now; i++) {
        inflight.push(
          p.call(i).then(
            (us) => {
              lat.push(us);
            },
            () => fail(),
          ),
        );
      }
      if (i < total) await new Promise((r) => setTimeout(r, Math.max(0, i * interval - now - 0.5)));
    }
    await Promise.all(inflight);
  });
}

const ms = (us: number) => (us / 1000).toFixed(2);
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');

export async function run(): Promise<BenchResult[]> {
  const cp = await startControlPlane();
  let stack: GatewayStack | undefined;
  const procs: WardenProcess[] = [];
  const dirs: string[] = [];
  const paths: Path[] = [];
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const namespace = 'bench-gateway';
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    // The agent, its policy, the controller and the upstream; the gateway runs below as a process.
    stack = await startGatewayStack({ kubeConfig: kc, namespace, replicas: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'warden-bench-gw-'));
    dirs.push(dir);

    // The sidecar: the same agent's pod as the webhook admits it, and `warden broker` for it.
    const pod = await createAgentPod(kc, {
      namespace,
      agent: stack.agent,
      name: `${stack.agent}-sidecar`,
      issuer: stack.issuer,
    });
    const written = await writePodToken(kc, {
      namespace,
      serviceAccount: stack.agent,
      pod,
      prefix: 'warden-bench-gw-',
    });
    dirs.push(written.dir);
    const [sidecarPort, sidecarHealth, gatewayPort, gatewayHealth] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const sidecar = startWarden(
      [
        'broker',
        `--token-file=${written.tokenFile}`,
        `--authority-url=${stack.issuer}`,
        `--listen=127.0.0.1:${sidecarPort}`,
        `--health-listen=127.0.0.1:${sidecarHealth}`,
        `--audit-spool=${join(dir, 'sidecar-spool')}`,
        '--log-level=warn',
      ],
      { POD_NAME: pod.metadata?.name ?? '' },
    );
    procs.push(sidecar);

    // The gateway: `warden gateway` with the chart's flags (TLS, audit spool, per-caller limit).
    writeFileSync(join(dir, 'tls.crt'), stack.tls.certPem);
    writeFileSync(join(dir, 'tls.key'), stack.tls.keyPem, { mode: 0o600 });
    const gatewayUrl = `https://127.0.0.1:${gatewayPort}`;
    const gateway = startWarden([
      'gateway',
      `--token-file=${stack.gatewayTokenFile}`,
      `--authority-url=${stack.issuer}`,
      `--tls-cert=${join(dir, 'tls.crt')}`,
      `--tls-key=${join(dir, 'tls.key')}`,
      `--public-url=${gatewayUrl}`,
      `--listen=127.0.0.1:${gatewayPort}`,
      `--health-listen=127.0.0.1:${gatewayHealth}`,
      `--audit-spool=${join(dir, 'gateway-spool')}`,
      // Counted, never reached: one caller sends RATE req/s.
      `--caller-rate=${RATE * 10}`,
      '--log-level=warn',
    ]);
    procs.push(gateway);

    const token = await stack.token(GATEWAY_AUDIENCE);
    const direct = httpPath('direct', stack.upstreamUrl, {});
    const viaSidecar = httpPath(
      'sidecar',
      `http://127.0.0.1:${sidecarPort}/http/tickets`,
      {},
      {
        wardenCpu: () => sidecar.cpuMicros(),
      },
    );
    const viaGateway = httpPath(
      'gateway',
      `${gatewayUrl}/http/tickets`,
      { authorization: `Bearer ${token}` },
      { ca: stack.ca, wardenCpu: () => gateway.cpuMicros() },
    );
    paths.push(direct, viaSidecar, viaGateway);
    for (const p of [viaSidecar, viaGateway]) {
      await eventually(
        `the ${p.name} to serve the agent`,
        () =>
          p.call(0).then(
            () => true,
            () => false,
          ),
        60_000,
      );
    }
    // Warm-up: JIT, connection pools, TLS sessions, each path's credential cache.
    for (const p of paths) await sequential(p, 200);

    type Runs = Map<string, Measured[]>;
    const seq: Runs = new Map(paths.map((p) => [p.name, []]));
    const open: Runs = new Map(paths.map((p) => [p.name, []]));
    for (let r = 0; r < REPEATS; r++) {
      for (const p of paths) seq.get(p.name)?.push(await sequential(p, SEQUENTIAL));
      for (const p of paths) open.get(p.name)?.push(await openLoop(p, RATE, SECONDS));
    }

    const out: BenchResult[] = [];
    for (const [mode, data, label] of [
      ['sequential', seq, `${SEQUENTIAL} calls one at a time`],
      [`${RATE}rps`, open, `open loop ${RATE} req/s for ${SECONDS} s`],
    ] as const) {
      const runs = (name: string) => data.get(name) ?? [];
      const pct = (name: string, q: number) =>
        median(runs(name).map((m) => percentile(Float64Array.from(m.lat).sort(), q)));
      const added = (name: string, q: number) => pct(name, q) - pct('direct', q);
      const wardenCpu = (name: string) => median(runs(name).map((m) => m.wardenCpu));
      const achieved = (name: string) => median(runs(name).map((m) => m.achieved));
      const errors = (name: string) => runs(name).reduce((n, m) => n + m.errors, 0);
      for (const name of ['direct', 'sidecar', 'gateway'] as const) {
        const m = runs(name);
        const common = `${label}, ${REPEATS} repeats; achieved ${achieved(name).toFixed(0)} req/s; ${errors(name)} errors`;
        // The bench process's CPU per call: client + upstream (+ the controller's audit intake on
        // the Warden paths); over direct, what the path costs the caller's side (TLS for the gateway).
        const bench = `; this process's CPU per call (client, upstream, controller) ${median(m.map((x) => x.benchCpu)).toFixed(0)} µs`;
        const own =
          name === 'direct'
            ? bench
            : `; added over direct p50 ${ms(added(name, 50))} ms, p99 ${ms(added(name, 99))} ms; the ${name} process's CPU per call ${wardenCpu(name).toFixed(0)} µs${bench}`;
        const vs =
          name === 'gateway'
            ? `; gateway vs sidecar: added p50 ${ratio(added('gateway', 50), added('sidecar', 50))}, added p99 ${ratio(added('gateway', 99), added('sidecar', 99))}, CPU per call ${ratio(wardenCpu('gateway'), wardenCpu('sidecar'))} (TLS + bearer token + per-caller limit)`
            : '';
        out.push(
          latencyResult(
            `gateway/${mode}/${name}`,
            m.map((x) => x.lat),
            {
              ...(name === 'direct' ? {} : { cpuMicrosPerOp: m.map((x) => x.wardenCpu) }),
              // The sidecar's peer is the direct call; the gateway's, the sidecar.
              ...(name === 'direct'
                ? {}
                : { baseline: `gateway/${mode}/${name === 'gateway' ? 'sidecar' : 'direct'}` }),
              note: common + own + vs,
            },
          ),
        );
      }
    }
    return out;
  } finally {
    for (const p of paths) p.close();
    for (const p of procs) await p.stop();
    await stack?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await cp.stop();
  }
}
