/**
 * OAuth2ClientCredentials and OAuth2TokenExchange against a real oidc-provider (v9) started
 * in-process on 127.0.0.1: client_credentials is built in; RFC 8693 token exchange is registered
 * with registerGrantType and verifies Warden's subject/actor assertions against Warden's JWKS
 * (served over HTTP) with jose, as an upstream that trusts Warden would. Introspection shows what
 * the upstream issued; RFC 7009 revocation ends it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from '../constants.js';
import { StaticKeySource } from '../keystore.js';
import { OIDC_TEST_TTL, oidcTestAdapter, ownTokensOnly } from '../oidc-test-config.js';
import { ClientCredentialsMinter, TokenExchangeMinter } from './oauth2.js';
import { policy, provider, request, secrets, user } from './testing.js';
import type { HeaderCredential, MintProvider } from './types.js';

const CLIENT_ID = 'warden';
const CLIENT_SECRET = 'oidc-client-secret-from-a-kubernetes-secret';

/** The parts of oidc-provider's Koa context and token models this test's grant handler uses. */
interface GrantContext {
  oidc: {
    params: Record<string, string | undefined>;
    client: { clientId: string; scope?: string };
    provider: {
      ClientCredentials: new (init: {
        client: unknown;
        scope?: string;
      }) => { save(): Promise<string>; expiration: number };
    };
  };
  status: number;
  body: unknown;
}
interface ExchangeCapableProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  registerGrantType(
    name: string,
    handler: (ctx: GrantContext) => Promise<void>,
    params: string[],
    dupes?: string[],
  ): void;
}

const listen = (server: Server): Promise<string> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );

