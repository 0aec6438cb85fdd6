/**
 * Differential test (issue 15, item 1): the same bytes go to the broker's parser (strict-json.ts,
 * through parseAgentMessage for MCP messages) and to two independent JSON parsers — CPython's
 * `json` module (run as a subprocess, with an object_pairs_hook that detects repeated keys) and
 * the lossless-json npm package (numbers kept as their literal text). Asserted:
 *   1. every message the broker accepts is read identically by both (same keys, strings, and
 *      numbers — integers compared exactly, as big integers);
 *   2. the bytes the broker forwards upstream are read by both (and by JSON.parse) as the message
 *      it decided on;
 *   3. the broker refuses a repeated key exactly when Python sees one, and refuses as malformed
 *      only what Python refuses too.
 * Inputs: fast-check generated messages and documents with repeated keys (also spelled with
 * escapes), unicode escapes and lone surrogates, big and odd numbers, __proto__ and other
 * prototype names as keys, nesting around the depth bound, a BOM — plus the smuggling cases.
 * Deterministic (fixed seed; FUZZ_SEED overrides, FUZZ_SCALE multiplies the counts).
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { isLosslessNumber, parse as losslessParse } from 'lossless-json';
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from './constants.js';
import { parseAgentMessage } from './jsonrpc.js';
import { type JsonValue, parseStrictJson } from './strict-json.js';

const seed = Number(process.env.FUZZ_SEED ?? 20_261_204);
const scale = Math.max(0.1, Number(process.env.FUZZ_SCALE ?? 1));
const MESSAGES = Math.round(1500 * scale);
const DOCUMENTS = Math.round(1500 * scale);

// ---------------------------------------------------------------------------------------------
// The independent readers. Each returns a canonical reading (or why it refused):
//   numbers {n: the double as JS prints it, i?: the exact integer for integer literals},
//   objects {o: [key, value] pairs in document order}, arrays, strings, booleans, null.
// ---------------------------------------------------------------------------------------------

type Canon = null | boolean | string | { n: string; i?: string } | Canon[] | { o: [string, Canon][] };
type Reading = { ok: true; v: Canon } | { ok: false; kind: string };

/** CPython's json, strict about what it reads, numbers tagged so nothing is rounded on the way back. */
const PYTHON = String.raw`
import base64, json, sys

class Duplicate(Exception):
    pass

class Constant(Exception):
    pass

def pairs(ps):
    seen = set()
    for k, _ in ps:
        if k in seen:
            raise Duplicate(k)
        seen.add(k)
    return {"o": [[k, v] for k, v in ps]}

def as_int(s):
    i = int(s)
    try:
        f = repr(float(i))
    except OverflowError:
        f = "inf" if i > 0 else "-inf"
    return {"n": f, "i": str(i)}

def as_float(s):
    return {"n": repr(float(s))}

def constant(c):
    raise Constant(c)

out = []
for line in sys.stdin.read().split("\n"):
    if line == "":
        continue
    data = base64.b64decode(line)
    try:
        text = data.decode("utf-8")
        v = json.loads(text, object_pairs_hook=pairs, parse_int=as_int, parse_float=as_float, parse_constant=constant)
        out.append({"ok": True, "v": v})
    except UnicodeDecodeError:
        out.append({"ok": False, "kind": "decode"})
    except Duplicate:
        out.append({"ok": False, "kind": "duplicate"})
    except Constant:
        out.append({"ok": False, "kind": "constant"})
    except RecursionError:
        out.append({"ok": False, "kind": "depth"})
    except ValueError:
        out.append({"ok": False, "kind": "syntax"})
sys.stdout.write(json.dumps(out, ensure_ascii=True))
`;

