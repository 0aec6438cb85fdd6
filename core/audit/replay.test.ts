import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../api/index.js';
import { auditReplaySchema } from '../api/schemas.js';
import { decide } from '../policy/decide.js';
import { buildPolicySet } from '../policy/policy-set.js';
import { ALICE, compiled, MONDAY_10_UTC, when } from '../policy/testing.js';
import {
  REPLAY_ARGS_MAX_BYTES,
  REPLAY_CLAIMS_MAX_BYTES,
  REPLAY_MAX_BYTES,
  REPLAY_MAX_WITHHELD,
  REPLAY_REDACTED,
  REPLAY_TRUNCATED,
  recordReplay,
  replayInputOf,
} from './replay.js';
import { isSecretFieldName, looksLikeSecret, SECRET_FIELD_NAMES } from './secret-values.js';

const ALLOWED = { decision: 'Allow', reason: 'Allowed' } as const;
const JWT =
  'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTc2NzIyNTYwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

function entryWith(replay: AuditEntry['replay'], extra: Partial<AuditEntry> = {}): AuditEntry {
  return {
    time: MONDAY_10_UTC.toISOString(),
    kind: 'Decision',
    decision: replay?.policyDecision ?? 'Allow',
    target: 'jira',
    tool: 'jira.create_issue',
    ...(replay ? { replay } : {}),
    ...extra,
  };
}

