import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../authority/audit.js';
import { toEntry } from './sink.js';

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
      kind: 'Decision',
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
      kind: 'Stream',
      decision: 'Deny',
      error: 'invalid_token',
      reasons: undefined,
    });
    expect(e).toMatchObject({ kind: 'Session', message: 'invalid_token' });
    expect(e.policy).toBeUndefined();
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
