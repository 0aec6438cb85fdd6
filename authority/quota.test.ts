import { describe, expect, it } from 'vitest';
import { compileAccessPolicy } from '../core/policy/compile.js';
import type { CompiledPolicy } from '../core/policy/compiled.js';
import { buildPolicySet } from '../core/policy/policy-set.js';
import type { AccessPolicySpecLike } from '../core/policy/types.js';
import { bucketKey, findLimit, leaseSize, QuotaLedger } from './quota.js';

describe('leaseSize', () => {
  it.each([
    [1, 1],
    [9, 1],
    [50, 5],
    [600, 60],
    [1_000_000, 100],
  ])('%i calls → leases of %i', (calls, size) => {
    expect(leaseSize(calls)).toBe(size);
  });
});

describe('bucketKey', () => {
  const at = (per: 'agent' | 'user' | 'agent+user', user?: string) =>
    bucketKey('agents', 'bot', 'agents/p', 0, { index: 1, per }, user);
  it('counts per agent regardless of the user', () => {
    expect(at('agent', 'alice')).toBe(at('agent', 'bob'));
    expect(at('agent')).not.toBe(
      bucketKey('agents', 'other', 'agents/p', 0, { index: 1, per: 'agent' }, undefined),
    );
  });
  it('counts per user across agents, calls without a user together', () => {
    expect(at('user', 'alice')).toBe(
      bucketKey('agents', 'other', 'agents/p', 0, { index: 1, per: 'user' }, 'alice'),
    );
    expect(at('user', 'alice')).not.toBe(at('user', 'bob'));
    expect(at('user')).toBe(at('user', undefined));
  });
  it('counts per agent and user pair', () => {
    expect(at('agent+user', 'alice')).not.toBe(at('agent+user', 'bob'));
    expect(at('agent+user', 'alice')).not.toBe(
      bucketKey('agents', 'other', 'agents/p', 0, { index: 1, per: 'agent+user' }, 'alice'),
    );
  });
  it('keeps limits of different rules and indexes apart', () => {
    expect(bucketKey('a', 'b', 'a/p', 0, { index: 0, per: 'agent' }, undefined)).not.toBe(
      bucketKey('a', 'b', 'a/p', 1, { index: 0, per: 'agent' }, undefined),
    );
  });
});

describe('QuotaLedger', () => {
  const T0 = 1_700_000_020_000; // 40 s into a minute
  it('never grants more than the limit in one window, in leases of at most leaseSize', () => {
    const ledger = new QuotaLedger(() => T0);
    const grants: number[] = [];
    for (let i = 0; i < 20; i++) grants.push(ledger.lease('k', 23, 60_000).granted);
    expect(grants.slice(0, 12)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]);
    expect(grants.reduce((a, b) => a + b, 0)).toBe(23);
    expect(ledger.lease('k', 23, 60_000)).toEqual({ granted: 0, resetInMs: 20_000 });
  });

  it('starts afresh in the next window, and says when the current one ends', () => {
    let now = T0;
    const ledger = new QuotaLedger(() => now);
    for (let i = 0; i < 10; i++) ledger.lease('k', 1, 60_000);
    expect(ledger.lease('k', 1, 60_000)).toEqual({ granted: 0, resetInMs: 20_000 });
    now = T0 + 20_000;
    expect(ledger.lease('k', 1, 60_000)).toEqual({ granted: 1, resetInMs: 60_000 });
  });

  it('refuses (never forgets a live count) when full, after sweeping ended windows', () => {
    let now = T0;
    const ledger = new QuotaLedger(() => now, 2);
    ledger.lease('a', 10, 60_000);
    ledger.lease('b', 10, 60_000);
    expect(ledger.lease('c', 10, 60_000).granted).toBe(0);
    expect(ledger.refusedFull).toBe(1);
    expect(ledger.lease('a', 10, 60_000).granted).toBe(1); // a known key still counts
    now = T0 + 60_000;
    expect(ledger.lease('c', 10, 60_000).granted).toBe(1); // ended windows swept
  });
});

describe('findLimit', () => {
  const compile = (name: string, spec: AccessPolicySpecLike): CompiledPolicy => {
    const r = compileAccessPolicy({ namespace: 'agents', name, spec });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.compiled;
  };
  const limited = compile('limited', {
    agentSelector: { names: ['bot'] },
    rules: [{ targets: ['api'], limits: [{ per: 'agent', calls: 5, window: '1m' }] }],
  });
  const other = compile('other', {
    agentSelector: { names: ['someone-else'] },
    rules: [{ targets: ['api'], limits: [{ per: 'agent', calls: 5, window: '1m' }] }],
  });
  const set = buildPolicySet([limited, other], { name: 'bot', namespace: 'agents', labels: {} });

  it('finds a limit of an Allow rule selecting the agent', () => {
    expect(findLimit(set, 'agents/limited', 0, 0)).toMatchObject({ calls: 5, windowMs: 60_000 });
  });
  it('does not find limits of policies that do not select the agent, or that do not exist', () => {
    expect(findLimit(set, 'agents/other', 0, 0)).toBeUndefined();
    expect(findLimit(set, 'agents/limited', 1, 0)).toBeUndefined();
    expect(findLimit(set, 'agents/limited', 0, 1)).toBeUndefined();
    expect(findLimit(null, 'agents/limited', 0, 0)).toBeUndefined();
  });
});