describe('secret-values', () => {
  it.each([
    ['password', true],
    ['db_password', true],
    ['apiKey', true],
    ['X-Api-Key', true],
    ['client_secret', true],
    ['refreshToken', true],
    ['Authorization', true],
    ['private_key', true],
    ['pwd', true],
    ['project', false],
    ['summary', false],
    ['ticketId', false],
    ['author', false],
  ])('field name %s is a secret: %s', (name, secret) => {
    expect(isSecretFieldName(name)).toBe(secret);
  });

  it('covers every name the broker log redacts', () => {
    for (const name of SECRET_FIELD_NAMES) expect(isSecretFieldName(name), name).toBe(true);
  });

  it.each([
    ['a JWT', `token is ${JWT}`],
    ['a bearer header', 'Bearer abcdefgh12345678'],
    ['a PEM private key', '-----BEGIN RSA PRIVATE KEY-----\nMIIE...'],
    ['an sk- key', 'sk-proj-abcdefghijklmnopqrstuvwx'],
    ['a GitHub token', 'ghp_abcdefghijklmnopqrstuvwxyz0123'],
    ['an AWS access key id', 'AKIAIOSFODNN7EXAMPLE'],
    ['a URL with a password', 'postgres://app:s3cr3t@db:5432/app'],
    ['random key material', 'q8Xv2LmZ9rT4wYbN7cKd1FhJ3sPg6QeA'],
  ])('%s looks like a secret', (_name, value) => {
    expect(looksLikeSecret(value)).toBe(true);
  });

  it.each([
    ['a sentence', 'Customer cannot log in since the update; please look at the auth page'],
    ['a UUID', '3f2b8c1e-9a4d-4e7b-8c2f-1a2b3c4d5e6f'],
    ['a lower-case sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['a ticket id', 'SUP-1234'],
    ['a URL without credentials', 'https://jira.example/browse/SUP-1'],
  ])('%s does not look like a secret', (_name, value) => {
    expect(looksLikeSecret(value)).toBe(false);
  });
});

describe('recordReplay', () => {
  it('does not record a secret-looking argument, and says where it was withheld', () => {
    const args = {
      project: 'SUP',
      password: 'hunter2',
      max_tokens: 100,
      note: `forwarding ${JWT}`,
      nested: { apiKey: 'plain-looking', headers: { Authorization: 'Basic dXNlcjpwYXNzd29yZA==' } },
      keys: ['q8Xv2LmZ9rT4wYbN7cKd1FhJ3sPg6QeA'],
    };
    const r = recordReplay({ kind: 'mcp', args }, ALLOWED);
    const text = JSON.stringify(r);
    for (const secret of [
      'hunter2',
      JWT,
      'plain-looking',
      'dXNlcjpwYXNzd29yZA==',
      'q8Xv2LmZ9rT4wYbN7cKd1FhJ3sPg6QeA',
    ])
      expect(text).not.toContain(secret);
    const kept = JSON.parse(r.args ?? '{}') as Record<string, unknown>;
    expect(kept).toEqual({
      project: 'SUP',
      password: REPLAY_REDACTED,
      max_tokens: 100,
      note: REPLAY_REDACTED,
      nested: { apiKey: REPLAY_REDACTED, headers: { Authorization: REPLAY_REDACTED } },
      keys: [REPLAY_REDACTED],
    });
    expect(r.withheld).toEqual([
      'request.args.password',
      'request.args.note',
      'request.args.nested.apiKey',
      'request.args.nested.headers.Authorization',
      'request.args.keys[0]',
    ]);
  });

  it('keeps ordinary arguments exactly and records the verdict', () => {
    const args = { project: 'SUP', labels: ['urgent', 'login'], count: 3, draft: false, parent: null };
    const r = recordReplay({ kind: 'mcp', args, user: ALICE, context: { ticketId: 'SUP-1' } }, ALLOWED);
    expect(JSON.parse(r.args ?? '')).toEqual(args);
    expect(r).toMatchObject({
      kind: 'mcp',
      policyDecision: 'Allow',
      policyReason: 'Allowed',
      user: { sub: 'alice', issuer: 'https://idp.example', groups: ['support'], department: 'customer-care' },
      context: { ticketId: 'SUP-1' },
    });
    expect(r.withheld).toBeUndefined();
  });

  it('bounds the arguments, the claims and the whole block, and says what was left out', () => {
    const args: Record<string, unknown> = { small: 'kept' };
    for (let i = 0; i < 40; i++) args[`field${i}`] = 'x'.repeat(200);
    const claims: Record<string, unknown> = {};
    for (let i = 0; i < 20; i++) claims[`claim${i}`] = 'y'.repeat(100);
    const user = {
      sub: 's'.repeat(400),
      issuer: 'https://idp.example',
      groups: Array.from({ length: 100 }, (_, i) => `group-${i}-${'g'.repeat(100)}`),
      department: 'd'.repeat(300),
      claims,
    };
    const context = {
      purpose: 'p'.repeat(256),
      ticketId: 't'.repeat(256),
      model: 'm'.repeat(256),
      geo: 'g'.repeat(256),
      chainStep: 7,
    };
    const r = recordReplay({ kind: 'mcp', args, user, context }, ALLOWED);
    expect(Buffer.byteLength(JSON.stringify(r.args))).toBeLessThanOrEqual(REPLAY_ARGS_MAX_BYTES);
    expect(Buffer.byteLength(JSON.stringify(r.user?.claims))).toBeLessThanOrEqual(REPLAY_CLAIMS_MAX_BYTES);
    expect(Buffer.byteLength(JSON.stringify(r))).toBeLessThanOrEqual(REPLAY_MAX_BYTES);
    expect(JSON.parse(r.args ?? '').small).toBe('kept');
    expect(r.withheld).toHaveLength(REPLAY_MAX_WITHHELD);
    expect(r.withheld?.at(-1)).toMatch(/^\(and \d+ more\)$/);
    expect(r.user?.groups?.join('').length).toBeLessThanOrEqual(1024);
    expect(r.args).toBeDefined();
    // Within the CRD's limits, as the authority checks.
    expect(auditReplaySchema.safeParse(r).success).toBe(true);
  });

  it('stays within the bound when every string needs escaping', () => {
    const args: Record<string, unknown> = {};
    for (let i = 0; i < 30; i++) args[`"k${i}"`] = '"\\'.repeat(150);
    const claims: Record<string, unknown> = {};
    for (let i = 0; i < 30; i++) claims[`"c${i}"`] = '"'.repeat(200);
    const long = (c: string) => c.repeat(256);
    const r = recordReplay(
      {
        kind: 'mcp',
        args,
        user: {
          sub: long('"'),
          issuer: long('"'),
          department: long('"'),
          groups: Array.from({ length: 40 }, () => '"'.repeat(128)),
          claims,
        },
        context: { purpose: long('"'), ticketId: long('"'), model: long('"'), geo: long('"'), chainStep: 1 },
      },
      ALLOWED,
    );
    expect(Buffer.byteLength(JSON.stringify(r))).toBeLessThanOrEqual(REPLAY_MAX_BYTES);
    expect(auditReplaySchema.safeParse(r).success).toBe(true);
  });

  it('marks long strings and deep nesting as truncated', () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 10; i++) deep = { deeper: deep };
    const r = recordReplay({ kind: 'mcp', args: { text: 'a'.repeat(600), deep } }, ALLOWED);
    const kept = JSON.parse(r.args ?? '') as { text: string };
    expect(kept.text).toBe(REPLAY_TRUNCATED);
    expect(r.args).toContain(REPLAY_TRUNCATED);
    expect(r.withheld?.[0]).toBe('request.args.text');
    expect(r.withheld?.[1]).toMatch(/^request\.args\.deep(\.deeper)+$/);
  });

  it('records no arguments for an input the engine refused as too large', () => {
    const r = recordReplay({ kind: 'mcp', args: { a: 'b' } }, { decision: 'Deny', reason: 'InputTooLarge' });
    expect(r.args).toBeUndefined();
    expect(replayInputOf(entryWith(r))).toEqual({
      ok: false,
      skip: 'input-not-reproducible',
      detail: 'InputTooLarge',
    });
  });

  it('scrubs user claims like arguments', () => {
    const r = recordReplay(
      {
        kind: 'http',
        user: { sub: 'alice', claims: { tier: 'gold', refresh_token: 'abc', email: 'a@example.com' } },
      },
      ALLOWED,
    );
    expect(JSON.parse(r.user?.claims ?? '')).toEqual({
      tier: 'gold',
      refresh_token: REPLAY_REDACTED,
      email: 'a@example.com',
    });
    expect(r.withheld).toEqual(['user.claims.refresh_token']);
  });
});

