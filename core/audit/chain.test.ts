import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditRecordSpec } from '../api/index.js';
import {
  canonicalJson,
  digestOf,
  formatPrunedThrough,
  GENESIS_DIGEST,
  type NamedRecord,
  parsePrunedThrough,
  recordName,
  sealRecord,
  verifyChain,
} from './chain.js';

const entry = (i: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  time: new Date(Date.UTC(2026, 10, 29, 12, 0, i)).toISOString(),
  kind: 'Decision',
  decision: i % 2 ? 'Deny' : 'Allow',
  pod: 'bot-0',
  user: 'agent acting alone',
  tool: `jira.get_${i}`,
  ...over,
});

/** A valid chain of `n` records of `agent`, two entries each. */
function chain(agent: string, n: number): NamedRecord[] {
  const out: NamedRecord[] = [];
  let prev = '';
  for (let s = 0; s < n; s++) {
    const spec = sealRecord({
      agent,
      sequence: s,
      previousDigest: prev,
      entries: [entry(2 * s), entry(2 * s + 1)],
    });
    out.push({ name: recordName(agent, s), spec });
    prev = spec.digest;
  }
  return out;
}

describe('canonicalJson', () => {
  it.each([
    [
      'sorts keys at every level',
      { b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } },
      '{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}',
    ],
    ['drops undefined fields', { a: undefined, b: null }, '{"b":null}'],
    ['keeps unicode and escapes', { s: 'é"\n' }, '{"s":"é\\"\\n"}'],
  ])('%s', (_n, value, want) => {
    expect(canonicalJson(value)).toBe(want);
  });

  it('does not depend on insertion order', () => {
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });
});

