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
    ['encoded reserved characters are decoded for policy', '/q/a%3Ab%40c', '/', '/q/a:b@c', '/q/a%3Ab%40c'],
    ['encoded ~ is tolerated (older encoders send it)', '/u/%7Ealice', '/', '/u/~alice', '/u/%7Ealice'],
    ['NFC non-ASCII text', '/files/caf%C3%A9', '/', '/files/café', '/files/caf%C3%A9'],
    [
      '; and similar names in the query are fine',
      '/x?a=1;b=2&method=x&_methods=1',
      '/',
      '/x',
      '/x?a=1;b=2&method=x&_methods=1',
    ],
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
    ['..; (Tomcat/Jetty read it as ..)', '/public/..;/private', /contains ';' \(a path parameter\)/],
    [';jsessionid-style path parameter', '/admin;jsessionid=1', /contains ';'/],
    ['; on a middle segment', '/public;x/../private', /contains ';'/],
    ['encoded ; lower case', '/public/..%3b/private', /encoded ';' \(%3b\)/],
    ['encoded ; upper case', '/admin%3Bx', /encoded ';' \(%3B\)/],
    ['encoded ?', '/a%3Fb', /encoded '\?' or '#'/],
    ['encoded #', '/a%23b', /encoded '\?' or '#'/],
    ['needless encoding of a letter', '/%61dmin', /needless percent-encoding of 'a'/],
    ['needless encoding of a digit', '/v%31', /needless percent-encoding of '1'/],
    ['encoded dot inside a name', '/admin%2ejson', /encoded '\.'/],
    ['trailing dot (Windows drops it)', '/admin.', /ends in '\.' or a space/],
    ['trailing encoded space', '/admin%20', /ends in '\.' or a space/],
    ['triple dot', '/a/...', /ends in '\.'/],
    ['full-width full stops (NFKC: ..)', '/a/%EF%BC%8E%EF%BC%8E/b', /NFKC/],
    ['full-width solidus', '/a%EF%BC%8Fb', /NFKC/],
    ['decomposed é (NFD)', '/files/cafe%CC%81', /NFKC/],
    ['ligature', '/%EF%AC%81le', /NFKC/],
    ['overlong UTF-8 dot', '/a/%C0%AE%C0%AE/b', /not valid UTF-8 \(overlong/],
    ['overlong UTF-8 slash', '/a%C0%AFb', /not valid UTF-8/],
    ['IIS %u escape', '/a/%u002e%u002e/b', /malformed percent-encoding/],
    ['raw #', '/a#b', /not allowed in a URL path/],
    ['raw NUL', '/a\u0000b', /not allowed in a URL path/],
    ['_method in the query', '/x?_method=DELETE', /query parameter '_method' is not allowed/],
    ['_METHOD in upper case', '/x?a=1&_METHOD=DELETE', /query parameter '_METHOD'/],
    ['_method after ;', '/x?a=1;_method=DELETE', /query parameter '_method'/],
    ['encoded _method name', '/x?%5Fmethod=DELETE', /query parameter '%5Fmethod'/],
    ['PHP reads .method as _method', '/x?.method=DELETE', /query parameter '.method'/],
    ['PHP reads +method as _method', '/x?+method=DELETE', /query parameter '\+method'/],
    ['_method as an array', '/x?_method%5B%5D=DELETE', /query parameter '_method%5B%5D'/],
    ['raw brackets in the query', '/x?_method[]=DELETE', /query contains characters/],
    ['Salesforce _HttpMethod', '/x?_HttpMethod=PATCH', /query parameter '_HttpMethod'/],
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
