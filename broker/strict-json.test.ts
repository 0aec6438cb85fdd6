import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonPath, parseStrictJson } from './strict-json.js';

const parse = (text: string, maxDepth = 64) => parseStrictJson(text, { maxDepth });
const seed = Number(process.env.FUZZ_SEED ?? 20_261_204);

/** fast-check's JSON values, less integers past 2^53 (refused by design, tested on their own). */
const jsonValue = (maxDepth: number) =>
  fc.jsonValue({ maxDepth }).filter((v) => !JSON.stringify(v).match(/(?<![.\deE+-])-?\d{16,}(?![.\deE])/));

/** Deepest nesting of a JSON value: scalars 0, `[]` / `{}` 1. */
function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((m, c) => Math.max(m, depthOf(c)), 0);
}

describe('parseStrictJson reads JSON as JSON.parse does', () => {
  it.each([
    ['an object', '{"a":1,"b":[true,false,null],"c":{"d":"e"}}'],
    ['whitespace everywhere', ' \t\r\n{ "a" : [ 1 , 2 ] }\n'],
    ['escapes', '"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00"'],
    ['raw non-ASCII and an emoji', '"Grüße 😀 ＤＥＬＥＴＥ"'],
    ['numbers', '[0,-1,1.5,-0.25,1e3,1E-3,2.5e+2,9007199254740991,-9007199254740991,1.5e300]'],
    ['an integer-valued float beyond 2^53', '1e300'],
    ['scalars at the top', '"x"'],
    ['empty containers', '[{},[],""]'],
  ])('%s', (_n, text) => {
    const r = parse(text);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value).toEqual(JSON.parse(text));
  });

  it('makes __proto__ an own data property, as JSON.parse does', () => {
    const r = parse('{"__proto__":{"polluted":true},"a":1}');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const v = r.value as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__', 'a']);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(JSON.stringify(v)).toBe('{"__proto__":{"polluted":true},"a":1}');
  });

  it('reads -0 as 0', () => {
    const r = parse('[-0,-0.0,-0e5]');
    expect(r.ok && (r.value as number[]).every((n) => Object.is(n, 0))).toBe(true);
  });

  it('matches JSON.parse on any JSON.stringify output without repeated keys (property)', () => {
    fc.assert(
      fc.property(jsonValue(6), (v) => {
        const text = JSON.stringify(v);
        const r = parse(text);
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.value).toEqual(JSON.parse(text));
      }),
      { seed, numRuns: 500 },
    );
  });
});

describe('parseStrictJson refuses what parsers read differently', () => {
  it.each([
    ['a repeated key', '{"a":1,"a":2}', 'duplicate-key', '$.a', /duplicate key "a" at \$\.a/],
    ['a repeated key spelled with an escape', '{"a":1,"\\u0061":2}', 'duplicate-key', '$.a', /"a"/],
    ['a repeated nested key', '{"x":[{"k":1},{"k":1,"k":1}]}', 'duplicate-key', '$.x[1].k', /\$\.x\[1\]\.k/],
    ['a repeated __proto__', '{"__proto__":1,"__proto__":2}', 'duplicate-key', '$.__proto__', /__proto__/],
    ['a repeated odd key', '{"a b":1,"a b":2}', 'duplicate-key', '$["a b"]', /\$\["a b"\]/],
    ['an escaped lone high surrogate', '"\\ud800"', 'string', '$', /lone UTF-16 surrogate/],
    ['an escaped lone low surrogate', '{"k":"a\\udc00b"}', 'string', '$.k', /lone/],
    ['a high surrogate followed by a non-surrogate escape', '"\\ud800\\u0041"', 'string', '$', /lone/],
    ['two high surrogates', '"\\ud800\\ud800\\udc00"', 'string', '$', /lone/],
    ['a raw lone surrogate', '"a\ud800"', 'string', '$', /lone/],
    ['an integer past 2^53', '{"n":9007199254740993}', 'number', '$.n', /2\^53/],
    ['a negative integer past 2^53', '[-9007199254740992]', 'number', '$[0]', /2\^53/],
    ['an overflowing float', '{"n":1e309}', 'number', '$.n', /64-bit float/],
    ['an overflowing negative float', '-1.5e999', 'number', '$', /64-bit float/],
    [
      'nesting past the bound',
      `{"a":${'['.repeat(10)}${']'.repeat(10)}}`,
      'too-deep',
      '$.a[0][0][0][0][0][0][0]',
      /deeper than 8/,
    ],
  ])('%s', (_n, text, kind, path, message) => {
    const r = parse(text, 8);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problem.kind).toBe(kind);
    expect(r.problem.path).toBe(path);
    expect(r.problem.message).toMatch(message);
  });

  it('reads on after a repeated key so the caller can see the rest (first value kept)', () => {
    const r = parse('{"id":7,"m":"a","m":"b","z":1}');
    expect(r).toMatchObject({
      ok: false,
      problem: { kind: 'duplicate-key', key: 'm' },
      value: { id: 7, m: 'a', z: 1 },
    });
  });

  it.each([
    ['trailing comma', '[1,]'],
    ['single quotes', "{'a':1}"],
    ['comments', '{"a":1 /* x */}'],
    ['NaN', '[NaN]'],
    ['Infinity', '[Infinity]'],
    ['leading zero', '[01]'],
    ['leading plus', '[+1]'],
    ['bare dot', '[1.]'],
    ['hex', '[0x10]'],
    ['raw newline in a string', '"a\nb"'],
    ['raw tab in a string', '"a\tb"'],
    ['bad escape', '"\\x41"'],
    ['short \\u', '"\\u12"'],
    ['unterminated string', '"abc'],
    ['unterminated object', '{"a":1'],
    ['two documents', '{} {}'],
    ['empty input', ''],
    ['a BOM', '\ufeff{}'],
    ['non-breaking space as whitespace', '{\u00a0}'],
    ['a key that is not a string', '{a:1}'],
    ['True', 'True'],
  ])('refuses %s as a syntax error', (_n, text) => {
    const r = parse(text);
    expect(r).toMatchObject({ ok: false, problem: { kind: 'syntax' } });
    if (!r.ok) expect(r.problem.message).toMatch(/^invalid JSON at offset \d+ \(\$/);
    expect(() => JSON.parse(text)).toThrow();
  });

  it('bounds nesting as it parses: any depth past the bound is refused, any depth within is read', () => {
    fc.assert(
      fc.property(jsonValue(10), fc.integer({ min: 0, max: 12 }), (v, max) => {
        const r = parseStrictJson(JSON.stringify(v), { maxDepth: max });
        expect(r.ok).toBe(depthOf(v) <= max);
        if (!r.ok) expect(r.problem.kind).toBe('too-deep');
      }),
      { seed, numRuns: 500 },
    );
  });

  it('handles a million brackets without recursing past the bound', () => {
    const r = parse('['.repeat(1_000_000));
    expect(r).toMatchObject({ ok: false, problem: { kind: 'too-deep' } });
  });

  it('never quotes more than 64 characters of a key', () => {
    const key = 'k'.repeat(10_000);
    const r = parse(`{"${key}":1,"${key}":2}`);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem.message.length).toBeLessThan(300);
  });
});

describe('jsonPath', () => {
  it('writes identifiers with dots and everything else bracketed and quoted', () => {
    expect(jsonPath([])).toBe('$');
    expect(jsonPath(['params', 'arguments', 'items', 3, 'a b', 'x\ny', '_ok$'])).toBe(
      '$.params.arguments.items[3]["a b"]["x\\ny"]._ok$',
    );
  });
});