describe('sealRecord', () => {
  it('takes start and end time from the entries and digests the content', () => {
    const spec = sealRecord({ agent: 'bot', sequence: 0, previousDigest: '', entries: [entry(5), entry(1)] });
    expect(spec.startTime).toBe(entry(1).time);
    expect(spec.endTime).toBe(entry(5).time);
    expect(spec.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(digestOf(spec)).toBe(spec.digest);
  });

  it('refuses an empty record', () => {
    expect(() => sealRecord({ agent: 'bot', sequence: 3, previousDigest: 'x', entries: [] })).toThrow(
      /bot#3: no entries/,
    );
  });
});

describe('recordName', () => {
  it('is sortable by sequence and fits the object-name limit', () => {
    expect(recordName('bot', 7)).toBe('bot-0000000007');
    expect(recordName('a'.repeat(253), 1).length).toBeLessThanOrEqual(253);
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain and counts records and entries', () => {
    const res = verifyChain([...chain('a', 3), ...chain('b', 2)]);
    expect(res).toEqual({ ok: true, records: 5, entries: 10, problems: [], notes: [] });
  });

  it('accepts records in any order', () => {
    expect(verifyChain(chain('a', 4).reverse()).ok).toBe(true);
  });

  const tamper: Array<[string, (c: NamedRecord[]) => NamedRecord[], string, RegExp]> = [
    [
      'an edited entry',
      (c) => {
        const r = c[1] as NamedRecord;
        const spec: AuditRecordSpec = {
          ...r.spec,
          entries: [{ ...(r.spec.entries[0] as AuditEntry), decision: 'Allow' }],
        };
        return [c[0] as NamedRecord, { ...r, spec }, c[2] as NamedRecord];
      },
      'altered',
      /a-0000000001 was altered/,
    ],
    [
      'a deleted middle record',
      (c) => [c[0] as NamedRecord, c[2] as NamedRecord],
      'gap',
      /records 1\.\.1 of agent a are missing/,
    ],
    ['a deleted first record', (c) => c.slice(1), 'missing-start', /records 0\.\.0 of agent a are missing/],
    [
      'a record re-sealed after editing (digest recomputed)',
      (c) => {
        const r = c[1] as NamedRecord;
        const resealed = sealRecord({ ...r.spec, entries: [entry(99)] });
        return [c[0] as NamedRecord, { ...r, spec: resealed }, c[2] as NamedRecord];
      },
      'broken-link',
      /a-0000000002 does not follow a-0000000001/,
    ],
    [
      'a duplicated record',
      (c) => [...c, c[1] as NamedRecord],
      'duplicate',
      /two records of agent a have sequence 1/,
    ],
  ];

  it.each(tamper)('catches %s', (_name, mutate, kind, message) => {
    const res = verifyChain(mutate(chain('a', 3)));
    expect(res.ok).toBe(false);
    expect(res.problems.map((p) => p.kind)).toContain(kind);
    expect(res.problems.map((p) => p.message).join('\n')).toMatch(message);
  });

  it('uses anchors to catch deletion of the newest records (a truncated tail)', () => {
    const res = verifyChain(chain('a', 2), { a: 3 });
    expect(res.ok).toBe(false);
    expect(res.problems.map((p) => p.kind)).toEqual(['truncated']);
    expect(res.problems[0]?.message).toMatch(/records 2\.\.3 of agent a are missing/);
    const none = verifyChain([], { a: 0 });
    expect(none.problems.map((p) => p.kind)).toEqual(['truncated']);
    expect(none.problems[0]?.message).toMatch(/records 0\.\.0 of agent a are missing.*no record is left/);
    expect(verifyChain(chain('a', 2), { a: 1 }).ok).toBe(true);
  });

  it('accepts records newer than the anchor (the anchor follows the writes)', () => {
    const c = chain('a', 4);
    expect(verifyChain(c, { a: { sequence: 1, digest: c[1]!.spec.digest } }).ok).toBe(true);
  });

  it('reports a record at the anchored sequence whose digest is not the anchored one', () => {
    const c = chain('a', 2);
    const r = verifyChain(c, { a: { sequence: 1, digest: 'e'.repeat(64) } });
    expect(r.problems.map((p) => [p.kind, p.name])).toEqual([['altered', recordName('a', 1)]]);
  });
});

describe('verifyChain with forged records (standing decided by core/audit/verify.ts)', () => {
  const signed = (c: NamedRecord[]) => c.map((r) => ({ ...r, standing: 'signed' as const }));
  const forge = (agent: string, sequence: number, previousDigest: string): NamedRecord => ({
    name: `${recordName(agent, sequence)}`,
    spec: sealRecord({ agent, sequence, previousDigest, entries: [entry(77)] }),
    standing: 'forged',
    why: 'it is not signed',
  });

  it('reports a forged record at the tail and leaves it out of the chain', () => {
    const c = signed(chain('a', 2));
    const r = verifyChain([...c, forge('a', 2, c[1]!.spec.digest)], {
      a: { sequence: 1, digest: c[1]!.spec.digest },
    });
    expect(r.problems.map((p) => [p.kind, p.name])).toEqual([['forged', recordName('a', 2)]]);
    expect(r.problems[0]?.message).toMatch(/was not written by the Warden controller: it is not signed/);
  });

  it('accepts the controller skipping a slot a forged record took (the next links over it)', () => {
    const c = signed(chain('a', 2));
    const next = sealRecord({
      agent: 'a',
      sequence: 3,
      previousDigest: c[1]!.spec.digest,
      entries: [entry(8)],
    });
    const r = verifyChain([
      ...c,
      forge('a', 2, c[1]!.spec.digest),
      { name: recordName('a', 3), spec: next, standing: 'signed' },
    ]);
    expect(r.problems.map((p) => p.kind)).toEqual(['forged']);
  });

  it('reports a gap when a forged record replaced a genuine one (the next links to the missing one)', () => {
    const c = signed(chain('a', 4));
    const r = verifyChain([c[0]!, c[1]!, forge('a', 2, c[1]!.spec.digest), c[3]!]);
    expect(r.problems.map((p) => p.kind).sort()).toEqual(['forged', 'gap']);
    expect(r.problems.find((p) => p.kind === 'gap')?.message).toMatch(
      /the record a-0000000003 follows is missing: forged records hold sequences 2\.\.2/,
    );
  });

  it('accepts a first record above 0 that links to GENESIS_DIGEST when forged records took every earlier slot', () => {
    const first = sealRecord({
      agent: 'a',
      sequence: 1,
      previousDigest: GENESIS_DIGEST,
      entries: [entry(1)],
    });
    const r = verifyChain([forge('a', 0, ''), { name: recordName('a', 1), spec: first, standing: 'signed' }]);
    expect(r.problems.map((p) => p.kind)).toEqual(['forged']);
  });

  it('still reports missing-start when the slots before the first record are empty, not forged', () => {
    const first = sealRecord({
      agent: 'a',
      sequence: 2,
      previousDigest: GENESIS_DIGEST,
      entries: [entry(1)],
    });
    const r = verifyChain([forge('a', 0, ''), { name: recordName('a', 2), spec: first, standing: 'signed' }]);
    expect(r.problems.map((p) => p.kind).sort()).toEqual(['forged', 'missing-start']);
  });

  it('notes a legacy (unsigned, pre-signing) prefix and whether a signed record vouches for it', () => {
    const c = chain('a', 3);
    const mixed: NamedRecord[] = [
      { ...c[0]!, standing: 'legacy' },
      { ...c[1]!, standing: 'legacy' },
      { ...c[2]!, standing: 'signed' },
    ];
    const vouched = verifyChain(mixed);
    expect(vouched.ok).toBe(true);
    expect(vouched.notes).toEqual([
      {
        kind: 'legacy',
        agent: 'a',
        message: expect.stringMatching(
          /records 0\.\.1 of agent a are unsigned.*signed record a-0000000002 chains onto them/,
        ),
      },
    ]);
    const alone = verifyChain(mixed.slice(0, 2));
    expect(alone.ok).toBe(true);
    expect(alone.notes[0]?.message).toMatch(/no signed record follows them, so they prove nothing/);
  });
});

describe('verifyChain with a retention anchor (pruned-through)', () => {
  const full = chain('bot', 6);
  const cutAt = (n: number) => ({ sequence: n, digest: full[n]!.spec.digest });

  it('accepts a chain whose oldest records were pruned by retention', () => {
    const r = verifyChain(full.slice(3), {}, { bot: cutAt(2) });
    expect(r.problems).toEqual([]);
  });

  it('accepts records at or below the cut that are not deleted yet (the cut is written first)', () => {
    expect(verifyChain(full.slice(1), {}, { bot: cutAt(2) }).ok).toBe(true);
    expect(verifyChain(full, {}, { bot: cutAt(2) }).ok).toBe(true);
  });

  it('without the anchor the same pruned chain reports missing records', () => {
    const r = verifyChain(full.slice(3));
    expect(r.problems.map((p) => p.kind)).toEqual(['missing-start']);
  });

  it('still reports records deleted beyond the cut, naming the range', () => {
    const r = verifyChain(full.slice(4), {}, { bot: cutAt(2) });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]?.message).toContain('records 3..3 of agent bot are missing');
  });

  it('reports a first record that does not link to the anchor (a forged cut)', () => {
    const r = verifyChain(full.slice(3), {}, { bot: { sequence: 2, digest: 'f'.repeat(64) } });
    expect(r.problems.map((p) => p.kind)).toEqual(['broken-link']);
    expect(r.problems[0]?.name).toBe(recordName('bot', 3));
  });

  it('still reports an altered record after the cut', () => {
    const tampered = full.slice(3).map((r) => ({ ...r, spec: { ...r.spec } }));
    tampered[1]!.spec.entries = [{ ...tampered[1]!.spec.entries[0]!, decision: 'Allow' }];
    const r = verifyChain(tampered, {}, { bot: cutAt(2) });
    expect(r.problems.map((p) => p.kind)).toContain('altered');
  });
});

describe('pruned-through annotation value', () => {
  it('round-trips', () => {
    const p = { sequence: 41, digest: 'a'.repeat(64) };
    expect(parsePrunedThrough(formatPrunedThrough(p))).toEqual(p);
  });
  it.each([
    ['empty', ''],
    ['absent', undefined],
    ['no digest', '4:'],
    ['short digest', '4:abc'],
    ['negative', `-1:${'a'.repeat(64)}`],
    ['upper-case hex', `4:${'A'.repeat(64)}`],
  ])('rejects %s', (_name, value) => {
    expect(parsePrunedThrough(value)).toBeUndefined();
  });
});
