/**
 * The AuditRecord writer against the real API server: every entry lands exactly once
 * in a verifiable chain, also with two writers racing on one chain and across an API
 * server outage.
 */
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditRecord } from '../core/api/index.js';
import { verifyChain } from '../core/audit/chain.js';
import { API_VERSION, PLURAL } from '../core/constants.js';
import { installCrds } from '../e2e/harness/crds.js';
import { freshNamespace, kubeConfig, startControlPlane } from '../e2e/harness/index.js';
import { type KubeApi, KubeConfigApi, type ObjectList, type RequestOptions } from '../kube/kube.js';
import { createMetrics } from '../observability/metrics.js';
import { AuditWriter } from './writer.js';

const log = pino({ level: 'silent' });
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
    const w = new AuditWriter({ api, log, limits: { maxEntries: 7, maxBytes: 1 << 20, maxAgeMs: 100 } });
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
    const w = new AuditWriter({ api, log, limits: { maxEntries: 7, maxBytes: 1 << 20, maxAgeMs: 600_000 } });
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
      log,
      onDropped: (n, a, c) => droppedFor.push([n, a, c]),
      limits: { maxEntries: 1, maxBytes: 1 << 20, maxAgeMs: 600_000 },
    });
    w.record(ns, 'bot', entry(0));
    // A rule index outside the schema's 0..63: the API server answers 422 for this record.
    w.record(ns, 'bot', { ...entry(1), reasons: [{ rule: -1, message: 'x' }] });
    w.record(ns, 'bot', entry(2));
    await w.stop();
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
    const a = new AuditWriter({ api, log, limits });
    const b = new AuditWriter({ api, log, limits });
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
    const w = new AuditWriter({ api, log, limits: { maxEntries: 3, maxBytes: 1 << 20, maxAgeMs: 0 } });
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
    const w = new AuditWriter({ api, log });
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
