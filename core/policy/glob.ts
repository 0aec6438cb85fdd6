/**
 * Glob matching for tool names and HTTP paths, in O(pattern × input) time with
 * no regular expressions, so a policy author's pattern can never backtrack
 * exponentially on an attacker-chosen tool name or path.
 *
 * Tool globs: `*` matches any run of characters (including `.`), `?` one character.
 * Path globs: split on `/`; within a segment `*` and `?` as above, a whole
 * segment `**` matches any number (zero or more) of segments.
 */

export type GlobMatcher = (input: string) => boolean;

/**
 * Wildcard matching over token sequences with the classic "remember the last
 * star and retry from there" algorithm: each input token is revisited at most
 * once per star, so the cost is bounded by pattern length × input length.
 */
function wildcardMatch<P, I>(
  pattern: readonly P[],
  input: readonly I[],
  isStar: (p: P) => boolean,
  matchOne: (p: P, i: I) => boolean,
): boolean {
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < input.length) {
    const pt = pattern[p];
    if (pt !== undefined && isStar(pt)) {
      starP = p++;
      starI = i;
    } else if (pt !== undefined && matchOne(pt, input[i] as I)) {
      p++;
      i++;
    } else if (starP >= 0) {
      p = starP + 1;
      i = ++starI;
    } else {
      return false;
    }
  }
  while (p < pattern.length && isStar(pattern[p] as P)) p++;
  return p === pattern.length;
}

/**
 * True when `s` matches the character glob `pattern` (`*` any run, `?` one
 * UTF-16 code unit). Same algorithm as wildcardMatch, on string indices so the
 * hot path allocates nothing.
 */
export function matchCharGlob(pattern: string, s: string): boolean {
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  const pl = pattern.length;
  while (i < s.length) {
    const pc = p < pl ? pattern.charCodeAt(p) : -1;
    if (pc === 42 /* * */) {
      starP = p++;
      starI = i;
    } else if (pc === 63 /* ? */ || (pc !== -1 && pc === s.charCodeAt(i))) {
      p++;
      i++;
    } else if (starP >= 0) {
      p = starP + 1;
      i = ++starI;
    } else {
      return false;
    }
  }
  while (p < pl && pattern.charCodeAt(p) === 42) p++;
  return p === pl;
}

/** Characters Unicode says to ignore when comparing identifiers (soft hyphen, zero-width joiners, …). */
const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
const NON_ASCII = /[\u0080-\uffff]/;
/** toLowerCase picks final sigma by context; case folding has one sigma. */
const FINAL_SIGMA = /ς/g;

/**
 * The form Deny tool globs compare in: NFKC, then case folded, then NFKC again, without default
 * ignorable code points — Unicode's NFKC_Casefold, approximated with what JavaScript offers
 * (lower → upper → lower applies the full case mappings: "ß" and "ẞ" → "ss", "K" (Kelvin) → "k";
 * final sigma is mapped to σ as case folding does). Fullwidth "ＤＥＬＥＴＥ" and "DELETE" both become "delete".
 * Not covered: look-alikes across scripts (Cyrillic "е" is not Latin "e"; confusables are not a
 * normalisation) — the broker refuses non-ASCII tool names and names no upstream advertised.
 */
export function foldToolName(s: string): string {
  // Every Deny glob of a decision folds the same tool name: remember the last one (a one-entry
  // cache, so a decision over many Deny rules folds once instead of once per glob).
  if (s === lastFoldIn) return lastFoldOut;
  const folded = foldUncached(s);
  lastFoldIn = s;
  lastFoldOut = folded;
  return folded;
}

let lastFoldIn = '';
let lastFoldOut = '';

function foldUncached(s: string): string {
  if (!NON_ASCII.test(s)) return s.toLowerCase(); // ASCII is NFKC already; the common case stays cheap
  return s
    .normalize('NFKC')
    .toLowerCase()
    .toUpperCase()
    .toLowerCase()
    .replace(FINAL_SIGMA, 'σ')
    .normalize('NFKC')
    .replace(DEFAULT_IGNORABLE, '');
}

