/**
 * Load through ONE broker (issue 10, part 3): 1,000 requests/s for 60 s, GET (allowed by policy)
 * and POST (denied) mixed 3:1, open loop, through a real broker in its own process (a bundled
 * runBroker, attested with a TokenRequest token), a real `warden controller` (operator + authority
 * + audit writer, in this process, with its production audit batching) and a private real API
 * server. e2e/load.e2e.test.ts runs the same at 200 requests/s for 10 s and asserts the behaviour;
 * here the numbers:
 *
 * - load/broker@<rate>rps-<s>s: latency p50/p99 of every request, achieved rate, broker CPU per
 *   request; the note has errors not caused by policy, the audited Decision entries (allowed /
 *   denied) against the requests, status.decisions, and the broker's RSS and heap (after a full
 *   GC) before and after.
 * - load/audit-lag: last response → last of the run's entries persisted in an AuditRecord.
 * - load/audit-trail-capacity: the audit path alone at full speed — a broker's AuditShipper over
 *   a real AuthorityClient session → POST /v1/audit → AuditWriter → AuditRecords, one agent's
 *   chain — entries per second from the first event queued to the last one persisted.
 *
 * Sizes: LOAD_BENCH_RATE (1000), LOAD_BENCH_SECONDS (60), LOAD_BENCH_CAPACITY_ENTRIES (20000).
 * LOAD_BROKER_NODE_FLAGS passes V8 flags to the broker process (e.g. "--max-old-space-size=64
 * --max-semi-space-size=4", what a sidecar with a 128 MiB limit would need: see docs/benchmarks.md).
 */
import { cpus, loadavg } from 'node:os';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { AuditShipper, type BrokerAuditEvent } from '../broker/audit.js';
import { AuthorityClient } from '../broker/authority-client.js';
import { startControlPlane } from '../e2e/controlplane/controlplane.js';
import { installCrds } from '../e2e/harness/crds.js';
import { countDecisions, drive, eventually, type LoadStack, startLoadStack } from '../e2e/load-fixture.js';
import { type BenchResult, percentile } from './lib.js';

const RATE = Number(process.env.LOAD_BENCH_RATE ?? 1000);
const SECONDS = Number(process.env.LOAD_BENCH_SECONDS ?? 60);
const CAPACITY_ENTRIES = Number(process.env.LOAD_BENCH_CAPACITY_ENTRIES ?? 20_000);
const DENY_EVERY = 4;

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function single(
  name: string,
  micros: number,
  opsPerSec: number,
  note: string,
  extra: Partial<BenchResult> = {},
) {
  return {
    name,
    p50Micros: micros,
    p99Micros: micros,
    meanMicros: micros,
    opsPerSec,
    cpuMicrosPerOp: Number.NaN,
    iterations: 1,
    repeats: 1,
    spread: {
      p50: { min: micros, max: micros },
      p99: { min: micros, max: micros },
      opsPerSec: { min: opsPerSec, max: opsPerSec },
    },
    note,
    ...extra,
  } satisfies BenchResult;
}

/** A broker-shaped audit event (what broker/access.ts records), one in DENY_EVERY a denial. */
function event(i: number): BrokerAuditEvent {
  const deny = i % DENY_EVERY === 0;
  return {
    time: new Date().toISOString(),
    kind: 'Decision',
    decision: deny ? 'Deny' : 'Allow',
    pod: 'load-bot-0',
    user: 'agent acting alone',
    target: 'api',
    method: deny ? 'POST' : 'GET',
    path: `/v1/tickets/${i}`,
    requestId: `capacity-${i}`,
    reason: deny ? 'NoMatchingAllow' : 'Allowed',
    message: deny ? 'no AccessPolicy rule allows POST /v1/tickets' : 'allowed by rule 0',
    ...(deny
      ? { reasons: [{ message: 'no AccessPolicy rule allows POST /v1/tickets' }] }
      : { policy: 'bench-load/load-bot-read', credentialId: 'jti-0123456789abcdef' }),
  };
}

