import { describe, expect, it } from 'vitest';
import { enableLinearRegexFallback, regexProblem } from './regex-safety.js';

describe('regexProblem', () => {
  it.each([
    ['anchored ticket id', '^SUP-[0-9]+$'],
    ['alternation without repetition', '^(SUP|OPS)-[0-9]+$'],
    ['optional group with quantifier inside', '^a(b+)?$'],
    ['fixed repetition of a plain group', '^(ab){3}$'],
    ['quantifier chars inside a class', '^[+*?]+$'],
    ['escaped parenthesis then plus', '^\\(a\\)+$'],
    ['lazy quantifier', '^a+?b$'],
    ['non-capturing group repeated', '^(?:ab)+$'],
    ['named group', '^(?<id>[0-9]+)$'],
  ])('accepts %s: %s', (_name, pattern) => {
    expect(regexProblem(pattern)).toBeNull();
  });

  it.each([
    ['nested plus (the classic)', '^(a+)+$', 'nested quantifier'],
    ['nested star in non-capturing group', '(?:a*b?)*', 'nested quantifier'],
    ['fixed count over a quantified group', '(a+){10}', 'nested quantifier'],
    ['deeper nesting', '((a+)b)+', 'nested quantifier'],
    ['quantified overlapping alternation', '^(a|ab)*$', 'quantified alternation'],
    ['backreference', '^(a)\\1$', 'backreference'],
    ['named backreference', '^(?<x>a)\\k<x>$', 'backreference'],
    ['lookahead', '^(?=a)a$', 'lookaround'],
    ['negative lookbehind', '(?<!a)b', 'lookaround'],
    ['invalid syntax', '^(a$', 'invalid regular expression'],
    ['too long', 'a'.repeat(2000), 'limit is 1024'],
  ])('rejects %s: %s', (_name, pattern, fragment) => {
    expect(regexProblem(pattern)?.message).toContain(fragment);
  });

  it('gives a hint for every rejection', () => {
    expect(regexProblem('^(a+)+$')?.hint).toMatch(/exponential/);
  });
});

describe('enableLinearRegexFallback', () => {
  it('lets even a catastrophic pattern finish on 50 a + "!" (defence in depth for the process)', () => {
    enableLinearRegexFallback();
    // Without the fallback this call backtracks ~2^50 times and never returns.
    expect(/^(a+)+$/.test(`${'a'.repeat(50)}!`)).toBe(false);
  });
});
