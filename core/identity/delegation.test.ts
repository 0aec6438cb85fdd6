import { describe, expect, it } from 'vitest';
import { MAX_CHAIN_DEPTH } from '../constants.js';
import { agentSubject, delegation, inboundDelegation } from './agent.js';
import { NO_USER } from './user.js';

const ALICE = { ...NO_USER, present: true, sub: 'alice', issuer: 'https://idp.example' };
const A = { namespace: 'ns', name: 'planner' };
const B = { namespace: 'ns', name: 'researcher' };
const C = { namespace: 'other', name: 'writer' };
const sub = (a: { namespace: string; name: string }) => agentSubject(a.namespace, a.name);

describe('delegation: nested act claims (RFC 8693 §4.1)', () => {
  it('nests the prior agents under the current one, the human as subject', () => {
    expect(delegation(C, ALICE, [A, B])).toEqual({
      sub: 'alice',
      act: { sub: sub(C), act: { sub: sub(B), act: { sub: sub(A) } } },
      userIssuer: ALICE.issuer,
    });
  });

  it('makes the origin agent the subject when no human is involved', () => {
    expect(delegation(B, NO_USER, [A])).toEqual({ sub: sub(A), act: { sub: sub(B) } });
    expect(delegation(C, NO_USER, [A, B])).toEqual({
      sub: sub(A),
      act: { sub: sub(C), act: { sub: sub(B) } },
    });
  });

  it('is unchanged for a call no agent delegated', () => {
    expect(delegation(A, ALICE, [])).toEqual({
      sub: 'alice',
      act: { sub: sub(A) },
      userIssuer: ALICE.issuer,
    });
    expect(delegation(A, NO_USER)).toEqual({ sub: sub(A) });
  });
});

describe('inboundDelegation: the chain of a verified Warden token', () => {
  it('reads the human and the agents, origin first', () => {
    expect(inboundDelegation({ sub: 'alice', act: { sub: sub(B), act: { sub: sub(A) } } })).toEqual({
      ok: true,
      userSub: 'alice',
      prior: [A, B],
    });
  });

  it('reads an agent acting alone at the origin as the first agent, with no human', () => {
    expect(inboundDelegation({ sub: sub(A) })).toEqual({ ok: true, userSub: null, prior: [A] });
    expect(inboundDelegation({ sub: sub(A), act: { sub: sub(B) } })).toEqual({
      ok: true,
      userSub: null,
      prior: [A, B],
    });
  });

  it('round-trips what delegation() mints', () => {
    const minted = delegation(C, ALICE, [A, B]);
    expect(inboundDelegation(minted)).toEqual({ ok: true, userSub: 'alice', prior: [A, B, C] });
    const alone = delegation(C, NO_USER, [A, B]);
    expect(inboundDelegation(alone)).toEqual({ ok: true, userSub: null, prior: [A, B, C] });
  });

  const nested = (n: number) => {
    let act: Record<string, unknown> | undefined;
    for (let i = 0; i < n; i++) act = { sub: agentSubject('ns', `agent-${i}`), ...(act ? { act } : {}) };
    return act;
  };

  it(`accepts a chain of ${MAX_CHAIN_DEPTH} agents with the receiving one, refuses one more`, () => {
    const atLimit = inboundDelegation({ sub: 'alice', act: nested(MAX_CHAIN_DEPTH - 1) });
    expect(atLimit.ok && atLimit.prior.length).toBe(MAX_CHAIN_DEPTH - 1);
    const deeper = inboundDelegation({ sub: 'alice', act: nested(MAX_CHAIN_DEPTH) });
    expect(deeper).toEqual({
      ok: false,
      message: `the delegation chain would be more than ${MAX_CHAIN_DEPTH} agents deep with this agent (Warden's limit); shorten the chain of agents calling agents`,
    });
    // An agent origin counts as one of the chain.
    expect(inboundDelegation({ sub: sub(A), act: nested(MAX_CHAIN_DEPTH - 1) }).ok).toBe(false);
    // A very deep nesting is not walked to the end.
    expect(inboundDelegation({ sub: 'alice', act: nested(500) }).ok).toBe(false);
  });

  it.each([
    [
      'act is not an object',
      { sub: 'alice', act: 'x' },
      'the act claim must be an object {sub, act?} (RFC 8693 §4.1)',
    ],
    ['act is a list', { sub: 'alice', act: [{ sub: sub(A) }] }, 'the act claim must be an object'],
    [
      'an actor that is not a Warden agent',
      { sub: 'alice', act: { sub: sub(B), act: { sub: 'system:serviceaccount:ns:x' } } },
      'act.sub at depth 2 is not a Warden agent (expected system:warden:agent:<namespace>:<name>)',
    ],
    ['no sub', { act: { sub: sub(A) } }, 'the token has no sub claim'],
    ['no agent at all', { sub: 'alice' }, 'the token names no agent (no act claim and sub is not an agent)'],
  ])('refuses %s', (_name, claims, message) => {
    const r = inboundDelegation(claims);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toContain(message);
  });
});
