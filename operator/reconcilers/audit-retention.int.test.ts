/**
 * Audit retention against the real API server: an agent's old AuditRecords are pruned, the cut is
 * recorded on the AgentIdentity first, and the remaining chain still verifies with it.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { StaticAuditKeys } from '../../audit/keyset.js';
import { AuditWriter } from '../../audit/writer.js';
import { verifyRecords } from '../../cli/audit-view.js';
import type { AgentIdentity, AuditEntry, AuditRecord } from '../../core/api/index.js';
import { parsePrunedThrough } from '../../core/audit/chain.js';
import { API_VERSION, PLURAL } from '../../core/constants.js';
import { freshNamespace, kubeConfig } from '../../e2e/harness/index.js';
import { realClock } from '../../kube/clock.js';
import type { Informer } from '../../kube/informer.js';
import { KubeConfigApi, type ObjectList } from '../../kube/kube.js';
import { prunedThroughOf, reconcileAuditRetention } from './audit-retention.js';

const DAY = 86_400_000;
const log = pino({ level: 'silent' });

describe('audit retention', () => {
  it('prunes the old prefix of a chain, records the cut first, and the rest still verifies', async () => {
    const ns = await freshNamespace('audit-retention');
    const api = new KubeConfigApi(kubeConfig());
    const base = `/apis/${API_VERSION}/namespaces/${ns}`;
    await api.request('POST', `${base}/${PLURAL.AgentIdentity}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AgentIdentity',
        metadata: { name: 'bot' },
        spec: { serviceAccountName: 'bot' },
      },
    });
    // Five records of one entry each: 10, 9, 8 days old, then two from now.
    const writer = new AuditWriter({
      api,
      log,
      keys: StaticAuditKeys.generate(),
      limits: { maxEntries: 1, maxBytes: 1 << 20, maxAgeMs: 0 },
    });
    const at = (msAgo: number, i: number): AuditEntry => ({
      time: new Date(Date.now() - msAgo).toISOString(),
      kind: 'Decision',
      decision: 'Allow',
      requestId: `r-${i}`,
    });
    for (const [i, ago] of [10 * DAY, 9 * DAY, 8 * DAY, 0, 0].entries()) {
      writer.record(ns, 'bot', at(ago, i));
      await writer.flush(true);
    }
    expect(writer.stats().records).toBe(5);

    const agent = async () => api.request<AgentIdentity>('GET', `${base}/${PLURAL.AgentIdentity}/bot`);
    // Only get() is used by the reconciler; a live read stands in for the informer cache.
    let cached = await agent();
    const agents = { get: () => cached } as unknown as Informer<AgentIdentity>;
    const reconcile = reconcileAuditRetention({
      agents,
      api,
      clock: realClock,
      retentionMs: 7 * DAY,
      intervalMs: 0,
    });
    const ctx = { signal: new AbortController().signal, logger: log };
    const result = await reconcile({ namespace: ns, name: 'bot' }, ctx);
    expect(result).toEqual({ requeueAfter: 0 });

    const left = (await api.request<ObjectList<AuditRecord>>('GET', `${base}/${PLURAL.AuditRecord}`)).items;
    expect(left.map((r) => r.spec.sequence).sort()).toEqual([3, 4]);
    cached = await agent();
    const cut = parsePrunedThrough(prunedThroughOf(cached));
    expect(cut?.sequence).toBe(2);
    expect(verifyRecords(left, { bot: cut! }).ok).toBe(true);
    // Without the cut, the same chain looks tampered with.
    expect(verifyRecords(left, {}).ok).toBe(false);

    // Idempotent: nothing more is old enough; the newest record is never pruned.
    await reconcile({ namespace: ns, name: 'bot' }, ctx);
    expect(
      (await api.request<ObjectList<AuditRecord>>('GET', `${base}/${PLURAL.AuditRecord}`)).items,
    ).toHaveLength(2);
    // The writer continues the chain after pruning.
    writer.record(ns, 'bot', at(0, 5));
    await writer.flush(true);
    const all = (await api.request<ObjectList<AuditRecord>>('GET', `${base}/${PLURAL.AuditRecord}`)).items;
    expect(verifyRecords(all, { bot: cut! }).ok).toBe(true);
    await writer.stop();
  });
});
