/**
 * The audit trail at scale (#18 items 4 and 5), against a real kube-apiserver + etcd:
 *
 * - audit/sim: N entries (default 400,000, twice what the limit keeps; AUDIT_SIM_ENTRIES=1000000 for the full million) driven
 *   through the real AuditWriter (200 entries per record, 10 agents in one namespace) as fast as it
 *   persists them, while the real retention reconciler (core/audit/retention.ts) keeps the namespace
 *   at AUDIT_SIM_MAX_RECORDS records (default 1,000 = 200,000 entries), a pass every 5 s. Samples
 *   etcd's database size (total and in use), the API server's request rate and this process's CPU
 *   (writer + driver + retention), and states the bound of the etcd footprint at 1,000 entries/s.
 * - audit/query-100k: `kubectl warden audit` (the real command, in process) over a trail of
 *   100,000 entries: a filtered query (agent, user, tool, decision, time range; goal < 2 s), the
 *   same without --agent (every record of the namespace is read), and --verify of the namespace
 *   with the peak heap growth while it streams.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { StaticAuditKeys } from '../audit/keyset.js';
import { AuditWriter } from '../audit/writer.js';
import { buildProgram, discoverCommands } from '../cli/program.js';
import type { AgentIdentity } from '../core/api/index.js';
import { API_VERSION, PLURAL, RETENTION_FIELD_MANAGER } from '../core/constants.js';
import { type ControlPlane, startControlPlane } from '../e2e/controlplane/controlplane.js';
import { installCrds } from '../e2e/harness/crds.js';
import { realClock } from '../kube/clock.js';
import type { Informer } from '../kube/informer.js';
import { CACHED_LIST_QUERY, KubeConfigApi, METADATA_LIST_ACCEPT, type ObjectList } from '../kube/kube.js';
import { ApiStatusWriter } from '../kube/status.js';
import { reconcileAuditRetention } from '../operator/reconcilers/audit-retention.js';
import { syntheticEntry } from './audit-trail.js';
import type { BenchResult } from './lib.js';

const SIM_ENTRIES = Number(process.env.AUDIT_SIM_ENTRIES ?? 400_000);
const SIM_MAX_RECORDS = Number(process.env.AUDIT_SIM_MAX_RECORDS ?? 1_000);
const QUERY_ENTRIES = Number(process.env.AUDIT_QUERY_ENTRIES ?? 100_000);
// AUDIT_SCALE_PARTS=query or =sim runs one part (default both).
const AGENTS = 10;
const BATCH = 200;
const MiB = 1024 * 1024;
const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function single(name: string, micros: number, note: string, extra: Partial<BenchResult> = {}): BenchResult {
  return {
    name,
    p50Micros: micros,
    p99Micros: micros,
    meanMicros: micros,
    opsPerSec: 1e6 / micros,
    cpuMicrosPerOp: Number.NaN,
    iterations: 1,
    repeats: 1,
    spread: {
      p50: { min: micros, max: micros },
      p99: { min: micros, max: micros },
      opsPerSec: { min: 1e6 / micros, max: 1e6 / micros },
    },
    note,
    ...extra,
  };
}

/** A Prometheus text exposition's samples of one metric, summed (optionally where `match` holds). */
function sumMetric(text: string, metric: string, match: (labels: string) => boolean = () => true): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([^\s]+)/.exec(line);
    if (!m || m[1] !== metric || !match(m[2] ?? '')) continue;
    sum += Number(m[3]);
  }
  return sum;
}

interface Sample {
  atMs: number;
  dbBytes: number;
  dbInUseBytes: number;
  requests: number;
  auditRequests: number;
  cpuMicros: number;
  written: number;
}

async function sample(cp: ControlPlane, api: KubeConfigApi, written: number, t0: number): Promise<Sample> {
  const etcd = await (await fetch(`${cp.etcdUrl}/metrics`)).text();
  const apis = await api.request<string>('GET', '/metrics', { accept: 'text/plain' });
  const cpu = process.cpuUsage();
  return {
    atMs: Date.now() - t0,
    dbBytes: sumMetric(etcd, 'etcd_mvcc_db_total_size_in_bytes'),
    dbInUseBytes: sumMetric(etcd, 'etcd_mvcc_db_total_size_in_use_in_bytes'),
    requests: sumMetric(apis, 'apiserver_request_total'),
    auditRequests: sumMetric(apis, 'apiserver_request_total', (l) =>
      /resource="(auditrecords|agentidentities)"/.test(l),
    ),
    cpuMicros: cpu.user + cpu.system,
    written,
  };
}

