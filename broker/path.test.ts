import { describe, expect, it } from 'vitest';
import { normaliseProxyPath, providerNameProblem } from './path.js';

describe('normaliseProxyPath', () => {
  it.each([
    ['plain path', '/api/v1/tickets/1', '/', '/api/v1/tickets/1', '/api/v1/tickets/1'],
    ['base path joined', '/tickets/1', '/api/', '/tickets/1', '/api/tickets/1'],
    ['base without slash', '/tickets', '/api', '/tickets', '/api/tickets'],
    ['query kept upstream, not in policy path', '/search?q=a%20b&x=1', '/', '/search', '/search?q=a%20b&x=1'],
    ['empty rest', '', '/api', '/', '/api/'],
    ['trailing slash', '/api/v1/', '/', '/api/v1/', '/api/v1/'],
    ['encoded space decoded for policy', '/files/a%20b', '/', '/files/a b', '/files/a%20b'],
    ['dots inside a name are fine', '/files/a..b/c.txt', '/', '/files/a..b/c.txt', '/files/a..b/c.txt'],
  ])('%s', (_name, rest, base, policyPath, upstreamPath) => {
    expect(normaliseProxyPath(rest, base)).toEqual({ ok: true, policyPath, upstreamPath });
  });

  it.each([
    ['dot-dot segment', '/api/../admin', /dot segments/],
    ['dot-dot at the start (escapes base)', '/../etc/passwd', /dot segments/],
    ['single dot segment', '/api/./x', /dot segments/],
    ['encoded dot-dot', '/api/%2e%2e/admin', /dot segments/],
    ['mixed-case encoded dot-dot', '/api/%2E./admin', /dot segments/],
    ['encoded slash', '/api/a%2fb', /encoded slash/],
    ['encoded slash upper case', '/api/a%2Fb', /encoded slash/],
    ['encoded backslash', '/api/a%5cb', /encoded slash or backslash/],
    ['double encoding of slash', '/api/a%252fb', /double encoding/],
    ['double encoding of dot', '/api/%252e%252e/x', /double encoding/],
    ['raw backslash', '/api\\..\\admin', /not allowed in a URL path/],
    ['encoded NUL', '/api/a%00b', /control character/],
    ['empty interior segment', '/api//admin', /"\/\/"/],
    ['malformed escape', '/api/a%zzb', /malformed percent-encoding/],
    ['invalid UTF-8', '/api/%ff', /not valid UTF-8/],
    ['no leading slash', 'api', /must start with/],
    ['space', '/api/a b', /not allowed/],
    ['malformed escape in query', '/x?a=%zz', /query has malformed/],
  ])('refuses %s', (_name, rest, message) => {
    const r = normaliseProxyPath(rest, '/base');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });

  it('never produces an upstream path outside the base', () => {
    const attempts = ['/..', '/%2e%2e', '/a/../../b', '/%2e%2e%2f%2e%2e', '/.%2e/x', '/x/..%2f..'];
    for (const a of attempts) {
      const r = normaliseProxyPath(a, '/base');
      if (r.ok) expect(r.upstreamPath.startsWith('/base/')).toBe(true);
    }
  });
});

describe('providerNameProblem', () => {
  it.each(['jira', 'my-api', 'a.b'])('accepts %s', (n) => expect(providerNameProblem(n)).toBeNull());
  it.each(['Jira', '..', '-x', 'a_b', '%2e'])('refuses %s', (n) =>
    expect(providerNameProblem(n)).toMatch(/not a valid/),
  );
});
