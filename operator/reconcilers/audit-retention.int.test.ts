/**
 * Audit retention against the real API server: by age, by records per agent and by records per
 * namespace, old records are pruned, the cut is recorded on the AgentIdentity first (with why),
 * and what remains still verifies — signatures, links and anchored heads — with a PRUNED note.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { StaticAuditKeys } from '../../audit/keyset.js';
import { AuditWriter } from '../../audit/writer.js';
import type { AgentIdentity, AuditEntry, AuditRecord } from '../../core/api/index.js';
import { parsePrunedThrough } from '../../core/audit/chain.js';
import type { RetentionPolicy } from '../../core/audit/retention.js';
import { verifyTrail } from '../../core/audit/verify.js';
import { API_VERSION, PLURAL, RETENTION_FIELD_MANAGER } from '../../core/constants.js';
import { freshNamespace, kubeConfig } from '../../e2e/harness/index.js';
import { type Clock, realClock } from '../../kube/clock.js';
import type { Informer } from '../../kube/informer.js';
import { KubeConfigApi, type ObjectList } from '../../kube/kube.js';
import { ApiStatusWriter } from '../../kube/status.js';
import { prunedThroughOf, reconcileAuditRetention } from './audit-retention.js';

const HOUR = 3_600_000;
const log = pino({ level: 'silent' });
const ctx = { signal: new AbortController().signal, logger: log };

async function setup(prefix: string, agents: string[]) {
  const ns = await freshNamespace(prefix);
  const api = new KubeConfigApi(kubeConfig());
  const base = `/apis/${API_VERSION}/namespaces/${ns}`;
  for (const name of agents) {
    await api.request('POST', `${base}/${PLURAL.AgentIdentity}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AgentIdentity',
        metadata: { name },
        spec: { serviceAccountName: name },
      },
    });
  }
  const keys = StaticAuditKeys.generate();
  // One entry per record, so each record() + flush is one AuditRecord.
  const writer = new AuditWriter({
    api,
    log,
    keys,
    limits: { maxEntries: 1, maxBytes: 1 << 20, maxAgeMs: 0 },
  });
  let i = 0;
  const write = async (agent: string, n: number) => {
    for (let k = 0; k < n; k++) {
      const entry: AuditEntry = {
        time: new Date().toISOString(),
        kind: 'Decision',
        decision: 'Allow',
        requestId: `r-${i++}`,
      };
      writer.record(ns, agent, entry);
      await writer.flush(true);
    }
  };
  const records = async () =>
    (await api.request<ObjectList<AuditRecord>>('GET', `${base}/${PLURAL.AuditRecord}`)).items;
  const identities = async () =>
    (await api.request<ObjectList<AgentIdentity>>('GET', `${base}/${PLURAL.AgentIdentity}`)).items;
  /** One retention pass over the namespace with the given limits and clock. */
  const prune = async (policy: RetentionPolicy, clock: Clock = realClock) => {
    // Only list() and get() are used by the reconciler; a live read stands in for the informer cache.
    const current = await identities();
    const informer = {
      list: () => current,
      get: (name: string) => current.find((a) => a.metadata?.name === name),
    } as unknown as Informer<AgentIdentity>;
    const reconcile = reconcileAuditRetention({
      agents: informer,
      api,
      status: new ApiStatusWriter(api, RETENTION_FIELD_MANAGER),
      clock,
      policy,
      intervalMs: 0,
    });
    return reconcile({ namespace: ns, name: '' }, ctx);
  };
  /** What `kubectl warden audit --verify` checks, from what a reader sees. */
  const verify = async () => {
    const agents: Record<
      string,
      { pruned?: { sequence: number; digest: string }; prunedBy?: object; head?: object }
    > = {};
    for (const a of await identities()) {
      const cut = parsePrunedThrough(prunedThroughOf(a));
      agents[a.metadata?.name ?? ''] = {
        ...(cut ? { pruned: cut } : {}),
        ...(a.status?.audit?.pruned ? { prunedBy: a.status.audit.pruned } : {}),
        ...(a.status?.audit?.head ? { head: a.status.audit.head } : {}),
      };
    }
    return verifyTrail({
      namespace: ns,
      records: (await records()).map((r) => ({ name: r.metadata?.name ?? '', spec: r.spec })),
      agents,
      keys: keys.keySet(),
    });
  };
  const sequences = async (agent: string) =>
    (await records())
      .filter((r) => r.spec.agent === agent)
      .map((r) => r.spec.sequence)
      .sort((a, b) => a - b);
  const identity = async (agent: string) =>
    (await identities()).find((a) => a.metadata?.name === agent) as AgentIdentity;
  return { ns, writer, write, records, prune, verify, sequences, identity };
}

