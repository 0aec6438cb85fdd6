import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../authority/audit.js';
import type { KubeApi } from '../kube/kube.js';
import type { AuditLine } from './export.js';
import { StaticAuditKeys } from './keyset.js';
import { TrailAuditSink, toEntry } from './sink.js';
import { AuditWriter } from './writer.js';

const base: AuditEvent = {
  time: '2026-11-29T12:00:00.000Z',
  kind: 'Decision',
  decision: 'Deny',
  endpoint: '/v1/credentials',
  source: '10.0.0.7',
  namespace: 'agents',
  agent: 'support-bot',
  pod: 'support-bot-0',
  user: 'agent acting alone',
  target: 'jira',
  tool: 'jira.delete_issue',
  requestId: 'r-1',
  reasons: [
    { policy: 'agents/deny-deletes', rule: 0, condition: 'no-deletes', message: 'deletes are not allowed' },
  ],
};

describe('toEntry', () => {
  it('keeps what an auditor needs and names the deciding policy', () => {
    expect(toEntry(base)).toEqual({
      time: base.time,
      kind: 'Credential',
      decision: 'Deny',
      pod: 'support-bot-0',
      user: 'agent acting alone',
      target: 'jira',
      tool: 'jira.delete_issue',
      requestId: 'r-1',
      policy: 'agents/deny-deletes',
      reasons: [
        {
          policy: 'agents/deny-deletes',
          rule: 0,
          condition: 'no-deletes',
          message: 'deletes are not allowed',
        },
      ],
    });
  });

  it('leaves out transport details and the audit-only detail field', () => {
    const e = toEntry({ ...base, detail: 'apiserver said: token invalid', source: '1.2.3.4' });
    expect(JSON.stringify(e)).not.toMatch(/apiserver said|1\.2\.3\.4|\/v1\/credentials/);
  });

  it('maps stream events to Session entries and uses the OAuth error as the message', () => {
    const e = toEntry({
      ...base,
      endpoint: '/v1/stream',
      kind: 'Stream',
      decision: 'Deny',
      error: 'invalid_token',
      reasons: undefined,
    });
    expect(e).toMatchObject({ kind: 'Session', message: 'invalid_token' });
    expect(e.policy).toBeUndefined();
  });

  it('leaves out a rule index outside the schema (a decision no rule made, reported as -1)', () => {
    const reason = { policy: '', rule: -1, message: 'AgentIdentity agents/bot is suspended' };
    const [r] = toEntry({ ...base, reasons: [reason] }).reasons ?? [];
    expect(r).toEqual({ policy: '', message: reason.message });
    expect(toEntry({ ...base, reasons: [{ ...reason, rule: 64 }] }).reasons?.[0]).not.toHaveProperty('rule');
    expect(toEntry({ ...base, reasons: [{ ...reason, rule: 0 }] }).reasons?.[0]?.rule).toBe(0);
  });

  it('clips oversized fields to the AuditRecord schema limits', () => {
    const e = toEntry({
      ...base,
      tool: 't'.repeat(10_000),
      message: 'm'.repeat(10_000),
      reasons: Array(40).fill(base.reasons?.[0]),
    });
    expect(e.tool).toHaveLength(256);
    expect(e.message).toHaveLength(1024);
    expect(e.reasons).toHaveLength(16);
  });
});

describe('TrailAuditSink', () => {
  // The writer only queues here (never started, never flushed): no API call is made.
  const unusedApi: KubeApi = {
    request: () => Promise.reject(new Error('not called')),
    watcher: { watch: () => Promise.reject(new Error('not called')) },
  };
  const make = () => {
    const writer = new AuditWriter({
      api: unusedApi,
      log: pino({ level: 'silent' }),
      keys: StaticAuditKeys.generate(),
    });
    const lines: AuditLine[] = [];
    const sink = new TrailAuditSink(writer, [{ export: (l) => lines.push(l) }]);
    return { writer, sink, lines };
  };

  it('admits no broker event, and exports none, while it cannot read the chain it meets first', async () => {
    const { writer, sink, lines } = make();
    const who = { namespace: 'agents', agent: 'bot', pod: 'bot-0', podUID: 'u', session: 's' };
    const entry = { time: base.time, kind: 'Decision' as const, decision: 'Allow' as const, pod: 'bot-0' };
    // The writer must learn what the chain holds before it can say what is new: the API refuses,
    // so the batch is refused (the endpoint answers 503 and the broker keeps it).
    await expect(
      sink.admitBrokerEvents(who, [{ entry: { ...entry, id: '00000000000000a1-1' } }], { resent: false }),
    ).rejects.toThrow('not called');
    expect(lines).toEqual([]);
    expect(writer.stats().buffered).toBe(0);
  });

  it('exports controller entries and authority events, saying which are in the trail', () => {
    const { sink, lines } = make();
    sink.recordEntry('agents', 'bot', { time: base.time, kind: 'Suspension', message: 'suspended by alice' });
    sink.record({ ...base, agent: undefined });
    sink.record({ ...base, kind: 'Session', decision: 'Allow', endpoint: '/v1/audit' });
    expect(lines.map((l) => [l.source, l.kind, l.agent, l.trail])).toEqual([
      ['controller', 'Suspension', 'bot', true],
      ['authority', 'Credential', undefined, false],
      ['authority', 'Session', base.agent, false],
    ]);
    expect(lines[1]?.endpoint).toBe(base.endpoint);
  });

  it('writes an entry at once when its answer waits for it (an issuance), and a controller entry at once', async () => {
    const settle = async (done: () => boolean) => {
      for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setImmediate(r));
    };
    // Buffered: no write is attempted before the flush interval (the writer is not started).
    const queued = make();
    expect(queued.sink.record({ ...base, decision: 'Allow' })).toBeUndefined();
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(queued.writer.stats()).toMatchObject({ buffered: 1, failures: 0 });
    // Persisted: a promise, and the write starts now (the API here refuses, so it fails and stays queued).
    const issuance = make();
    void issuance.sink.persist({ ...base, decision: 'Allow' });
    await settle(() => issuance.writer.stats().failures > 0);
    expect(issuance.writer.stats()).toMatchObject({ buffered: 1, failures: 1, written: 0 });
    // An event of no chain (no attributable agent) is exported only: nothing to wait for.
    await expect(issuance.sink.persist({ ...base, agent: undefined })).resolves.toBe(true);
    const controller = make();
    controller.sink.recordEntry('agents', 'bot', { time: base.time, kind: 'Suspension', message: 'x' });
    await settle(() => controller.writer.stats().failures > 0);
    expect(controller.writer.stats()).toMatchObject({ buffered: 1, failures: 1 });
  });

  it('does not add an entry for the /v1/audit shipping request itself', () => {
    const { writer, sink } = make();
    sink.record({ ...base, kind: 'Session', decision: 'Allow', endpoint: '/v1/audit' });
    expect(writer.stats().buffered).toBe(0);
  });

  it('keeps a refused /v1/audit request (someone shipping without a valid session)', () => {
    const { writer, sink } = make();
    sink.record({
      ...base,
      kind: 'Session',
      decision: 'Deny',
      endpoint: '/v1/audit',
      error: 'invalid_token',
    });
    expect(writer.stats().buffered).toBe(1);
  });

  it('leaves events without an agent log-only', () => {
    const { writer, sink } = make();
    sink.record({ ...base, agent: undefined });
    expect(writer.stats().buffered).toBe(0);
  });
});