async function namespaceWithAgents(api: KubeConfigApi, ns: string, agents: number): Promise<void> {
  await api.request('POST', '/api/v1/namespaces', { body: { metadata: { name: ns } } });
  for (let a = 0; a < agents; a++) {
    await api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AgentIdentity',
        metadata: { name: `agent-${a}` },
        spec: { serviceAccountName: `agent-${a}` },
      },
    });
  }
}

/** Drives `n` entries through a writer, never more than `ahead` buffered; resolves when all are written. */
async function drive(
  writer: AuditWriter,
  ns: string,
  n: number,
  startMs: number,
  spacingMs: number,
  ahead = 20_000,
) {
  for (let i = 0; i < n; i++) {
    writer.record(ns, `agent-${i % AGENTS}`, syntheticEntry(i, startMs + i * spacingMs));
    if (i % 1000 === 999) while (writer.stats().buffered > ahead) await sleep(20);
  }
  while (writer.stats().written + writer.stats().dropped < n) await sleep(50);
}

async function countRecords(api: KubeConfigApi, ns: string): Promise<number> {
  let n = 0;
  let cont: string | undefined;
  do {
    const page = await api.request<ObjectList<unknown>>(
      'GET',
      `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
      {
        query: { limit: '500', ...(cont ? { continue: cont } : CACHED_LIST_QUERY) },
        accept: METADATA_LIST_ACCEPT,
        timeoutMs: 300_000,
      },
    );
    n += page.items?.length ?? 0;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return n;
}

async function simulate(cp: ControlPlane, api: KubeConfigApi): Promise<BenchResult[]> {
  const ns = 'bench-audit-sim';
  await namespaceWithAgents(api, ns, AGENTS);
  const writer = new AuditWriter({
    api,
    log,
    keys: StaticAuditKeys.generate(),
    limits: { maxEntries: BATCH, maxBytes: 256 * 1024, maxAgeMs: 1000 },
    flushIntervalMs: 100,
  });
  const policy = { maxRecordsPerNamespace: SIM_MAX_RECORDS };
  const status = new ApiStatusWriter(api, RETENTION_FIELD_MANAGER);
  const reconcile = async () => {
    // A fresh read each pass stands in for the informer: the cut moves every pass.
    const agents = (
      await api.request<ObjectList<AgentIdentity>>(
        'GET',
        `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}`,
      )
    ).items;
    const informer = {
      list: () => agents,
      get: (name: string) => agents.find((a) => a.metadata?.name === name),
    } as unknown as Informer<AgentIdentity>;
    await reconcileAuditRetention({ agents: informer, api, status, clock: realClock, policy, intervalMs: 0 })(
      { namespace: ns, name: '' },
      { signal: new AbortController().signal, logger: log },
    );
  };
  const t0 = Date.now();
  const samples: Sample[] = [await sample(cp, api, 0, t0)];
  let stop = false;
  const retentionErrors: string[] = [];
  const retention = (async () => {
    while (!stop) {
      await reconcile().catch((err: unknown) => {
        retentionErrors.push(err instanceof Error ? err.message : String(err));
      });
      await sleep(5000);
    }
  })();
  const sampler = (async () => {
    while (!stop) {
      await sleep(5000);
      const s = await sample(cp, api, writer.stats().written, t0);
      samples.push(s);
      // Progress on stderr, so a run cut short still tells what it saw.
      process.stderr.write(
        `[audit/sim] ${Math.round(s.atMs / 1000)} s: ${s.written} written, etcd ${(s.dbBytes / MiB).toFixed(0)} MiB (${(s.dbInUseBytes / MiB).toFixed(0)} in use), ${retentionErrors.length} retention errors\n`,
      );
    }
  })();
  writer.start();
  // Entry times 1 ms apart: the trail of 1,000 entries/s, written as fast as the writer can.
  await drive(writer, ns, SIM_ENTRIES, Date.now() - SIM_ENTRIES, 1);
  const driveSeconds = (Date.now() - t0) / 1000;
  await writer.stop();
  stop = true;
  await Promise.all([retention, sampler]);
  await reconcile().catch((err: unknown) => {
    retentionErrors.push(err instanceof Error ? err.message : String(err));
  });
  const last = await sample(cp, api, writer.stats().written, t0);
  samples.push(last);
  const live = await countRecords(api, ns);
  // What one record and one AgentIdentity weigh as stored (etcd holds the JSON object).
  const list = await api.request<ObjectList<unknown>>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
    {
      query: { limit: '1' },
    },
  );
  const recordBytes = JSON.stringify(list.items[0] ?? {}).length;
  const agentBytes = JSON.stringify(
    await api.request('GET', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/agent-0`),
  ).length;
  const first = samples[0] as Sample;
  const seconds = (last.atMs - first.atMs) / 1000;
  const peakDb = Math.max(...samples.map((s) => s.dbBytes));
  const peakInUse = Math.max(...samples.map((s) => s.dbInUseBytes));
  const cpuPerEntry = (last.cpuMicros - first.cpuMicros) / SIM_ENTRIES;
  const reqRate = (last.requests - first.requests) / seconds;
  const auditReqRate = (last.auditRequests - first.auditRequests) / seconds;
  const entriesPerSec = SIM_ENTRIES / driveSeconds;
  // The bound at 1,000 entries/s (5 records/s): the live records (the namespace limit, plus what
  // one 30 s retention pass interval adds) and the MVCC history etcd keeps until the API server
  // compacts it. It compacts every 5 min to the revision it saw at the previous compaction, so up
  // to 10 min of history is kept: 3,000 records written and ~3,000 AgentIdentity status writes (the
  // chain head is anchored after every record), whose space is freed, not returned, after compaction.
  const liveBound = (SIM_MAX_RECORDS + 150) * recordBytes;
  const historyBound = 600 * 5 * (recordBytes + agentBytes);
  const boundMiB = (first.dbBytes + liveBound + historyBound) / MiB;
  const stats = writer.stats();
  const trace = samples
    .filter((_, i) => i % Math.max(1, Math.floor(samples.length / 8)) === 0 || _ === last)
    .map(
      (s) =>
        `${Math.round(s.atMs / 1000)}s:${(s.written / 1000).toFixed(0)}k/${(s.dbBytes / MiB).toFixed(0)}MiB`,
    )
    .join(' ');
  const note = [
    `${SIM_ENTRIES.toLocaleString('en-US')} entries (${stats.records} records of ≤${BATCH}, ${AGENTS} agents, one namespace) through the AuditWriter in ${driveSeconds.toFixed(0)} s = ${entriesPerSec.toFixed(0)} entries/s, dropped ${stats.dropped}`,
    `retention maxRecordsPerNamespace=${SIM_MAX_RECORDS} (pass every 5 s): ${live} records left`,
    `etcd db peak ${(peakDb / MiB).toFixed(1)} MiB total / ${(peakInUse / MiB).toFixed(1)} MiB in use, at end ${(last.dbBytes / MiB).toFixed(1)} / ${(last.dbInUseBytes / MiB).toFixed(1)} MiB (empty: ${(first.dbBytes / MiB).toFixed(1)} MiB; a record is ${(recordBytes / 1024).toFixed(0)} KiB, an AgentIdentity ${(agentBytes / 1024).toFixed(1)} KiB)`,
    `API server ${reqRate.toFixed(1)} req/s (${auditReqRate.toFixed(1)} on auditrecords+agentidentities)`,
    `process CPU (writer + driver + retention) ${cpuPerEntry.toFixed(1)} µs per entry = ${((cpuPerEntry * 1000) / 1e4).toFixed(1)}% of a core at 1,000 entries/s`,
    `bound at 1,000 entries/s: empty db + (${SIM_MAX_RECORDS} + 150 per 30 s pass) live records + up to 10 min of history (two 5-min compaction intervals: 3,000 records + 3,000 AgentIdentity writes) ≈ ${boundMiB.toFixed(0)} MiB`,
    `trace (time:written/db) ${trace}`,
    ...(retentionErrors.length
      ? [`retention pass errors: ${retentionErrors.length} (first: ${retentionErrors[0]})`]
      : []),
  ].join('; ');
  return [
    single('audit/sim', driveSeconds * 1e6, note, {
      opsPerSec: entriesPerSec,
      iterations: SIM_ENTRIES,
      cpuMicrosPerOp: cpuPerEntry,
    }),
  ];
}