/** Python's readings of many inputs in one subprocess. Fails the test (never skips) without python3. */
function readWithPython(inputs: readonly Buffer[]): Reading[] {
  const r = spawnSync('python3', ['-c', PYTHON], {
    input: inputs.map((b) => b.toString('base64')).join('\n'),
    maxBuffer: 512 * 1024 * 1024,
    encoding: 'utf8',
  });
  if (r.error || r.status !== 0) {
    throw new Error(`python3 failed (needed for the differential test): ${r.error?.message ?? r.stderr}`);
  }
  const raw = JSON.parse(r.stdout) as Array<{ ok: boolean; v?: unknown; kind?: string }>;
  expect(raw).toHaveLength(inputs.length);
  return raw.map((x) => (x.ok ? { ok: true, v: fromPython(x.v) } : { ok: false, kind: x.kind ?? '?' }));
}

/** Python's number tags carry repr(float); print that double the way JS does. */
function fromPython(v: unknown): Canon {
  if (v === null || typeof v !== 'object') return v as Canon;
  if (Array.isArray(v)) return v.map(fromPython);
  const o = v as { n?: string; i?: string; o?: [string, unknown][] };
  if (o.o) return { o: o.o.map(([k, x]) => [k, fromPython(x)]) };
  const d = Number(o.n === 'inf' ? Infinity : o.n === '-inf' ? -Infinity : o.n);
  return { n: String(d === 0 ? 0 : d), ...(o.i !== undefined ? { i: o.i } : {}) };
}

/** lossless-json: throws on repeated keys with different values; numbers stay literal text. */
function readWithLossless(bytes: Buffer): Reading {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return { ok: false, kind: 'decode' };
  }
  try {
    return { ok: true, v: fromLossless(losslessParse(text)) };
  } catch {
    return { ok: false, kind: 'error' };
  }
}

function fromLossless(v: unknown): Canon {
  if (isLosslessNumber(v)) {
    const text = v.value;
    const d = Number(text);
    const integer = /^-?\d+$/.test(text);
    return { n: String(d === 0 ? 0 : d), ...(integer ? { i: BigInt(text).toString() } : {}) };
  }
  if (v === null || typeof v !== 'object') return v as Canon;
  if (Array.isArray(v)) return v.map(fromLossless);
  return { o: Object.keys(v).map((k) => [k, fromLossless((v as Record<string, unknown>)[k])]) };
}

