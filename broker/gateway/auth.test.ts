import { describe, expect, it } from 'vitest';
import { TOKEN_TYPE_AGENT } from '../../core/constants.js';
import { TOKEN_TYPE_JWT } from '../authority-client.js';
import {
  bearerOf,
  callerToken,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  protectedResourceProvider,
  wwwAuthenticate,
} from './auth.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (header: object, payload: object) => `${b64(header)}.${b64(payload)}.c2ln`;

describe('bearerOf', () => {
  it('reads a projected token as jwt with its expiry', () => {
    const b = bearerOf(`Bearer ${jwt({ alg: 'RS256' }, { exp: 1700000000 })}`);
    expect(b).toMatchObject({ ok: true, type: TOKEN_TYPE_JWT, expiresAtMs: 1700000000_000 });
  });
  it('reads a Warden agent token by its typ', () => {
    expect(bearerOf(`bearer ${jwt({ alg: 'ES256', typ: 'warden-agent+jwt' }, {})}`)).toMatchObject({
      ok: true,
      type: TOKEN_TYPE_AGENT,
      expiresAtMs: null,
    });
  });
  it.each([
    ['no header', undefined, true, /needs the agent’s token/],
    ['an empty header', '', true, /needs the agent’s token/],
    ['two headers', ['Bearer a.b.c', 'Bearer d.e.f'], false, /send the header once/],
    ['Basic auth', 'Basic dXNlcjpwYXNz', false, /expected "Bearer <token>"/],
    ['an opaque token', 'Bearer abcdef', false, /not a JWT/],
    ['a JWT whose header is not JSON', `Bearer ${b64('x')}x.${b64({})}.sig`, false, /not a JWT/],
    ['a token too long', `Bearer ${'a'.repeat(9000)}`, false, /longer than 8192/],
  ])('refuses %s', (_name, header, missing, message) => {
    const b = bearerOf(header);
    expect(b.ok).toBe(false);
    if (b.ok) return;
    expect(b.missing).toBe(missing);
    expect(b.message).toMatch(message);
  });
});

describe('callerToken (a PostgreSQL password)', () => {
  it('reads the token as bearerOf does', () => {
    expect(callerToken(jwt({ alg: 'RS256' }, { exp: 1700000000 }), 'password')).toMatchObject({
      ok: true,
      type: TOKEN_TYPE_JWT,
      expiresAtMs: 1700000000_000,
    });
  });
  it.each([
    ['an empty password', '', /^password: the token is not a JWT/],
    ['a password with spaces', 'hunter 2', /^password: the token is not a JWT/],
    ['an ordinary password', 'hunter2', /^password: the token is not a JWT/],
    ['a token too long', 'a'.repeat(9000), /^password: token longer than 8192/],
  ])('refuses %s, naming the password', (_name, password, message) => {
    const b = callerToken(password, 'password');
    expect(b.ok).toBe(false);
    if (!b.ok) expect(b.message).toMatch(message);
  });
});

describe('RFC 9728 metadata', () => {
  it('names the provider from the well-known path (with or without the /mcp suffix)', () => {
    expect(protectedResourceProvider('/.well-known/oauth-protected-resource/mcp/jira')).toBe('jira');
    expect(protectedResourceProvider('/.well-known/oauth-protected-resource/mcp/jira/mcp')).toBe('jira');
  });
  it.each([
    '/.well-known/oauth-protected-resource',
    '/.well-known/oauth-protected-resource/http/jira',
    '/.well-known/oauth-protected-resource/mcp/Jira',
    '/.well-known/oauth-protected-resource/mcp/../x',
  ])('names no provider for %s', (path) => {
    expect(protectedResourceProvider(path)).toBeNull();
  });
  it('points to the metadata and describes the resource and its authorization server', () => {
    expect(protectedResourceMetadataUrl('https://gw.example:8443/', 'jira')).toBe(
      'https://gw.example:8443/.well-known/oauth-protected-resource/mcp/jira',
    );
    expect(
      protectedResourceMetadata('https://gw.example:8443', 'jira', 'https://authority.example'),
    ).toMatchObject({
      resource: 'https://gw.example:8443/mcp/jira',
      authorization_servers: ['https://authority.example'],
      bearer_methods_supported: ['header'],
    });
  });
});

describe('wwwAuthenticate', () => {
  it('challenges with the resource metadata (RFC 9728 §5.1)', () => {
    expect(
      wwwAuthenticate({ resourceMetadata: 'https://gw/.well-known/oauth-protected-resource/mcp/jira' }),
    ).toBe(
      'Bearer realm="warden-gateway", resource_metadata="https://gw/.well-known/oauth-protected-resource/mcp/jira"',
    );
  });
  it('keeps a description inside its quoted string', () => {
    expect(wwwAuthenticate({ error: 'invalid_token', description: 'bad "token"\r\nx: y' })).toBe(
      'Bearer realm="warden-gateway", error="invalid_token", error_description="bad  token   x: y"',
    );
  });
});
