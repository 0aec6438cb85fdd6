import { setFlagsFromString } from 'node:v8';

/**
 * Static safety check for regular expressions written in policies. JavaScript's
 * backtracking engine can take exponential time on patterns like `^(a+)+$`, and
 * tool arguments are attacker-controlled, so patterns that can backtrack
 * catastrophically are rejected when the policy is compiled:
 *   - nested quantifiers: a quantified group that itself contains a quantifier, `(a+)+`, `(a*b?)*`
 *   - quantified alternation: `(a|ab)*` (alternatives may overlap; use a character class)
 *   - backreferences (`\1`, `\k<name>`) and lookarounds (`(?=`, `(?!`, `(?<=`, `(?<!`)
 * This is deliberately stricter than necessary: a rejected pattern can always be
 * rewritten (character classes, anchors, bounded repetition of single atoms).
 */

export interface RegexProblem {
  readonly code: 'invalid_regex' | 'unsafe_regex';
  /** What is wrong, naming the construct and its 0-based offset in the pattern. */
  readonly message: string;
  readonly hint: string;
}

export const MAX_REGEX_LENGTH = 1024;

interface GroupFrame {
  /** Offset of the opening parenthesis. */
  readonly start: number;
  hasQuantifier: boolean;
  hasAlternation: boolean;
}

const QUANTIFIER_BRACES = /^\{(\d+)(,(\d*))?\}/;

/** Returns the first problem in `pattern`, or null when it is safe to run on untrusted input. */
export function regexProblem(pattern: string): RegexProblem | null {
  if (pattern.length > MAX_REGEX_LENGTH) {
    return {
      code: 'unsafe_regex',
      message: `regular expression is ${pattern.length} characters long; the limit is ${MAX_REGEX_LENGTH}`,
      hint: 'shorten the pattern',
    };
  }
  try {
    new RegExp(pattern);
  } catch (err) {
    return {
      code: 'invalid_regex',
      message: `invalid regular expression: ${(err as Error).message}`,
      hint: 'fix the pattern syntax',
    };
  }

  const stack: GroupFrame[] = [{ start: -1, hasQuantifier: false, hasAlternation: false }];
  // The frame of the group that just closed, so a following quantifier can inspect it.
  let lastClosed: GroupFrame | null = null;
  let lastClosedEnd = 0;
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    const top = stack[stack.length - 1] as GroupFrame;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (/[1-9]/.test(next) || (next === 'k' && pattern[i + 2] === '<')) {
        return {
          code: 'unsafe_regex',
          message: `backreference '\\${next}' in pattern '${pattern}'`,
          hint: 'backreferences can take exponential time; match the text explicitly instead',
        };
      }
      lastClosed = null;
      i += 2;
      continue;
    }
    if (c === '[') {
      // Skip the character class; quantifiers inside it are literal characters.
      i++;
      if (pattern[i] === '^') i++;
      if (pattern[i] === ']') i++;
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
      lastClosed = null;
      i++;
      continue;
    }
    if (c === '(') {
      if (
        pattern.startsWith('(?=', i) ||
        pattern.startsWith('(?!', i) ||
        /^\(\?<[=!]/.test(pattern.slice(i, i + 4))
      ) {
        return {
          code: 'unsafe_regex',
          message: `lookaround '${pattern.slice(i, pattern[i + 2] === '<' ? i + 4 : i + 3)}' in pattern '${pattern}'`,
          hint: 'lookarounds are not supported in policies; split the check into several conditions',
        };
      }
      stack.push({ start: i, hasQuantifier: false, hasAlternation: false });
      lastClosed = null;
      // Skip a group prefix — `(?:`, `(?<name>`, `(?i:` — so its '?' is not read as a quantifier.
      const prefix = /^\(\?(<[A-Za-z_$][\w$]*>|[a-z-]*:)/.exec(pattern.slice(i, i + 64));
      i += prefix ? prefix[0].length : 1;
      continue;
    }
    if (c === ')') {
      const closed = stack.length > 1 ? (stack.pop() as GroupFrame) : top;
      const parent = stack[stack.length - 1] as GroupFrame;
      parent.hasQuantifier ||= closed.hasQuantifier;
      lastClosed = closed;
      lastClosedEnd = i + 1;
      i++;
      continue;
    }
    if (c === '|') {
      top.hasAlternation = true;
      lastClosed = null;
      i++;
      continue;
    }
    const braces = c === '{' ? QUANTIFIER_BRACES.exec(pattern.slice(i)) : null;
    if (c === '*' || c === '+' || c === '?' || braces) {
      const length = braces ? braces[0].length : 1;
      // Only quantifiers that allow more than one repetition can multiply backtracking:
      // `?`, `{0,1}` and `{1}` cannot; `{3}` can (`(a+){3}` is cubic).
      const max = braces
        ? braces[2] === undefined
          ? Number(braces[1])
          : braces[3] === ''
            ? Infinity
            : Number(braces[3])
        : c === '?'
          ? 1
          : Infinity;
      if (lastClosed && max > 1) {
        if (lastClosed.hasQuantifier) {
          return {
            code: 'unsafe_regex',
            message: `nested quantifier in pattern '${pattern}': the group '${pattern.slice(lastClosed.start, lastClosedEnd)}' contains a quantifier and is repeated by '${pattern.slice(i, i + length)}'`,
            hint: "nested quantifiers such as '(a+)+' can take exponential time; quantify a single atom or a character class instead, e.g. 'a+'",
          };
        }
        if (lastClosed.hasAlternation) {
          return {
            code: 'unsafe_regex',
            message: `quantified alternation in pattern '${pattern}': the group '${pattern.slice(lastClosed.start, lastClosedEnd)}' contains '|' and is repeated by '${pattern.slice(i, i + length)}'`,
            hint: "overlapping alternatives under a quantifier can take exponential time; use a character class, e.g. '[ab]+' instead of '(a|b)+'",
          };
        }
      }
      const topNow = stack[stack.length - 1] as GroupFrame;
      topNow.hasQuantifier = true;
      // A lazy/possessive marker right after a quantifier is not another quantifier.
      i += length;
      if (pattern[i] === '?') i++;
      lastClosed = null;
      continue;
    }
    lastClosed = null;
    i++;
  }
  return null;
}

let linearFallbackEnabled = false;

/**
 * Defence in depth for long-running processes (broker, authority): tell V8 to
 * switch a regular expression to its linear-time engine once it backtracks
 * excessively. Process-wide; call once from an entry point, not from library code.
 */
export function enableLinearRegexFallback(): void {
  if (linearFallbackEnabled) return;
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  linearFallbackEnabled = true;
}