describe('replayInputOf', () => {
  const policy = compiled('support', {
    rules: [
      {
        targets: ['jira'],
        tools: ['jira.create_issue'],
        when: when({
          'support-staff': "user.present && 'support' in user.groups",
          'sup-project': "request.args.project == 'SUP'",
          'ticket-referenced': "has(context.ticketId) && context.ticketId.startsWith('SUP-')",
          'gold-tier': "has(user.claims.tier) && user.claims.tier == 'gold'",
          'office-hours': "request.time.getHours('UTC') >= 8",
        }),
      },
    ],
  });
  const set = buildPolicySet([policy], { name: 'support-bot', namespace: 'agents' });

  it('gives back an input the engine decides as it did when recorded', () => {
    const user = { ...ALICE, claims: { tier: 'gold' } };
    for (const [args, context] of [
      [{ project: 'SUP' }, { ticketId: 'SUP-1' }],
      [{ project: 'OPS' }, { ticketId: 'SUP-1' }],
      [{ project: 'SUP' }, { ticketId: 'OPS-1' }],
    ] as const) {
      const live = decide(set, {
        user,
        request: { kind: 'mcp', target: 'jira', tool: 'jira.create_issue', args, time: MONDAY_10_UTC },
        context,
      });
      const replay = recordReplay({ kind: 'mcp', args, user, context }, live);
      const back = replayInputOf(entryWith(replay));
      if (!back.ok) throw new Error(back.skip);
      expect(back.approximate).toBe(false);
      expect(back.recorded).toEqual({ decision: live.decision, reason: live.reason });
      const again = decide(set, back.input);
      expect({ ...again, evaluationMicros: 0 }).toEqual({ ...live, evaluationMicros: 0 });
    }
  });

  it('reads http, postgresql and session decisions', () => {
    const http = replayInputOf(
      entryWith(recordReplay({ kind: 'http' }, ALLOWED), {
        tool: undefined,
        method: 'GET',
        path: '/v1/items',
      }),
    );
    expect(http.ok && http.input.request).toMatchObject({ kind: 'http', method: 'GET', path: '/v1/items' });
    const pg = replayInputOf(entryWith(recordReplay({ kind: 'postgresql' }, ALLOWED), { tool: undefined }));
    expect(pg.ok && pg.input.request.kind).toBe('postgresql');
    const session = replayInputOf(entryWith(recordReplay({ kind: 'session' }, ALLOWED), { tool: undefined }));
    expect(session.ok && session.kind).toBe('session');
  });

  it('replays session traffic with its recorded user; an older session entry without one is approximate', () => {
    const withUser = replayInputOf(
      entryWith(recordReplay({ kind: 'session', user: ALICE }, ALLOWED), { tool: undefined, user: 'alice' }),
    );
    expect(withUser.ok && withUser.input.user?.sub).toBe('alice');
    expect(withUser.ok && withUser.approximate).toBe(false);
    const older = replayInputOf(
      entryWith(recordReplay({ kind: 'session' }, ALLOWED), { tool: undefined, user: 'alice' }),
    );
    expect(older.ok && older.approximate).toBe(true);
    const alone = replayInputOf(
      entryWith(recordReplay({ kind: 'session' }, ALLOWED), { tool: undefined, user: 'agent acting alone' }),
    );
    expect(alone.ok && alone.approximate).toBe(false);
  });

  it('marks an entry with withheld values as approximate', () => {
    const back = replayInputOf(entryWith(recordReplay({ kind: 'mcp', args: { password: 'x' } }, ALLOWED)));
    expect(back.ok && back.approximate).toBe(true);
  });

  it.each([
    ['an entry written before replay data', entryWith(undefined), 'no-replay-data'],
    ['a session entry', { ...entryWith(undefined), kind: 'Session' as const }, 'not-a-policy-decision'],
    [
      'a refusal before the policy engine',
      {
        ...entryWith(undefined),
        decision: 'Deny' as const,
        message: 'AgentSuspended: agent demo/bot is suspended',
      },
      'not-a-policy-decision',
    ],
    [
      'an old policy denial',
      {
        ...entryWith(undefined),
        decision: 'Deny' as const,
        message: 'DeniedByPolicy: denied by AccessPolicy a/b rule 0',
      },
      'no-replay-data',
    ],
    [
      'replay args that are not an object',
      entryWith({ kind: 'mcp', policyDecision: 'Allow', args: '[1,2]' }),
      'malformed',
    ],
    [
      'an mcp decision without a tool',
      entryWith({ kind: 'mcp', policyDecision: 'Allow' }, { tool: undefined }),
      'malformed',
    ],
    [
      'an http decision without a path',
      entryWith({ kind: 'http', policyDecision: 'Allow' }, { method: 'GET' }),
      'malformed',
    ],
  ])('skips %s', (_name, entry, skip) => {
    const back = replayInputOf(entry);
    expect(back.ok).toBe(false);
    if (!back.ok) expect(back.skip).toBe(skip);
  });
});

