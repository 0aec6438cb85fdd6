/**
 * Audit throughput: entries per second persisted as AuditRecords in a real API server.
 *
 * - audit/writer: the AuditWriter alone (entries queued as fast as possible, batches of 200),
 *   from the first record() to every entry written — the ceiling of the persistence path.
 * - audit/broker-to-record: the whole trail — agent calls through a real broker, shipped to the
 *   authority's POST /v1/audit, batched by the controller's writer (200 per record), until every
 *   entry is an AuditRecord entry.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { StaticAuditKeys } from '../audit/keyset.js';
import { AuditWriter } from '../audit/writer.js';
import type { AuditEntry } from '../core/api/index.js';
import { startControlPlane } from '../e2e/controlplane/controlplane.js';
import { installCrds } from '../e2e/harness/crds.js';
import { eventually, type Stack, startStack } from '../e2e/killswitch-fixture.js';
import { KubeConfigApi } from '../kube/kube.js';
import type { BenchResult } from './lib.js';

const WRITER_ENTRIES = Number(process.env.AUDIT_BENCH_ENTRIES ?? 20_000);
const CALLS = Number(process.env.AUDIT_BENCH_CALLS ?? 2_000);

function rate(name: string, count: number, seconds: number, note: string): BenchResult {
  const perSec = count / seconds;
  const micros = 1e6 / perSec;
  return {
    name,
    p50Micros: micros,
    p99Micros: micros,
    meanMicros: micros,
    opsPerSec: perSec,
    cpuMicrosPerOp: Number.NaN,
    iterations: count,
    repeats: 1,
    spread: {
      p50: { min: micros, max: micros },
      p99: { min: micros, max: micros },
      opsPerSec: { min: perSec, max: perSec },
    },
    note: `${note}; ${count} entries in ${seconds.toFixed(2)} s (latency columns = 1/throughput)`,
  };
}

const entry = (i: number): AuditEntry => ({
  time: new Date().toISOString(),
  kind: 'Decision',
  decision: i % 4 === 0 ? 'Deny' : 'Allow',
  pod: 'bench-0',
  user: 'agent acting alone',
  target: 'jira',
  tool: 'jira.get_issue',
  requestId: `bench-${i}`,
  ...(i % 4 === 0 ? { message: 'NoMatchingAllow: no AccessPolicy rule allows it' } : {}),
});

export async function run(): Promise<BenchResult[]> {
  const cp = await startControlPlane();
  let stack: Stack | undefined;
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of ['bench-audit', 'bench-trail'])
      await core.createNamespace({ body: { metadata: { name } } });

    // The writer alone: 4 agents' chains in parallel.
    const writer = new AuditWriter({
      api: new KubeConfigApi(kc),
      log: pino({ level: 'silent' }),
      keys: StaticAuditKeys.generate(),
      limits: { maxEntries: 200, maxBytes: 256 * 1024, maxAgeMs: 200 },
      flushIntervalMs: 50,
    });
    writer.start();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < WRITER_ENTRIES; i++) writer.record('bench-audit', `agent-${i % 4}`, entry(i));
    await eventually(
      'all entries written',
      async () => writer.stats().written >= WRITER_ENTRIES,
      300_000,
      20,
    );
    const writerSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await writer.stop();

    // The whole trail, through the broker and the authority.
    stack = await startStack({
      kubeConfig: kc,
      namespace: 'bench-trail',
      auditMaxEntries: 200,
      auditMaxAgeMs: 200,
    });
    await stack.waitReady();
    const s = stack;
    const t1 = process.hrtime.bigint();
    const prefix = `trail-${Date.now()}-`;
    // Four agent connections in parallel, as a busy agent would.
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let i = w; i < CALLS; i += 4) await s.call(i % 4 === 0 ? 'POST' : 'GET', `${prefix}${i}`);
      }),
    );
    await eventually(
      'all broker decisions persisted',
      async () =>
        (await s.auditRecords()).flatMap((r) => r.spec.entries).filter((e) => e.requestId?.startsWith(prefix))
          .length >= CALLS,
      300_000,
      200,
    );
    const trailSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
    return [
      rate(
        'audit/writer-persisted',
        WRITER_ENTRIES,
        writerSeconds,
        'AuditWriter → AuditRecords (200/record, 4 chains)',
      ),
      rate(
        'audit/broker-to-record',
        CALLS,
        trailSeconds,
        'agent calls → broker → POST /v1/audit → writer → AuditRecords (200/record), 4 parallel agent connections',
      ),
    ];
  } finally {
    await stack?.stop();
    await cp.stop();
  }
}
