/**
 * One delivery per broker entry (docs/faults.md, "One delivery per entry"), against the real API
 * server: the trail (TrailAuditSink over the AuditWriter) admits a shipped batch once per entry id,
 * so a batch shipped again is written once, exported once and handed to the counters once — on the
 * same controller, on another replica, and on a new leader after a crash. The one window left (a
 * process that exported and died before persisting) is shown too: exported again, same id.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditRecord } from '../core/api/index.js';
import { verifyChain } from '../core/audit/chain.js';
import { API_VERSION, PLURAL } from '../core/constants.js';
import type { AuditSubject, BrokerEvent } from '../core/ports/audit.js';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { type KubeApi, KubeConfigApi, type ObjectList, type RequestOptions } from '../kube/kube.js';
import type { AuditLine } from './export.js';
import { StaticAuditKeys } from './keyset.js';
import { TrailAuditSink } from './sink.js';
import { AuditWriter } from './writer.js';

const log = pino({ level: 'silent' });
const keys = StaticAuditKeys.generate();
const limits = { maxEntries: 10, maxBytes: 1 << 20, maxAgeMs: 600_000 };

const events = (source: string, from: number, to: number): BrokerEvent[] =>
  Array.from({ length: to - from + 1 }, (_, k) => ({
    entry: {
      time: new Date(Date.UTC(2026, 11, 4, 12, 0, 0, from + k)).toISOString(),
      kind: 'Decision',
      decision: (from + k) % 4 === 0 ? 'Deny' : 'Allow',
      user: 'agent acting alone',
      tool: 'jira.get_issue',
      requestId: `req-${from + k}`,
      id: `${source}-${from + k}`,
      pod: 'bot-0',
    } satisfies AuditEntry,
    ...((from + k) % 4 === 0 ? { reason: 'NoMatchingAllow' } : {}),
  }));
const range = (source: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, k) => `${source}-${from + k}`);

/** One controller process: its writer, its trail and what it exported. */
function controller(api: KubeApi) {
  const writer = new AuditWriter({ api, keys, log, limits });
  const lines: AuditLine[] = [];
  const trail = new TrailAuditSink(writer, [{ export: (l) => lines.push(l) }]);
  return { writer, trail, lines, exported: () => lines.map((l) => l.id) };
}

async function recordIds(api: KubeApi, ns: string): Promise<string[]> {
  const list = await api.request<ObjectList<AuditRecord>>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
  );
  const items = list.items.sort((a, b) => a.spec.sequence - b.spec.sequence);
  expect(verifyChain(items.map((r) => ({ name: r.metadata.name ?? '', spec: r.spec }))).problems).toEqual([]);
  return items.flatMap((r) => r.spec.entries.map((e) => e.id ?? ''));
}

const ids = (batch: readonly BrokerEvent[]) => batch.map((e) => e.entry.id);

