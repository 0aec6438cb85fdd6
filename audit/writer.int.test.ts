/**
 * The AuditRecord writer against the real API server: every entry lands exactly once
 * in a verifiable chain, also with two writers racing on one chain and across an API
 * server outage.
 */
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AgentIdentity, AuditEntry, AuditRecord } from '../core/api/index.js';
import { GENESIS_DIGEST, recordName, sealRecord, verifyChain } from '../core/audit/chain.js';
import { verifyTrail } from '../core/audit/verify.js';
import { API_VERSION, LABEL_AGENT, PLURAL } from '../core/constants.js';
import { installCrds } from '../e2e/harness/crds.js';
import { freshNamespace, kubeConfig, startControlPlane } from '../e2e/harness/index.js';
import { type KubeApi, KubeConfigApi, type ObjectList, type RequestOptions } from '../kube/kube.js';
import { createMetrics } from '../observability/metrics.js';
import { StaticAuditKeys } from './keyset.js';
import { AuditWriter } from './writer.js';

const log = pino({ level: 'silent' });
const keys = StaticAuditKeys.generate();
const entry = (i: number): AuditEntry => ({
  time: new Date(Date.UTC(2026, 10, 29, 12, 0, 0, i)).toISOString(),
  kind: 'Decision',
  decision: i % 3 === 0 ? 'Deny' : 'Allow',
  user: 'agent acting alone',
  tool: 'jira.get_issue',
  requestId: `req-${i}`,
});

async function records(api: KubeConfigApi, ns: string): Promise<AuditRecord[]> {
  const list = await api.request<ObjectList<AuditRecord>>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
  );
  return list.items;
}

function requestIds(items: AuditRecord[]): string[] {
  return items.flatMap((r) => r.spec.entries.map((e) => e.requestId ?? '')).sort();
}

