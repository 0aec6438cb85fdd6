import { describe, expect, it } from 'vitest';
import { compileSnapshot, ProviderSchema, parseSnapshot } from './snapshot.js';
import { provider, snapshot } from './testing.js';

describe('ProviderSchema', () => {
  it.each([
    ['an MCP target', { name: 'jira', url: 'https://jira.example/mcp', protocol: 'MCP' }],
    ['an HTTP target', { name: 'api', url: 'http://api.example/', protocol: 'HTTP' }],
    ['a PostgreSQL target', { name: 'db', url: 'postgres://db.example:5432/orders', protocol: 'PostgreSQL' }],
    ['a postgresql:// target', { name: 'db', url: 'postgresql://db.example/orders', protocol: 'PostgreSQL' }],
  ])('accepts %s', (_name, value) => {
    expect(ProviderSchema.safeParse(value).success).toBe(true);
  });

  it.each([
    [
      'an MCP target with a postgres URL',
      { name: 'x', url: 'postgres://db/x', protocol: 'MCP' },
      'an http(s)://',
    ],
    [
      'a PostgreSQL target with an https URL',
      { name: 'x', url: 'https://db/x', protocol: 'PostgreSQL' },
      'a postgres://',
    ],
  ])('refuses %s, naming the url field', (_name, value, message) => {
    const r = ProviderSchema.safeParse(value);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['url']);
    expect(r.error?.issues[0]?.message).toContain(message);
  });
});

describe('parseSnapshot providers', () => {
  it('accepts a snapshot without providers (an authority that predates them)', () => {
    const { providers: _, ...old } = snapshot();
    const r = parseSnapshot(old);
    expect(r.ok && r.snapshot.providers).toBeUndefined();
  });

  it('names the field path of a malformed provider', () => {
    const r = parseSnapshot({ ...snapshot(), providers: [{ name: 'jira', url: 'not a url' }] });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toMatch(/providers\.0\.url/);
  });
});

describe('compileSnapshot provider lookup', () => {
  const flags = [
    provider('jira', 'http://flag.example/mcp'),
    provider('wiki', 'http://wiki.flag.example/mcp'),
  ];

  it('prefers the snapshot provider over a --provider flag of the same name', () => {
    const snap = snapshot({
      providers: [provider('jira', 'https://jira.snapshot.example/mcp', 'HTTP', 'X-Token')],
    });
    const r = compileSnapshot(snap, flags);
    expect(r.ok && r.snapshot.providers.get('jira')).toEqual({
      name: 'jira',
      url: 'https://jira.snapshot.example/mcp',
      protocol: 'HTTP',
      inject: { header: 'X-Token', format: 'Bearer {token}' },
    });
  });

  it('falls back to flags only for targets the snapshot does not name', () => {
    const snap = snapshot({ providers: [provider('jira', 'https://jira.snapshot.example/mcp')] });
    const r = compileSnapshot(snap, flags);
    expect(r.ok && [...r.snapshot.providers.keys()].sort()).toEqual(['jira', 'wiki']);
    expect(r.ok && r.snapshot.providers.get('wiki')?.url).toBe('http://wiki.flag.example/mcp');
  });

  it('uses the snapshot providers alone when there are no flags', () => {
    const snap = snapshot({ providers: [provider('db', 'postgres://db.example/orders', 'PostgreSQL')] });
    const r = compileSnapshot(snap);
    expect(r.ok && [...r.snapshot.providers.values()].map((p) => p.protocol)).toEqual(['PostgreSQL']);
  });
});
