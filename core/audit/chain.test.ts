import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditRecordSpec } from '../api/index.js';
import { canonicalJson, digestOf, type NamedRecord, recordName, sealRecord, verifyChain } from './chain.js';

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
    expect(res).toEqual({ ok: true, records: 5, entries: 10, problems: [] });
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

  it('uses anchors to catch deletion of the newest records', () => {
    const res = verifyChain(chain('a', 2), { a: 3 });
    expect(res.ok).toBe(false);
    expect(res.problems[0]?.message).toMatch(/records 2\.\.3 of agent a are missing/);
    expect(verifyChain([], { a: 0 }).problems[0]?.message).toMatch(/all 1 records of agent a are missing/);
    expect(verifyChain(chain('a', 2), { a: 1 }).ok).toBe(true);
  });
});