async function timed(fn: () => Promise<void>, runs = 3): Promise<{ medianMs: number; all: number[] }> {
  const all: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn();
    all.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const sorted = [...all].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)] as number, all };
}

async function query(cp: ControlPlane, api: KubeConfigApi): Promise<BenchResult[]> {
  const ns = 'bench-audit-query';
  await namespaceWithAgents(api, ns, AGENTS);
  const keys = StaticAuditKeys.generate();
  const writer = new AuditWriter({
    api,
    log,
    keys,
    limits: { maxEntries: BATCH, maxBytes: 256 * 1024, maxAgeMs: 200 },
    flushIntervalMs: 50,
  });
  writer.start();
  // 100,000 entries over the last two hours (one every 72 ms).
  const spacing = Math.floor((2 * 3_600_000) / QUERY_ENTRIES);
  await drive(writer, ns, QUERY_ENTRIES, Date.now() - QUERY_ENTRIES * spacing, spacing);
  await writer.stop();
  const keysFile = join(mkdtempSync(join(tmpdir(), 'warden-bench-keys-')), 'keys.json');
  writeFileSync(keysFile, JSON.stringify({ keys: keys.keySet().keys }));

  const factories = await discoverCommands();
  let out = '';
  const cli = async (args: string[]) => {
    out = '';
    const io = {
      out: (t: string) => {
        out += t;
      },
      err: () => {},
    };
    await buildProgram(factories, io).parseAsync(
      // A loaded machine can take longer than the CLI's 30 s default for a page of 100 records.
      ['audit', '-n', ns, '--kubeconfig', cp.kubeconfigPath, '--request-timeout', '5m', ...args],
      { from: 'user' },
    );
  };
  const filtered = [
    '--agent',
    'agent-3',
    '--user',
    '*alice',
    '--tool',
    'jira.*',
    '--decision',
    'Deny',
    '--since',
    '30m',
    '-o',
    'json',
  ];
  const q1 = await timed(() => cli(filtered));
  const rows1 = (JSON.parse(out) as unknown[]).length;
  const noAgent = ['--user', '*alice', '--tool', 'jira.*', '--decision', 'Deny', '-o', 'json'];
  const q2 = await timed(() => cli(noAgent));
  const rows2 = (JSON.parse(out) as unknown[]).length;

  // --verify: peak heap growth while it streams, for one agent's chain and for the whole
  // namespace (ten times the records): flat memory shows as about the same growth.
  const verifyRun = async (extra: string[]) => {
    globalThis.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    let peak = heap0;
    const watch = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 10);
    const t = await timed(() => cli(['--verify', '--keys', keysFile, ...extra]), 1);
    clearInterval(watch);
    process.exitCode = 0;
    const m = /(\d+) record\(s\), (\d+) entr/.exec(out);
    return {
      ms: t.all[0] as number,
      growthMiB: (peak - heap0) / MiB,
      records: m?.[1] ?? '?',
      entries: m?.[2] ?? '?',
      ok: out.includes('audit trail OK'),
    };
  };
  const vOne = await verifyRun(['--agent', 'agent-0']);
  const vAll = await verifyRun([]);
  const ms = (x: number[]) => x.map((t) => t.toFixed(0)).join('/');
  return [
    single(
      'audit/query-100k',
      q1.medianMs * 1000,
      `kubectl warden audit ${filtered.join(' ')} over ${QUERY_ENTRIES.toLocaleString('en-US')} entries (${AGENTS} agents, ${QUERY_ENTRIES / BATCH} records): median of 3 ${q1.medianMs.toFixed(0)} ms (${ms(q1.all)}), ${rows1} rows; in process, without the CLI's start-up; goal < 2 s`,
      { target: { metric: 'p50Micros', max: 2_000_000 }, iterations: 3, repeats: 3 },
    ),
    single(
      'audit/query-100k-no-agent',
      q2.medianMs * 1000,
      `the same filters without --agent or a time range (every record of the namespace is read): median of 3 ${q2.medianMs.toFixed(0)} ms (${ms(q2.all)}), ${rows2} rows`,
      { iterations: 3, repeats: 3 },
    ),
    single(
      'audit/verify-100k',
      vAll.ms * 1000,
      `kubectl warden audit --verify of the namespace: ${vAll.records} records, ${vAll.entries} entries in ${vAll.ms.toFixed(0)} ms (${vAll.ok ? 'OK' : 'NOT OK'}), peak heap growth ${vAll.growthMiB.toFixed(1)} MiB; one agent (${vOne.records} records, ${vOne.entries} entries) ${vOne.ms.toFixed(0)} ms, peak heap growth ${vOne.growthMiB.toFixed(1)} MiB; the trail holds ~${((QUERY_ENTRIES * 330) / MiB).toFixed(0)} MiB of entries`,
    ),
  ];
}

export async function run(): Promise<BenchResult[]> {
  const cp = await startControlPlane();
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const api = new KubeConfigApi(kc);
    const parts = (process.env.AUDIT_SCALE_PARTS ?? 'query,sim').split(',');
    const results = [
      ...(parts.includes('query') ? await query(cp, api) : []),
      ...(parts.includes('sim') ? await simulate(cp, api) : []),
    ];
    api.close();
    return results;
  } finally {
    await cp.stop();
  }
}