/** The path of the first difference between the broker's reading and another, or null when equal. */
function difference(broker: JsonValue, other: Canon, path = '$'): string | null {
  if (typeof broker === 'number') {
    if (other === null || typeof other !== 'object' || !('n' in other))
      return `${path}: number vs ${JSON.stringify(other)}`;
    if (String(broker) !== other.n) return `${path}: ${broker} vs ${other.n}`;
    // An integer literal must be read as exactly the same integer.
    if (other.i !== undefined && (!Number.isInteger(broker) || BigInt(broker).toString() !== other.i))
      return `${path}: ${broker} vs integer ${other.i}`;
    return null;
  }
  if (broker === null || typeof broker !== 'object') {
    return broker === other ? null : `${path}: ${JSON.stringify(broker)} vs ${JSON.stringify(other)}`;
  }
  if (Array.isArray(broker)) {
    if (!Array.isArray(other) || other.length !== broker.length)
      return `${path}: array vs ${JSON.stringify(other)}`;
    for (let i = 0; i < broker.length; i++) {
      const d = difference(broker[i] as JsonValue, other[i] as Canon, `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (other === null || typeof other !== 'object' || !('o' in other))
    return `${path}: object vs ${JSON.stringify(other)}`;
  const mine = Object.keys(broker).sort();
  const theirs = other.o.map(([k]) => k).sort();
  if (JSON.stringify(mine) !== JSON.stringify(theirs))
    return `${path}: keys ${JSON.stringify(mine)} vs ${JSON.stringify(theirs)}`;
  const byKey = new Map(other.o);
  for (const k of mine) {
    const d = difference(broker[k] as JsonValue, byKey.get(k) as Canon, `${path}[${JSON.stringify(k)}]`);
    if (d) return d;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Generators: documents written token by token, so keys can repeat and every string, key and
// number can be spelled in more than one way.
// ---------------------------------------------------------------------------------------------

type Doc =
  | { t: 'lit'; text: string }
  | { t: 'str'; value: string; escape: 'json' | 'all' | 'some' }
  | { t: 'arr'; items: Doc[] }
  | { t: 'obj'; pairs: [Doc & { t: 'str' }, Doc][] };

/** Write a string with the chosen escaping: as JSON.stringify does, every unit as \\uXXXX, or a mix. */
function writeString(value: string, style: 'json' | 'all' | 'some'): string {
  if (style === 'json') return JSON.stringify(value);
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const forced = c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff);
    if (style === 'all' || forced || i % 2 === 0) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += value[i];
  }
  return `${out}"`;
}

function write(d: Doc, ws: string): string {
  switch (d.t) {
    case 'lit':
      return d.text;
    case 'str':
      return writeString(d.value, d.escape);
    case 'arr':
      return `[${ws}${d.items.map((x) => write(x, ws)).join(`${ws},${ws}`)}${ws}]`;
    case 'obj':
      return `{${ws}${d.pairs.map(([k, v]) => `${write(k, ws)}${ws}:${ws}${write(v, ws)}`).join(`${ws},${ws}`)}${ws}}`;
  }
}

const escapeStyle = fc.constantFrom<'json' | 'all' | 'some'>('json', 'json', 'all', 'some');
const lit = (text: string): Doc => ({ t: 'lit', text });
const str = (value: string, style: 'json' | 'all' | 'some' = 'json'): Doc & { t: 'str' } => ({
  t: 'str',
  value,
  escape: style,
});

const numberText = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.constantFrom(
    '9007199254740991',
    '-9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '-9007199254740993',
    '123456789012345678901234567890',
    '1e308',
    '1.7976931348623157e308',
    '1e309',
    '-1e400',
    '1e-400',
    '4.9e-324',
    '-0',
    '-0.0',
    '0e0',
    '1E2',
    '1.0',
    '0.1',
    '0.30000000000000004',
    '100000000000000000000.5',
  ),
  fc
    .tuple(
      fc.boolean(),
      fc.stringMatching(/^(0|[1-9]\d{0,24})$/),
      fc.option(fc.stringMatching(/^\d{1,20}$/)),
      fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.nat(400))),
    )
    .map(
      ([neg, int, frac, exp]) =>
        `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}${exp ? `${exp[0]}${exp[1]}${exp[2]}` : ''}`,
    ),
);

const keyText = fc.oneof(
  fc.constantFrom(
    'method',
    'name',
    'params',
    'id',
    'arguments',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'a',
    'A',
    'é',
    'e\u0301',
    'ＤＥＬＥＴＥ',
    '0',
    '1',
    '10',
    '-1',
    '',
  ),
  fc.string({ unit: 'binary', maxLength: 6 }),
);

const stringText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.constantFrom('\u2028\u2029', '\0', '😀', '\ud83d', '\ude00', 'jira.delete_issue', '"\\/'),
);

/** `value` once in `1 + oneIn` draws, null otherwise. */
function sometimes<T>(value: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: oneIn }, { arbitrary: value, weight: 1 });
}

/** Objects may repeat a key: the same spelling or another, the same value or another. */
function objectOf(value: fc.Arbitrary<Doc>): fc.Arbitrary<Doc> {
  return fc
    .tuple(
      fc.array(fc.tuple(keyText, escapeStyle, value), { maxLength: 5 }),
      sometimes(fc.tuple(fc.nat(), escapeStyle, fc.boolean(), value), 5),
    )
    .map(([entries, dup]) => {
      const pairs: [Doc & { t: 'str' }, Doc][] = entries.map(([k, e, v]) => [str(k, e), v]);
      if (dup && pairs.length > 0) {
        const [at, e, sameValue, v] = dup;
        const [k, v0] = pairs[at % pairs.length]!;
        pairs.push([str(k.value, e), sameValue ? v0 : v]);
      }
      return { t: 'obj', pairs };
    });
}

