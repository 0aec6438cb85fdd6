import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuditRecordSpec } from '../api/index.js';
import { recordName, sealRecord } from './chain.js';
import { AuditKeySet, type AuditSigningKey, publicJwkOf, signHead, signRecord } from './signature.js';
import {
  createdBeforeSigning,
  PROBLEM_CLASS,
  type TrailAgent,
  type TrailRecord,
  verifyTrail,
} from './verify.js';

const NS = 'agents';
const newKey = (kid: string): AuditSigningKey => ({
  kid,
  privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
});
const k1 = newKey('k1');
const k2 = newKey('k2');
const intruder = newKey('k1'); // same kid as the real key, different private key
const keys = new AuditKeySet([publicJwkOf(k1), publicJwkOf(k2)]);
const SIGNING_SINCE = Date.parse('2026-12-04T12:00:00Z');
const AFTER = '2026-12-04T13:00:00Z';
const BEFORE = '2026-12-04T11:00:00Z';

const entry = (i: number) => ({
  time: new Date(Date.UTC(2026, 11, 4, 12, 0, i)).toISOString(),
  kind: 'Decision' as const,
  decision: 'Allow' as const,
  requestId: `r-${i}`,
});

/** n records of `agent` signed by `key` (or unsigned when null), from `from`. */
function chain(
  n: number,
  key: AuditSigningKey | null = k1,
  agent = 'bot',
  from?: TrailRecord,
): TrailRecord[] {
  const out: TrailRecord[] = [];
  let prev = from?.spec.digest ?? '';
  const start = from ? from.spec.sequence + 1 : 0;
  for (let s = start; s < start + n; s++) {
    const sealed = sealRecord({ agent, sequence: s, previousDigest: prev, entries: [entry(s)] });
    const spec: AuditRecordSpec = key ? { ...sealed, signature: signRecord(NS, sealed, key) } : sealed;
    out.push({ name: recordName(agent, s), spec, createdAt: key ? AFTER : BEFORE });
    prev = spec.digest;
  }
  return out;
}
const headOf = (r: TrailRecord, key = k1): TrailAgent => ({
  head: signHead(NS, r.spec.agent, { sequence: r.spec.sequence, digest: r.spec.digest }, key),
});
const verify = (records: TrailRecord[], agents: Record<string, TrailAgent>) =>
  verifyTrail({ namespace: NS, records, agents, keys, signingSince: SIGNING_SINCE });
const kinds = (r: { problems: Array<{ kind: string }> }) => r.problems.map((p) => p.kind).sort();

