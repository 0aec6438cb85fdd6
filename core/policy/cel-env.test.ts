import { describe, expect, it } from 'vitest';
import { celEnvironment, cidrProblem, inCidr } from './cel-env.js';

describe('inCidr', () => {
  it.each([
    ['10.1.2.3', '10.0.0.0/8', true],
    ['11.1.2.3', '10.0.0.0/8', false],
    ['192.168.1.7', '192.168.1.7', true],
    ['2001:db8::1', '2001:db8::/32', true],
    ['2001:db9::1', '2001:db8::/32', false],
    ['10.1.2.3', '2001:db8::/32', false],
    ['not-an-ip', '10.0.0.0/8', false],
  ])('%s in %s → %s', (ip, cidr, expected) => {
    expect(inCidr(ip, cidr)).toBe(expected);
  });

  it.each([
    ['10.0.0.0/33', 'invalid prefix length'],
    ['10.0.0/8', 'not a CIDR range'],
    ['::/129', 'invalid prefix length'],
  ])('rejects %s', (cidr, fragment) => {
    expect(cidrProblem(cidr)).toContain(fragment);
  });
});

describe('helpers available in CEL', () => {
  it.each([
    ["'jira.get_issue'.glob('jira.get_*')", true],
    ["glob('jira.*', 'github.x')", false],
    ["'10.0.0.1'.inCidr('10.0.0.0/8')", true],
    ["inCidr('10.0.0.1', '192.168.0.0/16')", false],
    ["timestamp('2026-01-05T10:00:00Z').getHours('Asia/Tokyo') == 19", true],
    ["duration('90m') == duration('1h30m')", true],
  ])('%s → %s', (expression, expected) => {
    expect(celEnvironment().evaluate(expression)).toBe(expected);
  });
});