describe('one delivery per broker entry', () => {
  it('a batch shipped again to the same controller, while written and after, is written, exported and counted once', async () => {
    const ns = await freshNamespace('audit-delivery');
    const api = new KubeConfigApi(kubeConfig());
    const c = controller(api);
    const who: AuditSubject = { namespace: ns, agent: 'bot', pod: 'bot-0', podUID: 'u-1', session: 's-1' };
    const src = '00000000000000a1';
    // The broker's answer came too late (503): it ships the same 20 again while they are written.
    const [first, again] = await Promise.all([
      c.trail.admitBrokerEvents(who, events(src, 1, 20), { resent: false }),
      c.trail.admitBrokerEvents(who, events(src, 1, 20), { resent: true }),
    ]);
    expect(ids(first.fresh)).toEqual(range(src, 1, 20));
    expect(again.fresh).toEqual([]);
    await Promise.all([first.persisted, again.persisted]);
    // Shipped once more after they were persisted, with five new ones behind them.
    const later = await c.trail.admitBrokerEvents(who, events(src, 1, 25), { resent: true });
    expect(ids(later.fresh)).toEqual(range(src, 21, 25));
    await later.persisted;

    expect(c.exported()).toEqual(range(src, 1, 25));
    expect(await recordIds(api, ns)).toEqual(range(src, 1, 25));
    expect(c.writer.admittedUnpersisted).toBe(0);
    // The line names who shipped it and carries the broker's reason.
    expect(c.lines[3]).toMatchObject({
      schema: 'warden.audit/v1',
      id: `${src}-4`,
      source: 'broker',
      kind: 'Decision',
      decision: 'Deny',
      namespace: ns,
      agent: 'bot',
      pod: 'bot-0',
      podUID: 'u-1',
      session: 's-1',
      reason: 'NoMatchingAllow',
      trail: true,
    });
  });

  it('a new leader exports and counts nothing its predecessor persisted', async () => {
    const ns = await freshNamespace('audit-delivery-leader');
    const api = new KubeConfigApi(kubeConfig());
    const who: AuditSubject = { namespace: ns, agent: 'bot', pod: 'bot-0', podUID: 'u-1', session: 's-1' };
    const src = '00000000000000b2';
    const old = controller(api);
    await (await old.trail.admitBrokerEvents(who, events(src, 1, 15), { resent: false })).persisted;
    // The old leader is killed before the broker hears its answer: the broker ships 1..15 again,
    // with three more, to the new leader.
    const next = controller(api);
    const admitted = await next.trail.admitBrokerEvents(who, events(src, 1, 18), { resent: true });
    expect(ids(admitted.fresh)).toEqual(range(src, 16, 18));
    await admitted.persisted;
    expect(old.exported()).toEqual(range(src, 1, 15));
    expect(next.exported()).toEqual(range(src, 16, 18));
    expect(await recordIds(api, ns)).toEqual(range(src, 1, 18));
  });

  it('a replica that met the chain earlier reads what another wrote since when the broker ships again', async () => {
    const ns = await freshNamespace('audit-delivery-replica');
    const api = new KubeConfigApi(kubeConfig());
    const who: AuditSubject = { namespace: ns, agent: 'bot', pod: 'bot-0', podUID: 'u-1', session: 's-1' };
    const a = controller(api);
    const b = controller(api);
    // B met the chain (another broker process of the pod), then A wrote 1..10 of this one.
    await (await b.trail.admitBrokerEvents(who, events('00000000000000c3', 1, 2), { resent: false }))
      .persisted;
    const src = '00000000000000d4';
    await (await a.trail.admitBrokerEvents(who, events(src, 1, 10), { resent: false })).persisted;
    // A's answer was lost; the broker's retry reaches B.
    const retry = await b.trail.admitBrokerEvents(who, events(src, 1, 12), { resent: true });
    expect(ids(retry.fresh)).toEqual(range(src, 11, 12));
    await retry.persisted;
    expect(a.exported()).toEqual(range(src, 1, 10));
    expect(b.exported()).toEqual([...range('00000000000000c3', 1, 2), ...range(src, 11, 12)]);
    expect(await recordIds(api, ns)).toEqual([...range('00000000000000c3', 1, 2), ...range(src, 1, 12)]);
  });

  it('the remaining window: a leader that exported and died before persisting — the new one exports again, with the same ids, and writes once', async () => {
    const ns = await freshNamespace('audit-delivery-window');
    const real = new KubeConfigApi(kubeConfig());
    const who: AuditSubject = { namespace: ns, agent: 'bot', pod: 'bot-0', podUID: 'u-1', session: 's-1' };
    const src = '00000000000000e5';
    // The old leader's record creates never reach the API server (it is being killed).
    const dying: KubeApi = {
      watcher: real.watcher,
      request: <T>(method: string, path: string, opts?: RequestOptions): Promise<T> =>
        method === 'POST'
          ? Promise.reject(new Error('connection reset'))
          : real.request<T>(method, path, opts),
    };
    const old = controller(dying);
    const first = await old.trail.admitBrokerEvents(who, events(src, 1, 5), { resent: false });
    expect(ids(first.fresh)).toEqual(range(src, 1, 5));
    const next = controller(real);
    const again = await next.trail.admitBrokerEvents(who, events(src, 1, 5), { resent: true });
    await again.persisted;
    expect(old.exported()).toEqual(range(src, 1, 5));
    expect(next.exported()).toEqual(range(src, 1, 5));
    expect(await recordIds(real, ns)).toEqual(range(src, 1, 5));
  });
});