describe('AuditWriter', () => {
  it('writes N entries as exactly N chained entries across batches', async () => {
    const ns = await freshNamespace('audit-writer');
    const api = new KubeConfigApi(kubeConfig());
    const w = new AuditWriter({
      api,
      keys,
      log,
      limits: { maxEntries: 7, maxBytes: 1 << 20, maxAgeMs: 100 },
    });
    for (let i = 0; i < 50; i++) w.record(ns, 'support-bot', entry(i));
    await w.stop();
    const items = await records(api, ns);
    expect(requestIds(items)).toEqual(Array.from({ length: 50 }, (_, i) => `req-${i}`).sort());
    expect(items.length).toBe(8); // ceil(50 / 7)
    const res = verifyChain(items.map((r) => ({ name: r.metadata.name ?? '', spec: r.spec })));
    expect(res.problems).toEqual([]);
    expect(w.stats()).toMatchObject({ written: 50, records: 8, dropped: 0, buffered: 0 });
  });

  it('drains every full batch of a chain in one flush, not one batch per flush', async () => {
    const ns = await freshNamespace('audit-drain');
    const api = new KubeConfigApi(kubeConfig());
    const w = new AuditWriter({
      api,
      keys,
      log,
      limits: { maxEntries: 7, maxBytes: 1 << 20, maxAgeMs: 600_000 },
    });
    for (let i = 0; i < 50; i++) w.record(ns, 'bot', entry(i));
    await w.flush();
    // Seven full batches written; the last entry waits for its age or the final flush.
    expect(w.stats()).toMatchObject({ written: 49, records: 7, buffered: 1, dropped: 0 });
    await w.stop();
    expect(requestIds(await records(api, ns))).toHaveLength(50);
  });

  it('counts written and dropped entries in warden_audit_entries_total', async () => {
    const ns = await freshNamespace('audit-metrics');
    const api = new KubeConfigApi(kubeConfig());
    const m = createMetrics();
    const w = new AuditWriter({
      api,
      keys,
      log,
      metrics: m,
      maxBuffered: 5,
      limits: { maxEntries: 100, maxBytes: 1 << 20, maxAgeMs: 600_000 },
    });
    for (let i = 0; i < 8; i++) w.record(ns, 'bot', entry(i));
    await w.stop();
    const counter = (await m.registry.getMetricsAsJSON()).find(
      (x) => x.name === 'warden_audit_entries_total',
    );
    const value = (result: string) => counter?.values.find((v) => v.labels.result === result)?.value;
    expect(value('written')).toBe(5);
    expect(value('dropped')).toBe(3);
    expect(w.stats()).toMatchObject({ written: 5, dropped: 3 });
  });

  it('drops a batch the API server refuses as invalid and keeps writing the chain', async () => {
    const ns = await freshNamespace('audit-invalid');
    const api = new KubeConfigApi(kubeConfig());
    const droppedFor: Array<[string, string, number]> = [];
    const w = new AuditWriter({
      api,
      keys,
      log,
      onDropped: (n, a, c) => droppedFor.push([n, a, c]),
      limits: { maxEntries: 1, maxBytes: 1 << 20, maxAgeMs: 600_000 },
    });
    w.record(ns, 'bot', entry(0));
    // A rule index outside the schema's 0..63: the API server answers 422 for this record. Its
    // waiter (an issuance the authority would answer) learns the entry was dropped, not written.
    const refused = w.recordPersisted(ns, 'bot', [{ ...entry(1), reasons: [{ rule: -1, message: 'x' }] }]);
    const written = w.recordPersisted(ns, 'bot', [entry(2)]);
    await w.stop();
    expect(await refused).toBe(false);
    expect(await written).toBe(true);
    const items = await records(api, ns);
    expect(requestIds(items)).toEqual(['req-0', 'req-2']);
    expect(verifyChain(items.map((r) => ({ name: r.metadata.name ?? '', spec: r.spec }))).problems).toEqual(
      [],
    );
    expect(w.stats()).toMatchObject({ written: 2, dropped: 1, buffered: 0 });
    expect(droppedFor).toEqual([[ns, 'bot', 1]]);
  });

  it('keeps one valid chain when two writers (replicas) race on the same agent', async () => {
    const ns = await freshNamespace('audit-race');
    const api = new KubeConfigApi(kubeConfig());
    const limits = { maxEntries: 3, maxBytes: 1 << 20, maxAgeMs: 50 };
    const a = new AuditWriter({ api, keys, log, limits });
    const b = new AuditWriter({ api, keys, log, limits });
    for (let i = 0; i < 30; i++) (i % 2 ? a : b).record(ns, 'bot', entry(i));
    await Promise.all([a.stop(), b.stop()]);
    const items = await records(api, ns);
    expect(requestIds(items)).toHaveLength(30);
    expect(new Set(requestIds(items)).size).toBe(30);
    expect(verifyChain(items.map((r) => ({ spec: r.spec }))).problems).toEqual([]);
  });

  it.each([
    ['the first record (head read from a list)', 0],
    ['a later record (cached head, caught up by name)', 1],
  ])('does not write a batch twice when the response to its create was lost: %s', async (_name, lost) => {
    const ns = await freshNamespace('audit-lost');
    const real = new KubeConfigApi(kubeConfig());
    let creates = 0;
    // The real API server, with one create's response lost after the record landed.
    const api: KubeApi = {
      watcher: real.watcher,
      async request<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
        const r = await real.request<T>(method, path, opts);
        if (method === 'POST' && creates++ === lost) throw new Error('socket hang up');
        return r;
      },
    };
    const w = new AuditWriter({ api, keys, log, limits: { maxEntries: 3, maxBytes: 1 << 20, maxAgeMs: 0 } });
    for (let i = 0; i < 6; i++) w.record(ns, 'bot', entry(i));
    await w.stop();
    const items = await records(real, ns);
    expect(requestIds(items)).toEqual(Array.from({ length: 6 }, (_, i) => `req-${i}`).sort());
    expect(items.map((r) => r.spec.sequence).sort()).toEqual([0, 1]);
    expect(verifyChain(items.map((r) => ({ spec: r.spec }))).problems).toEqual([]);
    expect(w.stats()).toMatchObject({ written: 6, records: 2, failures: 1, dropped: 0 });
  });

  it('rejects edits of a written record (immutable spec)', async () => {
    const ns = await freshNamespace('audit-immutable');
    const api = new KubeConfigApi(kubeConfig());
    const w = new AuditWriter({ api, keys, log });
    w.record(ns, 'bot', entry(1));
    await w.stop();
    const [r] = await records(api, ns);
    const path = `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}/${r?.metadata.name}`;
    await expect(
      api.request('PATCH', path, {
        body: { spec: { entries: [{ ...r?.spec.entries[0], decision: 'Deny' }] } },
        contentType: 'application/merge-patch+json',
      }),
    ).rejects.toThrow(/immutable/);
  });

  it('loses no entry across an API server outage', async () => {
    const cp = await startControlPlane();
    try {
      await installCrds(cp.kubeconfigPath);
      const kc = new KubeConfig();
      kc.loadFromFile(cp.kubeconfigPath);
      const api = new KubeConfigApi(kc);
      await api.request('POST', '/api/v1/namespaces', { body: { metadata: { name: 'outage' } } });
      const w = new AuditWriter({
        api,
        keys,
        log,
        limits: { maxEntries: 5, maxBytes: 1 << 20, maxAgeMs: 50 },
        flushIntervalMs: 50,
      });
      w.start();
      for (let i = 0; i < 10; i++) w.record('outage', 'bot', entry(i));
      await w.flush(true);
      await cp.stopApiServer();
      for (let i = 10; i < 25; i++) w.record('outage', 'bot', entry(i));
      await w.flush(true);
      expect(w.stats().failures).toBeGreaterThan(0);
      expect(w.stats().buffered).toBeGreaterThanOrEqual(15);
      await cp.startApiServer();
      await w.stop(30_000);
      const items = await records(api, 'outage');
      expect(requestIds(items)).toHaveLength(25);
      expect(new Set(requestIds(items)).size).toBe(25);
      expect(verifyChain(items.map((r) => ({ spec: r.spec }))).ok).toBe(true);
      expect(w.stats().dropped).toBe(0);
    } finally {
      await cp.stop();
    }
  });
});

