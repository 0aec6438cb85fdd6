/**
 * Kill switch with many brokers: N simulated brokers, each the broker's own AuthorityClient
 * (broker/authority-client.ts) holding a real session for its own pod and following the real
 * /v1/stream, against ONE authority process (bench/authority-process.ts) on a private real
 * kube-apiserver. Then `spec.suspended: true` is written on the AgentIdentity and, per stream,
 * the time from the write to that client holding a snapshot with `agent.suspended` (from then on
 * the broker denies) is measured. p50/p99/max across the streams, authority RSS and CPU.
 *
 *   WARDEN_BENCH_FANOUT_BROKERS  brokers (pods, sessions, streams) at the largest size; 1000
 *   WARDEN_BENCH_FANOUT_FLIPS    suspend/revive flips measured per size; 3
 *   WARDEN_BENCH_AUTHORITY_NODE_FLAGS  e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" for the authority
 *
 * Sizes grow 100 → 300 → N on the same brokers (cost growth). Each client runs in this process, so
 * the time includes this process parsing N snapshots on the same 2 cores: an upper bound on what
 * N brokers on N pods would see.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import {
  createAgentIdentity,
  createPod,
  createServiceAccount,
  type Fixture,
  fixture,
  projectedToken,
} from '../authority/int-fixtures.js';
import { AuthorityClient, TOKEN_TYPE_JWT } from '../broker/authority-client.js';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import { startControlPlane } from '../e2e/controlplane/controlplane.js';
import { installCrds } from '../e2e/harness/crds.js';
import {
  AUTHORITY_PROCESS_ENV,
  type AuthorityUsage,
  type BenchResult,
  envPositiveInt,
  growthSizes,
  latencyResult,
} from './lib.js';

const NAMESPACE = 'bench-fanout';
const AGENT = 'fanout-bot';
const SA = 'fanout-sa';
const ISSUER = 'https://warden-authority.bench';
/** Concurrent pod creations / attestations while setting up (not measured). */
const SETUP_CONCURRENCY = 16;
const WAIT_MS = 60_000;

interface AuthorityProcess {
  port: number;
  usage(): Promise<AuthorityUsage>;
  stop(): Promise<void>;
}

async function startAuthorityProcess(kubeconfigPath: string): Promise<AuthorityProcess> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./authority-process.ts', import.meta.url)), [], {
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.WARDEN_BENCH_AUTHORITY_NODE_FLAGS ?? '').split(' ').filter(Boolean),
    ],
    env: {
      ...process.env,
      [AUTHORITY_PROCESS_ENV.kubeconfig]: kubeconfigPath,
      [AUTHORITY_PROCESS_ENV.namespace]: NAMESPACE,
      [AUTHORITY_PROCESS_ENV.issuer]: ISSUER,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port?: number }) =>
      m.port ? resolve(m.port) : reject(new Error('no port')),
    );
    child.once('exit', (code) => reject(new Error(`authority process exited with ${code}`)));
  });
  return {
    port,
    usage: () =>
      new Promise((resolve) => {
        child.once('message', (m: { usage: AuthorityUsage }) => resolve(m.usage));
        child.send('usage');
      }),
    stop: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => child.kill(), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.send('stop');
      }),
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

/** Resolves when every client's snapshot satisfies `ok`; each client's time of arrival (ms, hrtime). */
function arrivals(
  clients: readonly AuthorityClient[],
  ok: (c: AuthorityClient) => boolean,
): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const at: number[] = new Array(clients.length);
    let left = clients.length;
    const offs: Array<() => void> = [];
    const done = () => {
      clearTimeout(timer);
      for (const off of offs) off();
    };
    const timer = setTimeout(() => {
      done();
      reject(
        new Error(`${left} of ${clients.length} brokers did not see the change within ${WAIT_MS / 1000} s`),
      );
    }, WAIT_MS);
    clients.forEach((c, i) => {
      const check = () => {
        if (at[i] === undefined && ok(c)) {
          at[i] = Number(process.hrtime.bigint()) / 1e6;
          if (--left === 0) {
            done();
            resolve(at);
          }
        }
      };
      offs.push(c.onChange(check));
      check();
    });
  });
}

const suspended = (c: AuthorityClient): boolean => c.snapshot?.agent?.suspended === true;
const active = (c: AuthorityClient): boolean => c.snapshot?.agent?.suspended === false;