/** Floods the audit path with `n` events through a second client of the agent's pod; entries/s. */
async function auditCapacity(stack: LoadStack, n: number): Promise<BenchResult> {
  const log = pino({ level: 'warn' });
  const client = new AuthorityClient({
    authorityUrl: stack.authorityUrl,
    tokenFile: stack.tokenFile,
    log,
    streamIdleMs: 60_000,
  });
  await client.attest();
  const shipper = new AuditShipper({ transport: client, log });
  const writer = stack.controller.auditWriter;
  await eventually('the writer to be idle', async () => writer.stats().buffered === 0, 120_000, 50);
  const written0 = writer.stats().written;
  const t0 = performance.now();
  // Queued as fast as the shipper takes them, within its queue bound (a flood beyond the bound
  // would measure the shedding, not the path).
  let i = 0;
  while (i < n) {
    while (i < n && i - shipper.shipped < 5_000) shipper.record(event(i++));
    await new Promise((r) => setTimeout(r, 2));
  }
  let shippedMs = 0;
  await eventually(
    'every capacity entry persisted',
    async () => {
      if (!shippedMs && shipper.shipped >= n) shippedMs = performance.now() - t0;
      return writer.stats().written - written0 >= n;
    },
    600_000,
    10,
  );
  const seconds = (performance.now() - t0) / 1000;
  await shipper.close();
  client.stop();
  const perSec = n / seconds;
  return single(
    'load/audit-trail-capacity',
    1e6 / perSec,
    perSec,
    `${n} events: AuditShipper → POST /v1/audit → AuditWriter → AuditRecords (one agent's chain, controller defaults); all shipped after ${(shippedMs / 1000).toFixed(2)} s (${Math.round(n / (shippedMs / 1000))}/s), all persisted after ${seconds.toFixed(2)} s; shipper dropped ${shipper.dropped} (latency columns = 1/throughput)`,
  );
}