const { doc } = fc.letrec<{ doc: Doc }>((tie) => ({
  doc: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(lit('null'), lit('true'), lit('false')),
    numberText.map(lit),
    fc.tuple(stringText, escapeStyle).map(([v, e]) => str(v, e)),
    fc.array(tie('doc'), { maxLength: 4 }).map((items): Doc => ({ t: 'arr', items })),
    objectOf(tie('doc')),
  ),
}));

/** Nesting around the broker's bound (the message itself and params add levels). */
const deep = fc
  .tuple(fc.integer({ min: MAX_JSON_DEPTH - 6, max: MAX_JSON_DEPTH + 2 }), fc.boolean(), doc)
  .map(([levels, objects, inner]) => {
    let d = inner;
    for (let i = 0; i < levels; i++)
      d = objects ? { t: 'obj', pairs: [[str('a'), d]] } : { t: 'arr', items: [d] };
    return d;
  });

const whitespace = fc.constantFrom('', '', ' ', '\n', '\t', '\r\n  ');

/** JSON-RPC messages as an agent could send them, many of them hostile. */
const message = fc
  .record({
    id: fc.oneof(
      fc.integer().map(String),
      fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
      numberText,
    ),
    method: fc.constantFrom('tools/call', 'tools/call', 'tools/list', 'ping', 'notifications/initialized'),
    name: fc.constantFrom('jira.get_issue', 'jira.delete_issue', 'jira.search'),
    nameEscape: escapeStyle,
    args: fc.oneof(objectOf(doc), objectOf(fc.oneof(doc, deep))),
    duplicateTop: sometimes(fc.constantFrom('method', 'id', 'params', 'jsonrpc'), 4),
    duplicateName: sometimes(fc.constant(true), 5),
    proto: sometimes(doc, 2),
    reversed: fc.boolean(),
    bom: fc.integer({ min: 0, max: 40 }),
    ws: whitespace,
  })
  .map((m): Buffer => {
    const params: Doc = {
      t: 'obj',
      pairs: [
        [str('name'), str(m.name, m.nameEscape)],
        [
          str('arguments'),
          m.proto && m.args.t === 'obj'
            ? { t: 'obj', pairs: [[str('__proto__'), m.proto], ...m.args.pairs] }
            : m.args,
        ],
        ...(m.duplicateName
          ? ([[str('name', 'all'), str('jira.get_issue')]] as [Doc & { t: 'str' }, Doc][])
          : []),
      ],
    };
    const pairs: [Doc & { t: 'str' }, Doc][] = [
      [str('jsonrpc'), str('2.0')],
      ...(m.method.startsWith('notifications/')
        ? []
        : ([[str('id'), lit(m.id)]] as [Doc & { t: 'str' }, Doc][])),
      [str('method'), str(m.method)],
      [str('params'), m.method === 'tools/call' ? params : { t: 'obj', pairs: [] }],
    ];
    if (m.duplicateTop === 'method') pairs.push([str('method'), str('tools/list')]);
    if (m.duplicateTop === 'id') pairs.push([str('id', 'some'), lit('99')]);
    if (m.duplicateTop === 'params')
      pairs.push([str('params'), { t: 'obj', pairs: [[str('name'), str('jira.get_issue')]] }]);
    if (m.duplicateTop === 'jsonrpc') pairs.push([str('jsonrpc', 'all'), str('2.0')]);
    if (m.reversed) pairs.reverse();
    const text = write({ t: 'obj', pairs }, m.ws);
    return Buffer.from(m.bom === 0 ? `\ufeff${text}` : text);
  });