describe('OAuth2 minters against a real oidc-provider', () => {
  const keys = StaticKeySource.generate();
  const servers: Server[] = [];
  let wardenIssuer: string;
  let issuer: string;
  const store = secrets({ 'agents/idp-client': { secret: CLIENT_SECRET, wrong: 'not-the-secret' } });
  /** Claims the exchange handler wants on the token it is issuing, keyed by request context. */
  const exchanged = new WeakMap<object, Record<string, unknown>>();

  beforeAll(async () => {
    const jwksServer = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys.jwks()));
    });
    servers.push(jwksServer);
    wardenIssuer = await listen(jwksServer);
    const wardenJwks = createRemoteJWKSet(new URL(`${wardenIssuer}/.well-known/jwks.json`));

    let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    const idp = createServer((req, res) => handler?.(req, res));
    servers.push(idp);
    issuer = await listen(idp);
    const config = {
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          grant_types: ['client_credentials', GRANT_TOKEN_EXCHANGE],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'tickets:read tickets:write',
        },
      ],
      scopes: ['tickets:read', 'tickets:write'],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true, allowedPolicy: ownTokensOnly },
        revocation: { enabled: true, allowedPolicy: ownTokensOnly },
      },
      adapter: oidcTestAdapter(),
      ttl: { ...OIDC_TEST_TTL },
      jwks: {
        keys: [
          {
            ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
            kid: 'idp-key-1',
            alg: 'RS256',
            use: 'sig',
          },
        ],
      },
      extraTokenClaims: (ctx: object) => exchanged.get(ctx),
    };
    // The shared declaration (authority/oidc-provider.d.ts) covers the OIDC fixture's needs; this
    // test also uses extraTokenClaims and registerGrantType, typed locally above.
    const op = new Provider(
      issuer,
      config as ConstructorParameters<typeof Provider>[1],
    ) as unknown as ExchangeCapableProvider;

    const verifyAssertion = async (
      token: string | undefined,
      type: string | undefined,
    ): Promise<JWTPayload> => {
      if (!token || type !== TOKEN_TYPE_JWT) throw new Error('expected a JWT');
      const { payload } = await jwtVerify(token, wardenJwks, {
        issuer: wardenIssuer,
        audience: `${issuer}/token`,
      });
      return payload;
    };
    op.registerGrantType(
      GRANT_TOKEN_EXCHANGE,
      async (ctx) => {
        const { params, client } = ctx.oidc;
        let subject: JWTPayload;
        let actor: JWTPayload | undefined;
        try {
          subject = await verifyAssertion(params.subject_token, params.subject_token_type);
          if (params.actor_token) actor = await verifyAssertion(params.actor_token, params.actor_token_type);
        } catch (err) {
          ctx.status = 400;
          ctx.body = {
            error: 'invalid_grant',
            error_description: `subject/actor token rejected: ${(err as Error).message}`,
          };
          return;
        }
        const allowed = new Set((client.scope ?? '').split(' '));
        const scope =
          (params.scope ?? '')
            .split(' ')
            .filter((s) => allowed.has(s))
            .join(' ') || undefined;
        const token = new ctx.oidc.provider.ClientCredentials({ client, scope });
        exchanged.set(ctx, {
          sub: subject.sub,
          ...(actor ? { act: { sub: actor.sub } } : {}),
          // introspection reports its own 'aud'; echo the requested audience under another name.
          ...(params.audience ? { requested_audience: params.audience } : {}),
        });
        ctx.body = {
          access_token: await token.save(),
          issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
          token_type: 'Bearer',
          expires_in: token.expiration,
          ...(scope ? { scope } : {}),
        };
      },
      [
        'subject_token',
        'subject_token_type',
        'actor_token',
        'actor_token_type',
        'audience',
        'requested_token_type',
        'scope',
        'resource',
      ],
      ['audience', 'resource'],
    );
    handler = op.callback();
  });

  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  async function introspect(token: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${issuer}/token/introspection`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }).toString(),
    });
    return (await res.json()) as Record<string, unknown>;
  }

  const bearer = (c: HeaderCredential) => (c.headers.Authorization ?? '').replace(/^Bearer /, '');

  const ccProvider = (
    secretKey = 'secret',
    extra: Partial<MintProvider['spec']['oauth2ClientCredentials']> = {},
  ) =>
    provider({
      type: 'OAuth2ClientCredentials',
      target: { url: 'https://tickets.example.com/api', protocol: 'HTTP' },
      oauth2ClientCredentials: {
        tokenUrl: `${issuer}/token`,
        clientId: CLIENT_ID,
        clientSecretRef: { name: 'idp-client', key: secretKey },
        scopes: ['tickets:read'],
        revocationUrl: `${issuer}/token/revocation`,
        ...extra,
      },
    });

  const teProvider = () =>
    provider({
      type: 'OAuth2TokenExchange',
      target: { url: 'https://tickets.example.com/mcp', protocol: 'MCP' },
      oauth2TokenExchange: {
        tokenUrl: `${issuer}/token`,
        clientId: CLIENT_ID,
        clientSecretRef: { name: 'idp-client', key: 'secret' },
        audience: 'https://tickets.example.com',
        scopes: ['tickets:read'],
        revocationUrl: `${issuer}/token/revocation`,
      },
    });

  it('client credentials: obtains an active token with the provider scopes, secret read from the Secret', async () => {
    const { credential, revoke } = await new ClientCredentialsMinter().mint(
      request({ provider: ccProvider(), secrets: store }),
    );
    expect(store.reads).toContain('agents/idp-client#secret');
    const token = bearer(credential as HeaderCredential);
    expect(await introspect(token)).toMatchObject({
      active: true,
      client_id: CLIENT_ID,
      scope: 'tickets:read',
    });
    expect(credential.id).toMatch(/^oauth2:[0-9a-f]{16}$/);
    expect(revoke).toBeTypeOf('function');
  });

  it('caps how long the broker uses the token at the policy TTL', async () => {
    const before = Date.now();
    const { credential } = await new ClientCredentialsMinter().mint(
      request({ provider: ccProvider(), secrets: store, policy: policy({ ttl: '1m' }) }),
    );
    expect(credential.expiresAt.getTime() - before).toBeLessThanOrEqual(60_000 + 1000);
  });

  it('revokes through RFC 7009: the token is no longer active', async () => {
    const { credential, revoke } = await new ClientCredentialsMinter().mint(
      request({ provider: ccProvider(), secrets: store }),
    );
    await revoke?.();
    expect(await introspect(bearer(credential as HeaderCredential))).toEqual({ active: false });
  });

  it('offers no revoke when the provider names no revocation endpoint', async () => {
    const { revoke } = await new ClientCredentialsMinter().mint(
      request({ provider: ccProvider('secret', { revocationUrl: undefined }), secrets: store }),
    );
    expect(revoke).toBeUndefined();
  });

  it('a wrong client secret gives an UpstreamRejected error that does not contain the secret', async () => {
    const err = await new ClientCredentialsMinter()
      .mint(request({ provider: ccProvider('wrong'), secrets: store }))
      .catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'MintError', reason: 'UpstreamRejected' });
    expect(String(err)).toMatch(/token endpoint .*\/token answered 401 \(invalid_client/);
    expect(String(err)).not.toContain('not-the-secret');
  });

  it('an unreachable token endpoint gives UpstreamUnreachable', async () => {
    const err = await new ClientCredentialsMinter()
      .mint(
        request({ provider: ccProvider('secret', { tokenUrl: 'http://127.0.0.1:1/token' }), secrets: store }),
      )
      .catch((e: Error) => e);
    expect(err).toMatchObject({ reason: 'UpstreamUnreachable' });
  });

  it('token exchange: the upstream token is about the user, with the agent as actor', async () => {
    const minter = new TokenExchangeMinter({ assertions: { issuer: wardenIssuer, keys } });
    const { credential } = await minter.mint(request({ provider: teProvider(), secrets: store }));
    expect(await introspect(bearer(credential as HeaderCredential))).toMatchObject({
      active: true,
      sub: 'alice',
      act: { sub: 'system:warden:agent:agents:support-bot' },
      requested_audience: 'https://tickets.example.com',
      scope: 'tickets:read',
    });
  });

  it('token exchange for an agent acting alone: the agent is the subject, no actor', async () => {
    const minter = new TokenExchangeMinter({ assertions: { issuer: wardenIssuer, keys } });
    const { credential } = await minter.mint(request({ provider: teProvider(), secrets: store, user: null }));
    const info = await introspect(bearer(credential as HeaderCredential));
    expect(info).toMatchObject({ active: true, sub: 'system:warden:agent:agents:support-bot' });
    expect(info.act).toBeUndefined();
  });

  it('token exchange uses the policy scopes when the rule names some', async () => {
    const minter = new TokenExchangeMinter({ assertions: { issuer: wardenIssuer, keys } });
    const { credential } = await minter.mint(
      request({
        provider: teProvider(),
        secrets: store,
        policy: policy({ scopes: ['tickets:write'] }),
        user: user(),
      }),
    );
    expect(await introspect(bearer(credential as HeaderCredential))).toMatchObject({
      scope: 'tickets:write',
    });
  });

  it('token exchange with assertions signed by a key the upstream does not trust is rejected', async () => {
    const minter = new TokenExchangeMinter({
      assertions: { issuer: wardenIssuer, keys: StaticKeySource.generate() },
    });
    await expect(minter.mint(request({ provider: teProvider(), secrets: store }))).rejects.toThrow(
      /answered 400 \(invalid_grant: subject\/actor token rejected/,
    );
  });
});
