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

/** Compile a tool-name glob once; common shapes become plain string tests. */
export function compileToolGlob(pattern: string): GlobMatcher {
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