describe('AuditWriter: acknowledged writes, idempotent by entry id', () => {
  const shipped = (source: string, from: number, to: number, pod = 'bot-0'): AuditEntry[] =>
    Array.from({ length: to - from + 1 }, (_, k) => ({
      ...entry(from + k),
      id: `${source}-${from + k}`,
      pod,
    }));
  const ids = (items: AuditRecord[]) =>
    items
      .sort((a, b) => a.spec.sequence - b.spec.sequence)
      .flatMap((r) => r.spec.entries.map((e) => e.id ?? ''));

  it('resolves only once the entries are in AuditRecords, without waiting for the flush interval', async () => {
    const ns = await freshNamespace('audit-ack');
    const api = new KubeConfigApi(kubeConfig());
    // A flush interval of 10 minutes: only the waiter makes the chain be written now.
    const w = new AuditWriter({
      api,
      keys,
      log,
      limits: { maxEntries: 200, maxBytes: 1 << 20, maxAgeMs: 600_000 },
    });
    await w.recordPersisted(ns, 'bot', shipped('00000000000000a1', 1, 30));
    expect(ids(await records(api, ns))).toEqual(
      Array.from({ length: 30 }, (_, i) => `00000000000000a1-${i + 1}`),
    );
    expect(w.stats()).toMatchObject({ written: 30, buffered: 0 });
  });

  it('writes a batch shipped again (to the same writer, before or after it was written) once', async () => {
    const ns = await freshNamespace('audit-idem');
    const api = new KubeConfigApi(kubeConfig());
    const w = new AuditWriter({
      api,
      keys,
      log,
      limits: { maxEntries: 7, maxBytes: 1 << 20, maxAgeMs: 600_000 },
    });
    const src = '00000000000000b2';
    // Shipped again while the first copy is still queued, then again with more after it was written.
    await Promise.all([
      w.recordPersisted(ns, 'bot', shipped(src, 1, 20)),
      w.recordPersisted(ns, 'bot', shipped(src, 1, 20)),
    ]);
    await w.recordPersisted(ns, 'bot', shipped(src, 1, 25));
    // Another broker process of the same pod, and the same source ids from another pod: both kept.
    await w.recordPersisted(ns, 'bot', [
      ...shipped('00000000000000c3', 1, 3),
      ...shipped(src, 1, 2, 'bot-1'),
    ]);
    const items = await records(api, ns);
    expect(ids(items)).toEqual([
      ...Array.from({ length: 25 }, (_, i) => `${src}-${i + 1}`),
      '00000000000000c3-1',
      '00000000000000c3-2',
      '00000000000000c3-3',
      `${src}-1`,
      `${src}-2`,
    ]);
    expect(verifyChain(items.map((r) => ({ name: r.metadata.name ?? '', spec: r.spec }))).problems).toEqual(
      [],
    );
  });

  it('a new writer (a restarted or new leader controller) continues the chain and does not write again what the old one wrote', async () => {
    const ns = await freshNamespace('audit-handover');
    const api = new KubeConfigApi(kubeConfig());
    const limits = { maxEntries: 10, maxBytes: 1 << 20, maxAgeMs: 600_000 };
    const src = '00000000000000d4';
    const old = new AuditWriter({ api, keys, log, limits });
    await old.recordPersisted(ns, 'bot', shipped(src, 1, 15));
    // The old writer is gone (its answer to the broker lost): the broker ships 1..15 again and more.
    const next = new AuditWriter({ api, keys, log, limits });
    await next.recordPersisted(ns, 'bot', shipped(src, 1, 18));
    const items = await records(api, ns);
    expect(ids(items)).toEqual(Array.from({ length: 18 }, (_, i) => `${src}-${i + 1}`));
    expect(verifyChain(items.map((r) => ({ name: r.metadata.name ?? '', spec: r.spec }))).problems).toEqual(
      [],
    );
    expect(next.stats().written).toBe(3);
  });

  it('two writers (replicas) given the same batch write it once', async () => {
    const ns = await freshNamespace('audit-idem-race');
    const api = new KubeConfigApi(kubeConfig());
    const limits = { maxEntries: 5, maxBytes: 1 << 20, maxAgeMs: 600_000 };
    const a = new AuditWriter({ api, keys, log, limits });
    const b = new AuditWriter({ api, keys, log, limits });
    const src = '00000000000000e5';
    await Promise.all([
      a.recordPersisted(ns, 'bot', shipped(src, 1, 23)),
      b.recordPersisted(ns, 'bot', shipped(src, 1, 23)),
    ]);
    const items = await records(api, ns);
    expect(ids(items)).toEqual(Array.from({ length: 23 }, (_, i) => `${src}-${i + 1}`));
    expect(verifyChain(items.map((r) => ({ name: r.metadata.name ?? '', spec: r.spec }))).problems).toEqual(
      [],
    );
  });
});