/** Hand-written cases: the smuggling attempts of the issue and the edges named in it. */
const CORPUS = [
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"jira.delete_issue"}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"jira.delete_issue","name":"jira.get_issue"}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"jira.delete_issue"},"params":{"name":"jira.get_issue"}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"jira.get_issue","n\\u0061me":"jira.delete_issue"}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":{"b":[{"c":1,"c":2}]}}}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"__proto__":{"admin":true}}}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"__proto__":1,"__proto__":2}}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"n":9007199254740993}}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"n":1e400}}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"s":"\\ud800"}}}',
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"s":"\\ud83d\\ude00 \\u00e9"}}}',
  '{"jsonrpc":"2.0","id":9007199254740991,"method":"ping"}',
  '\ufeff{"jsonrpc":"2.0","id":1,"method":"ping"}',
].map((s) => Buffer.from(s));

// ---------------------------------------------------------------------------------------------

interface Case {
  bytes: Buffer;
  broker: ReturnType<typeof parseAgentMessage>;
  /** The strict parser's own verdict (its problem kind), independent of JSON-RPC validation. */
  strict: ReturnType<typeof parseStrictJson> | null;
  python: Reading;
  lossless: Reading;
  /** For accepted messages: the forwarded bytes as Python and lossless-json read them. */
  forwardedPython?: Reading;
  forwardedLossless?: Reading;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function strictOf(bytes: Buffer): ReturnType<typeof parseStrictJson> | null {
  try {
    return parseStrictJson(UTF8.decode(bytes), { maxDepth: MAX_JSON_DEPTH });
  } catch {
    return null; // not UTF-8
  }
}

let messages: Case[] = [];
let documents: Case[] = [];

function buildCases(inputs: Buffer[]): Case[] {
  const broker = inputs.map((b) => parseAgentMessage(b));
  const python = readWithPython(inputs);
  const forwards = broker.flatMap((r) => (r.ok ? [r.forward] : []));
  const forwardedPython = readWithPython(forwards);
  let f = 0;
  return inputs.map((bytes, i) => {
    const r = broker[i]!;
    const c: Case = {
      bytes,
      broker: r,
      strict: strictOf(bytes),
      python: python[i]!,
      lossless: readWithLossless(bytes),
    };
    if (r.ok) {
      c.forwardedPython = forwardedPython[f++]!;
      c.forwardedLossless = readWithLossless(r.forward);
    }
    return c;
  });
}

beforeAll(() => {
  messages = buildCases([...CORPUS, ...fc.sample(message, { seed, numRuns: MESSAGES })]);
  const docInputs = fc
    .sample(fc.tuple(fc.oneof(doc, deep), whitespace), { seed: seed + 1, numRuns: DOCUMENTS })
    .map(([d, ws]) => Buffer.from(`${ws}${write(d, ws)}${ws}`));
  documents = buildCases(docInputs);
}, 120_000);

const show = (c: Case) => c.bytes.toString('utf8').slice(0, 300);

describe('differential: the broker parser, Python json and lossless-json read the same bytes', () => {
  it('every MCP message the broker accepts is read identically by Python and lossless-json', () => {
    for (const c of messages) {
      if (!c.broker.ok) continue;
      const decided = c.broker.json as unknown as JsonValue;
      expect(c.python, show(c)).toMatchObject({ ok: true });
      expect(c.lossless, show(c)).toMatchObject({ ok: true });
      if (c.python.ok) expect(difference(decided, c.python.v), `python: ${show(c)}`).toBeNull();
      if (c.lossless.ok) expect(difference(decided, c.lossless.v), `lossless: ${show(c)}`).toBeNull();
    }
  });

  it('the bytes forwarded upstream are read by Python, lossless-json and JSON.parse as the decided message', () => {
    for (const c of messages) {
      if (!c.broker.ok) continue;
      const decided = c.broker.json as unknown as JsonValue;
      expect(c.forwardedPython, show(c)).toMatchObject({ ok: true });
      expect(c.forwardedLossless, show(c)).toMatchObject({ ok: true });
      if (c.forwardedPython?.ok) expect(difference(decided, c.forwardedPython.v), show(c)).toBeNull();
      if (c.forwardedLossless?.ok) expect(difference(decided, c.forwardedLossless.v), show(c)).toBeNull();
      expect(JSON.parse(c.broker.forward.toString('utf8'))).toEqual(decided);
      // And the broker reads its own bytes back as the same message (one reading, end to end).
      const again = parseAgentMessage(c.broker.forward);
      expect(again.ok && again.forward.equals(c.broker.forward), show(c)).toBe(true);
    }
  });

  it('a repeated key is refused when Python finds one, and named in the error', () => {
    for (const c of [...messages, ...documents]) {
      const problem = c.strict !== null && !c.strict.ok ? c.strict.problem : null;
      // The broker reports a repeated key unless the text is not JSON at all; Python reports the
      // same, so a repeated key the broker names is one Python finds.
      if (problem?.kind === 'duplicate-key') {
        expect(c.python, show(c)).toEqual({ ok: false, kind: 'duplicate' });
        expect(problem.message, show(c)).toMatch(/^duplicate key ".*" at \$/s);
      }
      // Where Python finds one, the broker refuses the document too (a number or lone surrogate
      // before the repeated key may be what it names first).
      if (!c.python.ok && c.python.kind === 'duplicate') {
        expect(problem, show(c)).not.toBeNull();
        expect(problem?.kind, show(c)).not.toBe('syntax');
      }
    }
  });

  it('the broker refuses as malformed only what Python refuses too', () => {
    for (const c of [...messages, ...documents]) {
      if (c.strict !== null && !c.strict.ok && c.strict.problem.kind === 'syntax')
        expect(c.python.ok, show(c)).toBe(false);
    }
  });

  it('any JSON document the strict parser accepts is read identically by Python and lossless-json', () => {
    for (const c of documents) {
      if (!c.strict?.ok) continue;
      expect(c.python, show(c)).toMatchObject({ ok: true });
      expect(c.lossless, show(c)).toMatchObject({ ok: true });
      if (c.python.ok) expect(difference(c.strict.value, c.python.v), show(c)).toBeNull();
      if (c.lossless.ok) expect(difference(c.strict.value, c.lossless.v), show(c)).toBeNull();
    }
  });

  it('the generated inputs cover each case the test is about (so it cannot pass on easy inputs)', () => {
    const all = [...messages, ...documents];
    const kinds = (k: string) =>
      all.filter((c) => c.strict && !c.strict.ok && c.strict.problem.kind === k).length;
    const accepted = messages.filter((c) => c.broker.ok);
    const text = (c: Case) => c.bytes.toString('utf8');
    const counts = {
      acceptedMessages: accepted.length,
      acceptedToolCalls: accepted.filter(
        (c) => c.broker.ok && c.broker.message.kind === 'request' && c.broker.message.method === 'tools/call',
      ).length,
      acceptedDocuments: documents.filter((c) => c.strict?.ok).length,
      duplicates: kinds('duplicate-key'),
      loneSurrogates: kinds('string'),
      numbersRefused: kinds('number'),
      tooDeep: kinds('too-deep'),
      syntax: kinds('syntax'),
      acceptedWithEscapes: accepted.filter((c) => text(c).includes('\\u')).length,
      acceptedWithProto: accepted.filter((c) => text(c).includes('"__proto__"')).length,
      acceptedWithExponent: accepted.filter((c) => /\d[eE][+-]?\d/.test(text(c))).length,
      acceptedWithBigSafeInteger: accepted.filter((c) => /\d{15,16}/.test(text(c))).length,
    };
    for (const [name, n] of Object.entries(counts))
      expect(n, `${name} in ${JSON.stringify(counts)}`).toBeGreaterThanOrEqual(10 * Math.min(1, scale));
  });
});
