import { describe, expect, it } from 'vitest';
import { credentialFor, toJsonValue } from './credential.js';
import { decide } from './decide.js';
import { buildPolicySet } from './policy-set.js';
import { ALICE, allowPolicy, mcpCall } from './testing.js';

const agent = { name: 'support-bot', namespace: 'agents' };

describe('credentialFor', () => {
  const withCredential = allowPolicy('jira', {
    targets: ['jira'],
    tools: ['jira.get_*'],
    credential: {
      ttl: '5m',
      scopes: ['read'],
      claims: {
        ticket: 'context.ticketId',
        actor: "user.present ? user.sub : 'agent'",
        step: 'context.chainStep + 1',
      },
    },
  });
  const set = buildPolicySet([withCredential, allowPolicy('plain', { targets: ['github'] })], agent);

  it('evaluates the claims of the deciding rule', () => {
    const input = mcpCall('jira.get_issue', { user: ALICE, context: { ticketId: 'SUP-7', chainStep: 2 } });
    const result = credentialFor(set, decide(set, input), input);
    expect(result).toEqual({
      ok: true,
      credential: { ttl: '5m', scopes: ['read'], claims: { ticket: 'SUP-7', actor: 'alice', step: 3 } },
    });
  });

  it('returns null for a rule without a credential block', () => {
    const input = mcpCall('x', { target: 'github' });
    expect(credentialFor(set, decide(set, input), input)).toEqual({ ok: true, credential: null });
  });

  it('refuses when a claim cannot be evaluated', () => {
    const input = mcpCall('jira.get_issue', { user: ALICE });
    const result = credentialFor(set, decide(set, input), input);
    expect(result).toMatchObject({ ok: false });
    if (!result.ok)
      expect(result.message).toContain(
        "claim 'ticket' of AccessPolicy agents/jira rule 0 could not be evaluated",
      );
  });

  it('refuses for a denied request', () => {
    const input = mcpCall('jira.delete', {});
    expect(credentialFor(set, decide(set, input), input).ok).toBe(false);
  });
});

describe('toJsonValue', () => {
  it.each([
    ['int', 3n, 3],
    ['huge int', 2n ** 70n, (2n ** 70n).toString()],
    ['timestamp', new Date('2026-01-05T10:00:00Z'), '2026-01-05T10:00:00.000Z'],
    ['map', new Map([['a', [1n]]]), { a: [1] }],
    ['string', 's', 's'],
  ])('%s', (_name, value, expected) => {
    expect(toJsonValue(value)).toEqual(expected);
  });
});