describe('verifyTrail', () => {
  it('accepts a signed chain that reaches its anchored head, with no notes', async () => {
    const c = chain(3);
    const r = await verify(c, { bot: headOf(c[2]!) });
    expect(r).toMatchObject({ ok: true, records: 3, entries: 3, problems: [], notes: [] });
  });

  it('accepts records signed before and after a key rotation', async () => {
    const before = chain(2, k1);
    const after = chain(2, k2, 'bot', before[1]);
    const r = await verify([...before, ...after], { bot: headOf(after[1]!, k2) });
    expect(r.problems).toEqual([]);
  });

  it('reports records of a key that is no longer published as forged (keys must stay published)', async () => {
    const only2 = new AuditKeySet([publicJwkOf(k2)]);
    const c = chain(1, k1);
    const r = await verifyTrail({
      namespace: NS,
      records: c,
      agents: {},
      keys: only2,
      signingSince: SIGNING_SINCE,
    });
    expect(r.problems[0]?.message).toMatch(/key k1 is not among the published audit keys/);
  });

  const forgedCases: Array<[string, (c: TrailRecord[]) => TrailRecord[], RegExp]> = [
    [
      'an unsigned record appended after signing began, linked to the newest digest',
      (c) => [...c, ...chain(1, null, 'bot', c[2]).map((r) => ({ ...r, createdAt: AFTER }))],
      /it is not signed, and it was created 2026-12-04T13:00:00Z, after audit signing began \(2026-12-04T12:00:00.000Z\)/,
    ],
    [
      'a record signed by a key with the published kid but another private key',
      (c) => [...c, ...chain(1, intruder, 'bot', c[2])],
      /the signature by key k1 does not match the record/,
    ],
    [
      'a record signed by an unpublished key',
      (c) => [...c, ...chain(1, newKey('k9'), 'bot', c[2])],
      /key k9 is not among the published audit keys/,
    ],
    [
      'a record whose created time is unknown and that has no signature',
      (c) => [...c, ...chain(1, null, 'bot', c[2]).map(({ createdAt: _c, ...r }) => r)],
      /it is not signed, and it was created \(time unknown\)/,
    ],
  ];

  it.each(forgedCases)('names %s as forged, and nothing else', async (_n, mutate, message) => {
    const c = chain(3);
    const r = await verify(mutate(c), { bot: headOf(c[2]!) });
    expect(kinds(r)).toEqual(['forged']);
    expect(r.problems[0]).toMatchObject({ name: recordName('bot', 3), sequence: 3 });
    expect(r.problems[0]?.message).toMatch(message);
    expect(PROBLEM_CLASS.forged).toBe('forged');
  });

  it('names a genuine record copied under another name as a duplicate (class forged)', async () => {
    const c = chain(3);
    const r = await verify([...c, { ...c[1]!, name: 'bot-copy' }], { bot: headOf(c[2]!) });
    expect(kinds(r)).toEqual(['duplicate']);
    expect(PROBLEM_CLASS.duplicate).toBe('forged');
  });

  it('names an altered entry (digest mismatch, signature intact) as altered', async () => {
    const c = chain(3);
    const edited = {
      ...c[1]!,
      spec: { ...c[1]!.spec, entries: [{ ...entry(1), decision: 'Deny' as const }] },
    };
    const r = await verify([c[0]!, edited, c[2]!], { bot: headOf(c[2]!) });
    expect(kinds(r)).toEqual(['altered']);
    expect(r.problems[0]?.message).toMatch(/bot-0000000001 was altered/);
  });

  it('names an edited record whose digest was recomputed as forged (its signature no longer matches)', async () => {
    const c = chain(3);
    const resealed = sealRecord({ ...c[1]!.spec, entries: [entry(99)] });
    const r = await verify(
      [c[0]!, { ...c[1]!, spec: { ...resealed, signature: c[1]!.spec.signature } }, c[2]!],
      {
        bot: headOf(c[2]!),
      },
    );
    expect(kinds(r)).toContain('forged');
  });

  it('names a deleted middle record as a gap', async () => {
    const c = chain(4);
    const r = await verify([c[0]!, c[1]!, c[3]!], { bot: headOf(c[3]!) });
    expect(kinds(r)).toEqual(['gap']);
    expect(PROBLEM_CLASS.gap).toBe('gap');
  });

  it('names deleted newest records as a truncated tail, from the anchored head', async () => {
    const c = chain(4);
    const r = await verify(c.slice(0, 2), { bot: headOf(c[3]!) });
    expect(kinds(r)).toEqual(['truncated']);
    expect(r.problems[0]?.message).toMatch(
      /records 2\.\.3 of agent bot are missing: the anchored head is #3/,
    );
  });

  it('names a head the controller did not sign as forged and does not trust it', async () => {
    const c = chain(2);
    const fake = headOf({ ...c[1]!, spec: { ...c[1]!.spec, sequence: 7 } }, intruder);
    const r = await verify(c, { bot: fake });
    expect(kinds(r)).toEqual(['forged']);
    expect(r.problems[0]?.message).toMatch(
      /anchored head of agent bot .* was not written by the Warden controller/,
    );
    expect(r.notes.map((n) => n.kind)).toEqual(['unanchored']);
  });

  it('accepts an unsigned legacy prefix vouched for by the first signed record, and says so', async () => {
    const legacy = chain(2, null);
    const signed = chain(2, k1, 'bot', legacy[1]);
    const r = await verify([...legacy, ...signed], { bot: headOf(signed[1]!) });
    expect(r.ok).toBe(true);
    expect(r.notes).toEqual([
      expect.objectContaining({
        kind: 'legacy',
        message: expect.stringMatching(
          /records 0\.\.1 of agent bot are unsigned.*bot-0000000002 chains onto them/,
        ),
      }),
    ]);
  });

  it.each([
    ['a second before signing began', '2026-12-04T11:59:59Z', true],
    ['the second signing began (creationTimestamp has whole seconds)', '2026-12-04T12:00:00Z', false],
    ['after', '2026-12-04T12:00:01Z', false],
    ['unknown', undefined, false],
  ])('createdBeforeSigning: %s', (_n, createdAt, legacy) => {
    expect(createdBeforeSigning(createdAt, SIGNING_SINCE + 400)).toBe(legacy);
  });

  it('treats every unsigned record as forged when the signing start is unknown', async () => {
    const r = await verifyTrail({ namespace: NS, records: chain(1, null), agents: {}, keys });
    expect(kinds(r)).toEqual(['forged']);
  });

  it.each([
    ['no AgentIdentity', {}, /there is no AgentIdentity bot in namespace agents/],
    ['an AgentIdentity without a head', { bot: {} }, /has no status.audit.head yet/],
  ])('notes an unanchored chain (%s) without failing', async (_n, agents, message) => {
    const r = await verify(chain(2), agents);
    expect(r.ok).toBe(true);
    expect(r.notes).toEqual([
      expect.objectContaining({ kind: 'unanchored', message: expect.stringMatching(message) }),
    ]);
  });

  it('tells retention from truncation: pruned oldest records and an anchored head verify', async () => {
    const c = chain(5);
    const pruned = { sequence: 1, digest: c[1]!.spec.digest };
    const r = await verify(c.slice(2), { bot: { ...headOf(c[4]!), pruned } });
    expect(r.problems).toEqual([]);
  });

  it('says what retention pruned, by which limit and when (a note, not a problem)', async () => {
    const c = chain(5);
    const pruned = { sequence: 1, digest: c[1]!.spec.digest };
    const prunedBy = {
      time: '2026-12-04T13:00:00Z',
      reason: 'MaxRecordsPerAgent',
      limit: 'more than 3 records per agent',
    };
    const r = await verify(c.slice(2), { bot: { ...headOf(c[4]!), pruned, prunedBy } });
    expect(r.ok).toBe(true);
    expect(r.notes).toEqual([
      {
        kind: 'pruned',
        agent: 'bot',
        message:
          'records 0..1 of agent bot were pruned by retention (more than 3 records per agent, last pruned 2026-12-04T13:00:00Z); what remains verifies from the retention anchor #1',
      },
    ]);
  });
});
