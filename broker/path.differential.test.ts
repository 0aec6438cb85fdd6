/**
 * Differential test of the HTTP proxy's path decision (issue 15): the same raw request targets go
 * to the broker's normaliseProxyPath and to independent readers of HTTP paths —
 *   - Python: urllib.parse.urlparse + unquote + posixpath.normpath (broker/testdata/path_reader.py),
 *   - Go: net/url ParseRequestURI + net/http ServeMux's path cleaning (broker/testdata/path-reader.go),
 *   - WHATWG URL (Node's URL, the parser fetch and browsers use), segments decoded,
 *   - a servlet container (Tomcat/Jetty: `;` parameters stripped per segment before decoding,
 *     then dot segments resolved), modelled here from the Servlet/Tomcat documentation.
 * For every target the broker accepts, the path it decided on (policyPath) must equal what each
 * reader reads from what the broker forwards (upstreamPath); so wherever the readers disagree with
 * each other, the broker must have refused. Targets come from fast-check (fixed seed, reproducible)
 * plus a hand table of known attacks, each of which must be refused.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { normaliseProxyPath } from './path.js';

const here = (file: string): string => fileURLToPath(new URL(`./testdata/${file}`, import.meta.url));

type Reading = string | null;

/** Runs a reader process: JSON array of targets in, JSON array of readings out. */
function runReader(cmd: string, args: string[], targets: readonly string[]): Reading[] {
  const r = spawnSync(cmd, args, {
    input: JSON.stringify(targets),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // GOTOOLCHAIN=local: never try to download a toolchain (no network but the registries).
    env: { ...process.env, GOTOOLCHAIN: 'local' },
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Reading[];
  if (out.length !== targets.length) throw new Error(`${cmd} answered ${out.length} of ${targets.length}`);
  return out;
}

const python = (t: readonly string[]): Reading[] => runReader('python3', [here('path_reader.py')], t);
const go = (t: readonly string[]): Reading[] => runReader('go', ['run', here('path-reader.go')], t);

/** Decodes each segment (a decoding router's view); null if a segment is not valid UTF-8. */
function decodeSegments(path: string): Reading {
  try {
    return path
      .split('/')
      .map((s) => decodeURIComponent(s))
      .join('/');
  } catch {
    return null;
  }
}

/** Resolves "." and ".." (RFC 3986 remove_dot_segments); null if ".." climbs above the root. */
function removeDots(path: string): Reading {
  const out: string[] = [];
  const segs = path.split('/').slice(1);
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..' && out.pop() === undefined) return null;
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

/** WHATWG URL: the parser resolves dot segments (also %2e), turns "\" into "/", drops tab/LF/CR. */
function whatwg(target: string): Reading {
  let u: URL;
  try {
    u = new URL(`http://h${target}`);
  } catch {
    return null;
  }
  return decodeSegments(u.pathname);
}

/**
 * A servlet container (Tomcat's CoyoteAdapter / Jetty): path parameters (`;...` up to the next
 * "/") are removed from every segment of the raw path, the rest is decoded (an encoded "/" is
 * refused), consecutive slashes merged and dot segments resolved.
 */
function servlet(target: string): Reading {
  const q = target.search(/[?#]/);
  const raw = q < 0 ? target : target.slice(0, q);
  const stripped = raw
    .split('/')
    .map((s) => (s.includes(';') ? s.slice(0, s.indexOf(';')) : s))
    .join('/');
  if (/%2f/i.test(stripped)) return null;
  const decoded = decodeSegments(stripped);
  if (decoded === null) return null;
  return removeDots(decoded.replace(/\/{2,}/g, '/'));
}

/** Known attacks on path canonicalisation: each must be refused by the broker. */
const ATTACKS: ReadonlyArray<readonly [name: string, target: string]> = [
  ['issue 15: ..; (Tomcat/Jetty read ..)', '/public/..;/private'],
  ['..; with a parameter', '/public/..;x=y/private'],
  ['; on a segment before ..', '/public;x/../private'],
  ['jsessionid path parameter', '/admin;jsessionid=abc'],
  ['encoded ; (Spring decodes, then strips)', '/public/..%3B/private'],
  ['encoded ; lower case', '/public/..%3b/private'],
  ['raw dot-dot', '/public/../private'],
  ['single dot', '/public/./private'],
  ['%2e%2e', '/public/%2e%2e/private'],
  ['%2E%2E upper case', '/public/%2E%2E/private'],
  ['.%2e mixed', '/public/.%2e/private'],
  ['%2e. mixed', '/public/%2e./private'],
  ['encoded slash', '/public%2f..%2fprivate'],
  ['encoded slash upper case', '/public%2F..%2Fprivate'],
  ['encoded backslash', '/public%5c..%5cprivate'],
  ['raw backslash (WHATWG: /)', '/public\\..\\private'],
  ['double-encoded dot', '/public/%252e%252e/private'],
  ['double-encoded slash', '/public%252f..%252fprivate'],
  ['overlong UTF-8 dot', '/public/%C0%AE%C0%AE/private'],
  ['overlong UTF-8 slash', '/public%C0%AF..%C0%AFprivate'],
  ['three-byte overlong dot', '/public/%E0%80%AE%E0%80%AE/private'],
  ['IIS %u escape', '/public/%u002e%u002e/private'],
  ['full-width dots (NFKC ..)', '/public/%EF%BC%8E%EF%BC%8E/private'],
  ['full-width solidus (NFKC /)', '/public%EF%BC%8F..%EF%BC%8Fprivate'],
  ['one-dot leader (NFKC .)', '/public/%E2%80%A4%E2%80%A4/private'],
  ['non-breaking space (NFKC space)', '/admin%C2%A0'],
  ['decomposed é (NFD)', '/files/cafe%CC%81'],
  ['NUL', '/admin%00.json'],
  ['raw NUL', '/admin\u0000'],
  ['tab (WHATWG drops it)', '/ad\tmin'],
  ['LF (WHATWG drops it)', '/ad\nmin'],
  ['encoded tab', '/ad%09min'],
  ['empty segment', '/public//private'],
  ['leading //', '//evil.example/private'],
  ['raw #', '/admin#/public'],
  ['encoded #', '/admin%23/public'],
  ['encoded ?', '/admin%3F/public'],
  ['trailing dot (Windows)', '/admin.'],
  ['trailing space (Windows)', '/admin%20'],
  ['needless encoding of a letter', '/%61dmin'],
  ['needless encoding of a dot', '/admin%2ejson'],
  ['malformed escape', '/admin%zz'],
  ['truncated escape', '/admin%2'],
  ['truncated UTF-8', '/admin%C3'],
  ['lone surrogate (CESU-8)', '/admin%ED%A0%80'],
  ['relative target', 'admin'],
];

/** Paths that must stay accepted (so a broker that refuses everything fails this test). */
const ORDINARY: readonly string[] = [
  '/',
  '/api/v1/tickets/42',
  '/api/v1/tickets/',
  '/files/a..b/c.txt',
  '/files/a%20b.txt',
  '/q/a%3Ab%40c',
  '/u/~alice',
  '/u/%7Ealice',
  '/files/caf%C3%A9',
  "/sub-delims/!$&'()*+,=:@",
  '/search?q=a%20b&x=1;y=2',
];

const BENIGN = [
  'api',
  'v1',
  'x',
  'A',
  '0',
  '-',
  '_',
  '~',
  '.',
  'a.b',
  '%20x',
  '%3A',
  '%40',
  '%2C',
  '%C3%A9',
  '%E2%82%AC',
  '%7E',
  '!',
  '$',
  '&',
  "'",
  '(',
  ')',
  '*',
  '+',
  ',',
  '=',
  ':',
  '@',
];
const HOSTILE = [
  '..',
  '.',
  '%2e',
  '%2E',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '\\',
  ';',
  '%3b',
  '%3B',
  ';x=1',
  '%25',
  '%252e',
  '%00',
  '%09',
  '\t',
  ' ',
  '#',
  '%23',
  '?',
  '%3F',
  '%61',
  '%C0%AE',
  '%C0%AF',
  '%E0%80%AE',
  '%EF%BC%8E',
  '%EF%BC%8F',
  'e%CC%81',
  '%EF%AC%81',
  '%C2%A0',
  '%u002e',
  '%',
  '%zz',
  '%C3',
  '/',
];

const segment = fc
  .array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...BENIGN) }, fc.constantFrom(...HOSTILE)), {
    minLength: 1,
    maxLength: 3,
  })
  .map((t) => t.join(''));
const target = fc
  .tuple(
    fc.array(segment, { minLength: 1, maxLength: 5 }),
    fc.boolean(),
    fc.constantFrom('', '?q=1', '?a=%2e%2e&b=c'),
  )
  .map(([segs, slash, query]) => `/${segs.join('/')}${slash ? '/' : ''}${query}`);

const SEED = Number(process.env.WARDEN_PATH_DIFF_SEED ?? 15);
const GENERATED = fc.sample(target, { numRuns: 3000, seed: SEED });

interface Row {
  readonly target: string;
  readonly forwarded: string;
  readonly decided: string;
  readonly readings: Record<string, Reading>;
}

let rows: Row[] = [];
let refusedGenerated = 0;
/** Generated targets on which the readers, reading the raw target, do not all agree. */
let contested: Array<{ target: string; readings: Reading[] }> = [];

beforeAll(() => {
  const pyRaw = python(GENERATED);
  const goRaw = go(GENERATED);
  contested = GENERATED.map((t, i) => ({
    target: t,
    readings: [pyRaw[i]!, goRaw[i]!, whatwg(t), servlet(t)],
  })).filter((c) => new Set(c.readings.filter((r) => r !== null)).size > 1);

  const accepted: Array<{ target: string; decided: string; forwarded: string }> = [];
  for (const t of [...ORDINARY, ...GENERATED]) {
    const r = normaliseProxyPath(t, '/');
    if (r.ok) accepted.push({ target: t, decided: r.policyPath, forwarded: r.upstreamPath });
    else if (GENERATED.includes(t)) refusedGenerated++;
  }
  // Each reader reads what the broker forwards, not what the agent sent.
  const forwarded = accepted.map((a) => a.forwarded);
  const py = python(forwarded);
  const golang = go(forwarded);
  rows = accepted.map((a, i) => ({
    target: a.target,
    forwarded: a.forwarded,
    decided: a.decided,
    readings: { python: py[i]!, go: golang[i]!, whatwg: whatwg(a.forwarded), servlet: servlet(a.forwarded) },
  }));
}, 180_000);

describe('HTTP path decision vs independent parsers', () => {
  it.each(ATTACKS)('refuses the known attack: %s', (_name, t) => {
    expect(normaliseProxyPath(t, '/').ok).toBe(false);
  });

  it('the readers catch a naive decider (decode and accept) on the classic attacks', () => {
    // Shows the comparison can fail: a decider that only percent-decodes would be told apart.
    const naive = (t: string): Reading => decodeSegments(t.split('?')[0]!);
    const targets = [
      '/public/..;/private', // servlet
      '/admin;jsessionid=abc', // servlet, python (last-segment params)
      '/public/../private', // all
      '/public/%2e%2e/private', // all
      '/public%2f..%2fprivate', // python, go, whatwg
      '/public\\..\\private', // whatwg
      '/ad\tmin', // python, whatwg
    ];
    const py = python(targets);
    const golang = go(targets);
    const caught = targets.map((t, i) =>
      [py[i], golang[i], whatwg(t), servlet(t)].some((r) => r !== null && r !== naive(t)),
    );
    expect(caught).toEqual(targets.map(() => true));
    // Runs the Python and Go readers once more (a Go build when its cache is cold): minutes on a
    // loaded 2-core machine, like the beforeAll above. A ceiling, not a timing assertion.
  }, 180_000);

  it('accepts the ordinary paths, and every reader reads them as the broker decided', () => {
    const ordinary = rows.filter((r) => ORDINARY.includes(r.target));
    expect(ordinary.map((r) => r.target)).toEqual(ORDINARY);
    for (const r of ordinary) {
      expect({ target: r.target, ...r.readings }).toEqual({
        target: r.target,
        python: r.decided,
        go: r.decided,
        whatwg: r.decided,
        servlet: r.decided,
      });
    }
  });

  it(`for every generated target the broker accepts (seed ${SEED}), each reader reads the decided path`, () => {
    const generatedAccepted = rows.filter((r) => !ORDINARY.includes(r.target));
    // Both sides of the decision are exercised.
    expect(generatedAccepted.length).toBeGreaterThan(500);
    expect(refusedGenerated).toBeGreaterThan(500);
    const disagreements = generatedAccepted.flatMap((r) =>
      Object.entries(r.readings)
        // A reader that refuses the target (null) is an upstream that would answer 400: no bypass.
        .filter(([, reading]) => reading !== null && reading !== r.decided)
        .map(([reader, reading]) => ({ target: r.target, decided: r.decided, reader, reading })),
    );
    expect(disagreements).toEqual([]);
  });

  it('refuses every generated target on which the readers disagree with each other', () => {
    // The generator does reach such targets (dot segments, %2F, ;, \\, tab...).
    expect(contested.length).toBeGreaterThan(200);
    const accepted = contested.filter((c) => normaliseProxyPath(c.target, '/').ok);
    expect(accepted).toEqual([]);
  });
});