/**
 * Compile a tool-name glob once; common shapes become plain string tests. `caseInsensitive`
 * (Deny rules) folds the pattern and every name with foldToolName before matching, so a Deny on
 * `*delete*` also matches `jira.DELETE_ISSUE` and `ｊｉｒａ．ｄｅｌｅｔｅ`; `*` and `?` then match folded text.
 */
export function compileToolGlob(pattern: string, options: { caseInsensitive?: boolean } = {}): GlobMatcher {
  if (options.caseInsensitive) {
    const exact = compileToolGlob(foldToolName(pattern));
    return (s) => exact(foldToolName(s));
  }
  if (pattern === '*') return () => true;
  if (pattern.includes('?')) return (s) => matchCharGlob(pattern, s);
  const stars = pattern.split('*').length - 1;
  if (stars === 0) return (s) => s === pattern;
  if (stars === 1 && pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    return (s) => s.startsWith(prefix);
  }
  if (stars === 1 && pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    return (s) => s.endsWith(suffix);
  }
  if (stars === 2 && pattern.startsWith('*') && pattern.endsWith('*')) {
    const middle = pattern.slice(1, -1);
    return (s) => s.includes(middle);
  }
  return (s) => matchCharGlob(pattern, s);
}

/**
 * The literal text every tool name matching `pattern` starts with: the pattern up to its first
 * `*` or `?`, folded like the matcher when `caseInsensitive` ('' when the glob starts with a
 * wildcard). A name can match only if this is a prefix of the name (folded the same way), which
 * is what lets a policy set look rules up by tool instead of trying each one.
 */
export function toolGlobPrefix(pattern: string, options: { caseInsensitive?: boolean } = {}): string {
  const p = options.caseInsensitive ? foldToolName(pattern) : pattern;
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 42 /* * */ || c === 63 /* ? */) return p.slice(0, i);
  }
  return p;
}

/** Length of the literal pieces (n-grams) a policy set indexes wildcard-leading tool globs by. */
export const TOOL_GRAM = 3;

/**
 * For a glob that starts with a wildcard (no literal prefix): TOOL_GRAM characters every matching
 * tool name contains — the end of the glob's longest literal run (folded like the matcher when
 * `caseInsensitive`), or '' when no run is that long (`*`, `*a*`). A literal run is matched
 * character for character, so any name the glob matches holds it, and with it this piece: a
 * policy set can look such a rule up by the pieces of the name instead of trying it for every
 * tool (`*.delete_*` is found under "te_" for "jira.delete_issue", not tried for "jira.get").
 */
export function toolGlobGram(pattern: string, options: { caseInsensitive?: boolean } = {}): string {
  const p = options.caseInsensitive ? foldToolName(pattern) : pattern;
  let best = '';
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    const c = i < p.length ? p.charCodeAt(i) : 42;
    if (c !== 42 /* * */ && c !== 63 /* ? */) continue;
    if (i - start >= best.length && i - start >= TOOL_GRAM) best = p.slice(start, i);
    start = i + 1;
  }
  return best.slice(best.length - TOOL_GRAM);
}

/** Compile an HTTP path glob ("/api/v1/tickets/*", "/api/**"). */
export function compilePathGlob(pattern: string): GlobMatcher {
  if (pattern === '**' || pattern === '/**') return () => true;
  const segments = pattern.split('/');
  const isDoubleStar = (seg: string): boolean => seg === '**';
  const segmentMatches = (pat: string, seg: string): boolean =>
    pat === '*' ? true : pat.includes('*') || pat.includes('?') ? matchCharGlob(pat, seg) : pat === seg;
  return (path) => wildcardMatch(segments, path.split('/'), isDoubleStar, segmentMatches);
}

/** Problem with a glob pattern, or null when it is usable. */
export function globProblem(pattern: string): string | null {
  if (pattern.length === 0) return 'empty glob pattern';
  if (pattern.length > 256) return `glob pattern is ${pattern.length} characters long; the limit is 256`;
  return null;
}