/** Writes spec.suspended (read, then replace); resolves with the hrtime (ms) the write was sent. */
async function setSuspended(f: Fixture, value: boolean): Promise<number> {
  const ref = {
    group: GROUP,
    version: VERSION,
    namespace: f.namespace,
    plural: PLURAL.AgentIdentity,
    name: AGENT,
  };
  const cur = (await f.custom.getNamespacedCustomObject(ref)) as { spec: Record<string, unknown> };
  const t0 = Number(process.hrtime.bigint()) / 1e6;
  await f.custom.replaceNamespacedCustomObject({
    ...ref,
    body: { ...cur, spec: { ...cur.spec, suspended: value, suspendReason: value ? 'fan-out bench' : '' } },
  });
  return t0;
}

export async function run(): Promise<BenchResult[]> {
  const max = envPositiveInt('WARDEN_BENCH_FANOUT_BROKERS', 1000);
  const flips = envPositiveInt('WARDEN_BENCH_FANOUT_FLIPS', 3);
  const cp = await startControlPlane();
  let authority: AuthorityProcess | undefined;
  const clients: AuthorityClient[] = [];
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const f = fixture(kc, NAMESPACE, ISSUER);
    await f.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await createServiceAccount(f, SA);
    await createAgentIdentity(f, AGENT, { serviceAccountName: SA });
    authority = await startAuthorityProcess(cp.kubeconfigPath);
    const base = `http://127.0.0.1:${authority.port}`;
    const idle = await authority.usage();
    // One pod (and so one session and one stream) per broker, as N broker sidecars would have.
    const tokens = await pool(
      Array.from({ length: max }, (_, i) => i),
      SETUP_CONCURRENCY,
      async (i) => {
        const pod = await createPod(f, `fanout-${i}`, { serviceAccount: SA, agent: AGENT });
        return projectedToken(f, SA, pod, undefined, 3600);
      },
    );
    const log = pino({ level: 'silent' });
    const results: BenchResult[] = [];
    for (const size of growthSizes(max)) {
      const added = tokens.slice(clients.length, size).map(
        (token) =>
          new AuthorityClient({
            authorityUrl: base,
            subject: async () => ({ token, type: TOKEN_TYPE_JWT }),
            log,
          }),
      );
      const connected = arrivals(added, active);
      await pool(added, SETUP_CONCURRENCY, (c) => c.start());
      clients.push(...added);
      await connected;
      const runs: number[][] = [];
      const cpu: number[] = [];
      // This process's CPU over the same window: the N simulated brokers parsing their snapshots.
      const clientCpu: number[] = [];
      let peakRss = 0;
      for (let flip = 0; flip < flips; flip++) {
        const before = await authority.usage();
        const clientCpu0 = process.cpuUsage();
        const seen = arrivals(clients, suspended);
        const t0 = await setSuspended(f, true);
        const at = await seen;
        const clientUsed = process.cpuUsage(clientCpu0);
        clientCpu.push(clientUsed.user + clientUsed.system);
        const after = await authority.usage();
        runs.push(at.map((t) => (t - t0) * 1000));
        cpu.push(after.cpuMicros - before.cpuMicros);
        peakRss = Math.max(peakRss, after.rss);
        const revived = arrivals(clients, active);
        await setSuspended(f, false);
        await revived;
      }
      const r = latencyResult(`killswitch/fanout/${size}-brokers`, runs, {
        target: { metric: 'p99Micros', max: 200_000 },
      });
      const all = runs.flat();
      const worst = Math.max(...all);
      const cpuMs = cpu.map((c) => Math.round(c / 1000));
      const { maxRss } = await authority.usage();
      results.push({
        ...r,
        // The authority's CPU per stream notified (the snapshot built, serialised and written).
        cpuMicrosPerOp: cpu.reduce((a, b) => a + b, 0) / all.length,
        note: `${size} brokers (${size} pods, sessions, streams) on one authority process, ${flips} flips: replace spec.suspended=true → each broker's AuthorityClient holds agent.suspended (would deny); max ${(worst / 1000).toFixed(1)} ms; authority CPU per flip ${cpuMs.join('/')} ms (cpu µs/op = authority CPU per stream), brokers' CPU per flip ${clientCpu.map((c) => Math.round(c / 1000)).join('/')} ms; authority RSS ${Math.round(peakRss / 2 ** 20)} MB (idle ${Math.round(idle.rss / 2 ** 20)} MB, peak over the run ${Math.round(maxRss / 2 ** 20)} MB); clients in the bench process on the same cores; load average ${loadavg()[0]?.toFixed(1)}`,
      });
    }
    return results;
  } finally {
    for (const c of clients) c.stop();
    await authority?.stop();
    await cp.stop();
  }
}