describe('audit retention', () => {
  it('by age: prunes records created before the cutoff, records why, and the rest verifies', async () => {
    const t = await setup('audit-ret-age', ['bot']);
    await t.write('bot', 3);
    // creationTimestamp has whole seconds: the next records are created in a later second.
    await new Promise((r) => setTimeout(r, 1100));
    await t.write('bot', 2);
    const created = (await t.records())
      .map((r) => ({ seq: r.spec.sequence, at: Date.parse(String(r.metadata?.creationTimestamp)) }))
      .sort((a, b) => a.seq - b.seq);
    const secondBatch = created[3]?.at as number;
    // A clock at which the second batch is just inside a 1 h retention and the first is not.
    const clock: Clock = { ...realClock, now: () => secondBatch + HOUR - 1 };
    await t.prune({ maxAgeMs: HOUR }, clock);

    expect(await t.sequences('bot')).toEqual([3, 4]);
    const bot = await t.identity('bot');
    expect(parsePrunedThrough(prunedThroughOf(bot))?.sequence).toBe(2);
    expect(bot.status?.audit?.pruned).toMatchObject({ reason: 'MaxAge', limit: 'older than 1h' });
    // Written by its one owner (docs/conventions.md §5).
    const owners = (bot.metadata?.managedFields ?? []).filter(
      (m) => m.subresource === 'status' && JSON.stringify(m.fieldsV1 ?? {}).includes('"f:prunedThrough"'),
    );
    expect(owners.map((m) => m.manager)).toEqual([RETENTION_FIELD_MANAGER]);
    const v = await t.verify();
    expect(v.problems).toEqual([]);
    expect(v.notes.find((n) => n.kind === 'pruned')?.message).toMatch(
      /^records 0\.\.2 of agent bot were pruned by retention \(older than 1h, last pruned .*\); what remains verifies from the retention anchor #2$/,
    );

    // Idempotent: nothing more is old enough; and the writer continues the chain after the cut.
    await t.prune({ maxAgeMs: HOUR }, clock);
    expect(await t.sequences('bot')).toEqual([3, 4]);
    await t.write('bot', 1);
    expect(await t.sequences('bot')).toEqual([3, 4, 5]);
    expect((await t.verify()).problems).toEqual([]);
    await t.writer.stop();
  });

  it('a namespace with agents but no records yet: the pass does nothing and does not fail', async () => {
    // An empty metadata-only list answers "items": null.
    const t = await setup('audit-ret-empty', ['bot']);
    await expect(t.prune({ maxRecordsPerNamespace: 1, maxAgeMs: HOUR })).resolves.toEqual({
      requeueAfter: 0,
    });
    await t.writer.stop();
  });

  it('by age: never prunes the newest record, however old', async () => {
    const t = await setup('audit-ret-newest', ['bot']);
    await t.write('bot', 2);
    await t.prune({ maxAgeMs: HOUR }, { ...realClock, now: () => Date.now() + 24 * HOUR });
    expect(await t.sequences('bot')).toEqual([1]);
    expect((await t.verify()).problems).toEqual([]);
    await t.writer.stop();
  });

  it('by records per agent: each agent keeps its newest N', async () => {
    const t = await setup('audit-ret-agent', ['bot', 'helper']);
    await t.write('bot', 5);
    await t.write('helper', 2);
    await t.prune({ maxRecordsPerAgent: 2 });
    expect(await t.sequences('bot')).toEqual([3, 4]);
    expect(await t.sequences('helper')).toEqual([0, 1]);
    expect((await t.identity('bot')).status?.audit?.pruned).toMatchObject({
      reason: 'MaxRecordsPerAgent',
      limit: 'more than 2 records per agent',
    });
    expect((await t.identity('helper')).status?.audit?.prunedThrough).toBeUndefined();
    const v = await t.verify();
    expect(v.problems).toEqual([]);
    expect(v.notes.filter((n) => n.kind === 'pruned').map((n) => n.agent)).toEqual(['bot']);
    await t.writer.stop();
  });

  it('by records per namespace: the oldest records of any agent go until the namespace is within its limit', async () => {
    const t = await setup('audit-ret-ns', ['a', 'b']);
    await t.write('a', 3);
    await t.write('b', 3);
    await t.prune({ maxRecordsPerNamespace: 3 });
    // Whether a's records were created in an earlier second than b's or the same one, the oldest
    // prunable three are a#0, a#1 (a#2 is a's newest) and b#0.
    expect(await t.sequences('a')).toEqual([2]);
    expect(await t.sequences('b')).toEqual([1, 2]);
    expect((await t.identity('a')).status?.audit?.pruned?.reason).toBe('MaxRecordsPerNamespace');
    expect((await t.verify()).problems).toEqual([]);
    await t.writer.stop();
  });

  it('a record deleted by hand is still reported: retention does not prune across the gap', async () => {
    const t = await setup('audit-ret-gap', ['bot']);
    await t.write('bot', 4);
    const api = new KubeConfigApi(kubeConfig());
    const victim = (await t.records()).find((r) => r.spec.sequence === 1)?.metadata?.name as string;
    await api.request('DELETE', `/apis/${API_VERSION}/namespaces/${t.ns}/${PLURAL.AuditRecord}/${victim}`);
    await t.prune({ maxRecordsPerAgent: 1 });
    expect(await t.sequences('bot')).toEqual([2, 3]);
    const v = await t.verify();
    expect(v.problems.map((p) => p.kind)).toEqual(['missing-start']);
    await t.writer.stop();
  });
});
