import { describe, expect, it } from 'vitest';
import { compilePathGlob, compileToolGlob, matchCharGlob } from './glob.js';

describe('tool globs', () => {
  it.each([
    ['jira.get_*', 'jira.get_issue', true],
    ['jira.get_*', 'jira.create_issue', false],
    ['*', 'anything.at.all', true],
    ['jira.create_issue', 'jira.create_issue', true],
    ['jira.create_issue', 'jira.create_issues', false],
    ['*.delete*', 'jira.delete_issue', true],
    ['*.delete*', 'jira.get_issue', false],
    ['jira.?et_issue', 'jira.get_issue', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['', '', true],
    ['*_issue', 'jira.get_issue', true],
    ['*_issue', 'jira.get_issues', false],
    ['*delete*', 'delete', true],
    ['a*', 'a', true],
    ['*a', '', false],
  ])('%s vs %s → %s', (pattern, input, expected) => {
    expect(compileToolGlob(pattern)(input)).toBe(expected);
    expect(matchCharGlob(pattern, input)).toBe(expected);
  });

  it('stays fast on adversarial input (no backtracking blow-up)', () => {
    const match = compileToolGlob('*a*a*a*a*a*a*b');
    // O(pattern × input): completes immediately; an exponential matcher would not.
    expect(match('a'.repeat(5000))).toBe(false);
  });
});

describe('path globs', () => {
  it.each([
    ['/api/v1/tickets/*', '/api/v1/tickets/42', true],
    ['/api/v1/tickets/*', '/api/v1/tickets/42/comments', false],
    ['/api/v1/tickets/**', '/api/v1/tickets/42/comments', true],
    ['/api/v1/tickets/**', '/api/v1/tickets', true],
    ['/api/**/comments', '/api/v1/tickets/42/comments', true],
    ['/api/**/comments', '/api/v1/tickets/42', false],
    ['**', '/anything/at/all', true],
    ['/api/v*/status', '/api/v2/status', true],
    ['/api/v*/status', '/api/v2/x/status', false],
  ])('%s vs %s → %s', (pattern, input, expected) => {
    expect(compilePathGlob(pattern)(input)).toBe(expected);
  });
});