describe('AuditWriter: signed, anchored, never chaining onto a forgery', () => {
  const agentIdentity = (api: KubeConfigApi, ns: string, name = 'bot') =>
    api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AgentIdentity',
        metadata: { name },
        spec: { serviceAccountName: name },
      },
    });
  const head = async (api: KubeConfigApi, ns: string) =>
    (
      await api.request<AgentIdentity>(
        'GET',
        `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/bot`,
      )
    ).status?.audit?.head;
  /** What an attacker allowed to create AuditRecords appends: linked to the newest digest, unsigned. */
  const forge = (api: KubeConfigApi, ns: string, sequence: number, previousDigest: string) => {
    const spec = sealRecord({ agent: 'bot', sequence, previousDigest, entries: [entry(900 + sequence)] });
    return api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AuditRecord',
        metadata: { name: recordName('bot', sequence), labels: { [LABEL_AGENT]: 'bot' } },
        spec,
      },
    });
  };
  const trail = async (api: KubeConfigApi, ns: string) =>
    verifyTrail({
      namespace: ns,
      records: (await records(api, ns)).map((r) => ({
        name: r.metadata.name ?? '',
        spec: r.spec,
        createdAt: String(r.metadata.creationTimestamp),
      })),
      agents: { bot: { head: await head(api, ns) } },
      keys: keys.keySet(),
    });

  it('signs every record and anchors the newest one, signed, in status.audit.head', async () => {
    const ns = await freshNamespace('audit-anchor');
    const api = new KubeConfigApi(kubeConfig());
    await agentIdentity(api, ns);
    const w = new AuditWriter({ api, keys, log, limits: { maxEntries: 2, maxBytes: 1 << 20, maxAgeMs: 0 } });
    for (let i = 0; i < 6; i++) w.record(ns, 'bot', entry(i));
    await w.stop();
    const items = await records(api, ns);
    expect(items.map((r) => r.spec.signature?.keyId)).toEqual([1, 2, 3].map(() => keys.signingKey().kid));
    const anchored = await head(api, ns);
    expect(anchored).toMatchObject({
      sequence: 2,
      digest: items.find((r) => r.spec.sequence === 2)?.spec.digest,
    });
    expect((await keys.keySet().verifyHead(ns, 'bot', anchored ?? {})).ok).toBe(true);
    const v = await trail(api, ns);
    expect(v.problems).toEqual([]);
    expect(v.notes).toEqual([]);
  });

  it.each([
    ['a writer that knows the chain (its create meets the forgery: 409, walk)', true],
    ['a writer that starts on the forged chain (list, then walk)', false],
  ])('skips a forged record at the tail and reports it once: %s', async (_name, sameWriter) => {
    const ns = await freshNamespace('audit-forged');
    const api = new KubeConfigApi(kubeConfig());
    await agentIdentity(api, ns);
    const forged: Array<[string, string, string, string]> = [];
    const make = () =>
      new AuditWriter({
        api,
        keys,
        log,
        onForged: (n, a, r, why) => forged.push([n, a, r, why]),
        limits: { maxEntries: 1, maxBytes: 1 << 20, maxAgeMs: 0 },
      });
    const first = make();
    first.record(ns, 'bot', entry(0));
    first.record(ns, 'bot', entry(1));
    await first.flush(true);
    const newest = (await records(api, ns)).find((r) => r.spec.sequence === 1);
    await forge(api, ns, 2, newest?.spec.digest ?? '');
    const w = sameWriter ? first : make();
    w.record(ns, 'bot', entry(2));
    w.record(ns, 'bot', entry(3));
    await w.stop();
    if (!sameWriter) await first.stop();

    const items = await records(api, ns);
    const at = (s: number) => items.find((r) => r.spec.sequence === s)?.spec;
    // The writer went on from its own record 1, past the forged slot 2.
    expect(at(3)?.previousDigest).toBe(at(1)?.digest);
    expect(at(3)?.entries[0]?.requestId).toBe('req-2');
    expect(at(4)?.previousDigest).toBe(at(3)?.digest);
    expect(forged).toEqual([[ns, 'bot', recordName('bot', 2), 'the record is not signed']]);
    expect((await head(api, ns))?.sequence).toBe(4);
    const v = await trail(api, ns);
    expect(v.problems.map((p) => [p.kind, p.name])).toEqual([['forged', recordName('bot', 2)]]);
  });

  it('starts a chain whose first slot is forged at sequence 1, linked to GENESIS_DIGEST', async () => {
    const ns = await freshNamespace('audit-forged-start');
    const api = new KubeConfigApi(kubeConfig());
    await agentIdentity(api, ns);
    await forge(api, ns, 0, '');
    const w = new AuditWriter({ api, keys, log });
    w.record(ns, 'bot', entry(0));
    await w.stop();
    const mine = (await records(api, ns)).find((r) => r.spec.sequence === 1)?.spec;
    expect(mine?.previousDigest).toBe(GENESIS_DIGEST);
    expect((await trail(api, ns)).problems.map((p) => p.kind)).toEqual(['forged']);
  });

  it('continues from its anchored head when the newest records were deleted', async () => {
    const ns = await freshNamespace('audit-truncated');
    const api = new KubeConfigApi(kubeConfig());
    await agentIdentity(api, ns);
    const limits = { maxEntries: 1, maxBytes: 1 << 20, maxAgeMs: 0 };
    const first = new AuditWriter({ api, keys, log, limits });
    for (let i = 0; i < 4; i++) first.record(ns, 'bot', entry(i));
    await first.stop();
    const before = await records(api, ns);
    const digest3 = before.find((r) => r.spec.sequence === 3)?.spec.digest;
    for (const s of [2, 3]) {
      await api.request(
        'DELETE',
        `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}/${recordName('bot', s)}`,
      );
    }
    expect((await trail(api, ns)).problems.map((p) => p.kind)).toEqual(['truncated']);

    const next = new AuditWriter({ api, keys, log, limits });
    next.record(ns, 'bot', entry(4));
    await next.stop();
    const after = await records(api, ns);
    const mine = after.find((r) => r.spec.sequence === 4)?.spec;
    expect(mine?.previousDigest).toBe(digest3);
    // The deletion stays visible: now as a gap inside the chain.
    expect((await trail(api, ns)).problems.map((p) => p.kind)).toEqual(['gap']);
  });

  it('keeps the anchored head at the newest record when two writers race', async () => {
    const ns = await freshNamespace('audit-anchor-race');
    const api = new KubeConfigApi(kubeConfig());
    await agentIdentity(api, ns);
    const limits = { maxEntries: 2, maxBytes: 1 << 20, maxAgeMs: 0 };
    const a = new AuditWriter({ api, keys, log, limits });
    const b = new AuditWriter({ api, keys, log, limits });
    for (let i = 0; i < 20; i++) (i % 2 ? a : b).record(ns, 'bot', entry(i));
    await Promise.all([a.stop(), b.stop()]);
    const newest = Math.max(...(await records(api, ns)).map((r) => r.spec.sequence));
    expect((await head(api, ns))?.sequence).toBe(newest);
    expect((await trail(api, ns)).problems).toEqual([]);
  });
});
