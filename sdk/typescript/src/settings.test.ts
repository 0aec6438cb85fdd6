import { describe, expect, it } from 'vitest';
import { withRequestScope, withUser } from './request-context.js';
import { settingsFromEnv } from './settings.js';
import { Warden } from './warden.js';

const sidecarEnv = {
  WARDEN_MCP_BASE: 'http://127.0.0.1:15100',
  WARDEN_HTTP_BASE: 'http://127.0.0.1:15101/',
  WARDEN_PG_BASE: 'postgresql://127.0.0.1:15432',
  WARDEN_USER_TOKEN_HEADER: 'x-warden-user-token',
};
const gatewayEnv = {
  WARDEN_GATEWAY_URL: 'https://warden-gateway.warden-system.svc:8443',
  WARDEN_GATEWAY_TOKEN_FILE: '/var/run/secrets/warden.dev/gateway/token',
  WARDEN_GATEWAY_PG: 'warden-gateway.warden-system.svc:5432',
};

describe('settingsFromEnv', () => {
  it('reads the sidecar environment the webhook injects', () => {
    const s = settingsFromEnv(sidecarEnv);
    expect(s).toMatchObject({
      mode: 'sidecar',
      mcpBase: 'http://127.0.0.1:15100',
      httpBase: 'http://127.0.0.1:15101',
      pgBase: 'postgresql://127.0.0.1:15432',
    });
  });
  it('reads the gateway settings and the token file on each use', async () => {
    let n = 0;
    const s = settingsFromEnv(gatewayEnv, async (p) => `token-${++n}-${p.length}`);
    expect(s).toMatchObject({
      mode: 'gateway',
      mcpBase: 'https://warden-gateway.warden-system.svc:8443/mcp',
    });
    if (s.mode !== 'gateway') throw new Error('gateway expected');
    expect(await s.agentToken()).toBe('token-1-41');
    expect(await s.agentToken()).toBe('token-2-41');
  });
  it.each([
    ['nothing set', {}, /no Warden settings: set WARDEN_MCP_BASE/],
    [
      'a bad URL',
      { WARDEN_MCP_BASE: 'not a url', WARDEN_HTTP_BASE: 'http://x' },
      /WARDEN_MCP_BASE: not a URL/,
    ],
    ['half the sidecar env', { WARDEN_HTTP_BASE: 'http://127.0.0.1:1' }, /WARDEN_MCP_BASE is not set/],
    [
      'a gateway over plain http',
      { ...gatewayEnv, WARDEN_GATEWAY_URL: 'http://gw.example:80' },
      /must be reached over https/,
    ],
    [
      'a gateway without a token file',
      { WARDEN_GATEWAY_URL: 'https://gw' },
      /WARDEN_GATEWAY_TOKEN_FILE is not set/,
    ],
    [
      'a gateway PG endpoint with a path',
      { ...gatewayEnv, WARDEN_GATEWAY_PG: 'gw:5432/db' },
      /expected host:port/,
    ],
  ])('refuses %s', (_name, env, message) => {
    expect(() => settingsFromEnv(env)).toThrow(message);
  });
});

describe('Warden', () => {
  const sidecar = new Warden(settingsFromEnv(sidecarEnv));
  it('builds per-provider MCP URLs and HTTP bases', () => {
    expect(sidecar.mcpUrl('jira').href).toBe('http://127.0.0.1:15100/jira');
    expect(sidecar.httpBase('tickets')).toBe('http://127.0.0.1:15101/tickets');
  });
  it('refuses a provider name that would change the path', () => {
    expect(() => sidecar.mcpUrl('../admin')).toThrow(/expected a CredentialProvider name/);
    expect(() => sidecar.httpBase('a/b')).toThrow(/expected a CredentialProvider name/);
  });
  it('forwards the user and context of the current scope as headers', async () => {
    const h = await withRequestScope({ context: { ticketId: 'SUP-1' } }, () =>
      withUser('Bearer u.t.s', () => sidecar.headers()),
    );
    expect(h).toEqual({ 'x-warden-user-token': 'u.t.s', 'x-warden-context': '{"ticketId":"SUP-1"}' });
    expect(await sidecar.headers()).toEqual({});
  });
  it('puts the user token and context in PostgreSQL options, escaped', () => {
    const pg = withRequestScope({ userToken: 'u.t.s', context: { purpose: 'month end' } }, () =>
      sidecar.postgres('ledger'),
    );
    expect(pg.options).toBe('-c warden.user_token=u.t.s -c warden.context={"purpose":"month\\ end"}');
    expect(new URL(pg.connectionString).searchParams.get('options')).toBe(pg.options);
    expect(pg.connectionString.startsWith('postgresql://127.0.0.1:15432/ledger?')).toBe(true);
    expect(pg.password).toBeUndefined();
  });
  it('in gateway mode sends the agent token and asks PostgreSQL for verified TLS', async () => {
    const gw = new Warden(settingsFromEnv(gatewayEnv, async () => 'agent.jwt.sig'));
    expect((await gw.headers()).authorization).toBe('Bearer agent.jwt.sig');
    const pg = gw.postgres('ledger');
    expect(new URL(pg.connectionString).searchParams.get('sslmode')).toBe('verify-full');
    expect(await pg.password?.()).toBe('agent.jwt.sig');
  });
  it('says when no PostgreSQL endpoint was injected', () => {
    const w = new Warden(
      settingsFromEnv({ WARDEN_MCP_BASE: 'http://127.0.0.1:1', WARDEN_HTTP_BASE: 'http://127.0.0.1:2' }),
    );
    expect(() => w.postgres('ledger')).toThrow(/no PostgreSQL endpoint/);
  });
});