describe('replayInputOf: a delegated call', () => {
  const set = buildPolicySet(
    [
      compiled('via-planner', {
        rules: [
          {
            targets: ['jira'],
            tools: ['jira.create_issue'],
            when: when({ 'for-planner': "request.chain.exists(a, a.name == 'planner')" }),
          },
        ],
      }),
    ],
    { name: 'support-bot', namespace: 'agents' },
  );
  const chain = [
    { name: 'planner', namespace: 'agents' },
    { name: 'support-bot', namespace: 'agents' },
  ];

  it("replays with the entry's chain, the deciding agent left for the engine to append", () => {
    const live = decide(set, {
      request: {
        kind: 'mcp',
        target: 'jira',
        tool: 'jira.create_issue',
        args: {},
        time: MONDAY_10_UTC,
        chain: chain.slice(0, 1),
      },
    });
    expect(live.decision).toBe('Allow');
    const back = replayInputOf(entryWith(recordReplay({ kind: 'mcp', args: {} }, live), { chain }));
    expect(back.ok && back.input.request.chain).toEqual([{ name: 'planner', namespace: 'agents' }]);
    expect(back.ok && decide(set, back.input).decision).toBe('Allow');
    // Without the chain the same call is not for planner.
    const alone = replayInputOf(entryWith(recordReplay({ kind: 'mcp', args: {} }, live)));
    expect(alone.ok && decide(set, alone.input).decision).toBe('Deny');
  });

  it('replays a broker Deny with the chain its token claimed (what the engine decided on)', () => {
    const back = replayInputOf(
      entryWith(recordReplay({ kind: 'mcp', args: {} }, { decision: 'Deny', reason: 'ConditionFailed' }), {
        claimedChain: chain,
      }),
    );
    expect(back.ok && back.input.request.chain).toEqual([{ name: 'planner', namespace: 'agents' }]);
  });
});