export async function run(): Promise<BenchResult[]> {
  const cp = await startControlPlane();
  let stack: LoadStack | undefined;
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'bench-load' } } });
    stack = await startLoadStack({ kubeConfig: kc, namespace: 'bench-load' });
    const s = stack;
    await s.waitReady();
    // Warm-up (JIT, connection pools, the credential cache); its decisions are audited too.
    await drive(s.brokerUrl, { rate: Math.min(RATE, 300), durationMs: 3_000, requestIdPrefix: 'warmup-' });
    const writer = s.controller.auditWriter;
    // The warm-up's entries persisted first, so the writer's count afterwards is the run's.
    await eventually('the warm-up audited', async () => writer.stats().buffered === 0, 60_000, 100);
    const written0 = writer.stats().written;
    const start = await s.brokerStats(true);
    const loadStart = loadavg();

    // RSS every 5 s while the load runs (no GC forced: what the kubelet would see).
    const rssSeen: number[] = [];
    const probe = setInterval(() => void s.brokerStats().then((st) => rssSeen.push(st.rss)), 5_000);
    const prefix = `load-${Date.now().toString(36)}-`;
    const r = await drive(s.brokerUrl, {
      rate: RATE,
      durationMs: SECONDS * 1000,
      denyEvery: DENY_EVERY,
      requestIdPrefix: prefix,
    });
    clearInterval(probe);
    const loadEnd = performance.now();
    const endLoaded = await s.brokerStats();

    // The writer's own count says when the run is persisted (listing a chain of hundreds of
    // records every second would load the API server the writer is writing to); then the trail
    // itself is counted.
    const writerDone = () => {
      const w = writer.stats();
      return w.buffered === 0 && w.written - written0 >= r.allowed + r.denied;
    };
    // On timeout the counts below tell what is missing.
    const persisted = await eventually('the writer to persist the run', async () => writerDone(), 300_000, 20)
      .then(() => true)
      .catch(() => false);
    const lagMs = persisted ? performance.now() - loadEnd : Number.NaN;
    // Compared with the answered requests: a request that failed (an error, in the note) may or
    // may not have been decided and audited, so the count is reported, not waited for.
    let audited = countDecisions(await s.auditRecords(), prefix);
    for (let i = 0; i < 12 && audited.allowed + audited.denied < r.allowed + r.denied; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      audited = countDecisions(await s.auditRecords(), prefix);
    }
    const all = countDecisions(await s.auditRecords(), '');
    const decisions = await eventually(
      'status.decisions to catch up',
      async () => {
        const d = (await s.getAgent()).status?.decisions;
        return d && (d.allowed ?? 0) + (d.denied ?? 0) >= all.allowed + all.denied ? d : false;
      },
      60_000,
      500,
    ).catch(() => undefined);
    const end = await s.brokerStats(true);
    const writerStats = writer.stats();

    const sorted = Array.from(r.latencies).sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const achieved = (r.allowed + r.denied + r.errors) / (r.elapsedMs / 1000);
    const auditOk = audited.allowed === r.allowed && audited.denied === r.denied;
    const statusOk = decisions?.allowed === all.allowed && decisions?.denied === all.denied;
    const load: BenchResult = {
      name: `load/broker@${RATE}rps-${SECONDS}s`,
      p50Micros: p50,
      p99Micros: p99,
      meanMicros: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
      opsPerSec: achieved,
      cpuMicrosPerOp: (end.cpuMicros - start.cpuMicros) / Math.max(1, r.sent),
      iterations: r.sent,
      repeats: 1,
      spread: {
        p50: { min: p50, max: p50 },
        p99: { min: p99, max: p99 },
        opsPerSec: { min: achieved, max: achieved },
      },
      note: [
        `${r.sent} requests (${r.allowed} allowed, ${r.denied} denied by policy), ${r.errors} errors not caused by policy${r.errorSamples.length ? ` e.g. ${r.errorSamples[0]}` : ''}`,
        `audited ${audited.allowed} allowed + ${audited.denied} denied ${auditOk ? '= requests' : 'MISMATCH'}`,
        `status.decisions ${decisions?.allowed}/${decisions?.denied} vs trail ${all.allowed}/${all.denied} ${statusOk ? 'agree' : 'DISAGREE'}`,
        `writer dropped ${writerStats.dropped}, failures ${writerStats.failures}`,
        `broker RSS ${mib(start.rss)} → ${mib(endLoaded.rss)} (max while loaded ${mib(Math.max(endLoaded.rss, ...rssSeen))}), after GC: heap used ${mib(start.heapUsed)} → ${mib(end.heapUsed)}, heap total ${mib(start.heapTotal)} → ${mib(end.heapTotal)}, external ${mib(start.external)} → ${mib(end.external)}`,
        `load average ${loadStart.map((l) => l.toFixed(1)).join(' ')} → ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')} on ${cpus().length} CPUs`,
        'cpuMicrosPerOp = broker process CPU per request',
      ].join('; '),
    };
    const capacity = await auditCapacity(s, CAPACITY_ENTRIES);
    return [
      load,
      single(
        'load/audit-lag',
        lagMs * 1000,
        Number.NaN,
        `last response → the writer has persisted the run's ${r.sent} decisions (bounded below by the batching: the shipper's 1 s flush interval and the writer's maxAgeMs for the last partial record)`,
      ),
      single(
        'load/broker-rss',
        Number.NaN,
        Number.NaN,
        `broker RSS idle ${mib(start.rss)}, after ${SECONDS} s at ${RATE} rps ${mib(endLoaded.rss)}, after GC ${mib(end.rss)}; heap after GC ${mib(start.heapUsed)} → ${mib(end.heapUsed)}`,
      ),
      capacity,
    ];
  } finally {
    await stack?.stop();
    await cp.stop();
  }
}
