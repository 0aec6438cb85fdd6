/**
 * A real OpenID Provider (oidc-provider v9) for integration tests, served over real TLS on
 * 127.0.0.1 with a throwaway CA, so the authority verifies user tokens exactly as in production:
 * https discovery, https JWKS, RS256 signatures. The only test concession is trusting the CA,
 * which the authority supports anyway for in-house IdPs (httpsFetch({ca})).
 *
 * Users sign in through the genuine authorization-code flow with PKCE; the test plays the browser
 * and answers the login/consent interaction programmatically.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { createCertificateAuthority } from '../core/x509.js';
import { OIDC_TEST_TTL, oidcTestAdapter } from './oidc-test-config.js';

export interface OidcUser {
  sub: string;
  groups?: string[];
  department?: string;
  email?: string;
}

export interface OidcFixture {
  issuer: string;
  clientId: string;
  /** PEM of the CA that signed the provider's TLS certificate. */
  caPem: string;
  /** Signs `user` in through the authorization-code flow and returns the ID token. */
  idToken(user: OidcUser): Promise<string>;
  stop(): Promise<void>;
}

const CLIENT_ID = 'support-console';
const CLIENT_SECRET = 'test-client-secret-not-used-elsewhere';
const REDIRECT_URI = 'https://console.example.com/callback';

/**
 * `host`: the IP address to listen on and name in the issuer URL (default 127.0.0.1); the
 * real-node suite serves the provider on its node's address so pods reach it too.
 */
export async function startOidcProvider(opts: { host?: string } = {}): Promise<OidcFixture> {
  const host = opts.host ?? '127.0.0.1';
  const ca = await createCertificateAuthority('warden test OIDC CA', 3600_000);
  const leaf = await ca.issue({
    commonName: host,
    ipAddresses: [host],
    validityMs: 3600_000,
    usage: 'server',
  });
  const users = new Map<string, OidcUser>();
  const pendingLogin = new Map<string, string>(); // interaction uid is unknown before; keyed by state

  let provider: Provider | undefined;
  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!provider) throw new Error('provider not ready');
    if (req.url?.startsWith('/interaction/')) {
      // The "login page": sign in whoever the test asked for, and consent to the scopes.
      const details = await provider.interactionDetails(req, res);
      const accountId = pendingLogin.get(details.params.state ?? '');
      if (!accountId) throw new Error('unexpected interaction');
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id ?? '' });
      grant.addOIDCScope(details.params.scope ?? 'openid');
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    provider.callback()(req, res);
  };
  const server: Server = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
    handler(req, res).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const issuer = `https://${host}:${(server.address() as AddressInfo).port}`;

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'idp-key-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    scopes: ['openid', 'profile', 'email', 'groups', 'department'],
    claims: { openid: ['sub'], email: ['email'], groups: ['groups'], department: ['department'] },
    // Put the scope claims into the ID token itself (what agents forward), not only userinfo.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    adapter: oidcTestAdapter(),
    ttl: { ...OIDC_TEST_TTL },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, id) => {
      const u = users.get(id);
      return u && { accountId: id, claims: () => ({ ...u }) };
    },
  });

  /** One HTTPS request trusting the test CA; returns status, location, cookies and body. */
  const call = (
    url: string,
    opts: { method?: string; cookies?: string[]; form?: Record<string, string> } = {},
  ) =>
    new Promise<{ status: number; location?: string; setCookies: string[]; body: string }>(
      (resolve, reject) => {
        const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
        const req = request(
          new URL(url, issuer),
          {
            method: opts.method ?? 'GET',
            ca: ca.certPem,
            headers: {
              ...(opts.cookies?.length ? { cookie: opts.cookies.join('; ') } : {}),
              ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                location: res.headers.location,
                setCookies: (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!),
                body: Buffer.concat(chunks).toString(),
              }),
            );
          },
        );
        req.on('error', reject);
        if (body) req.write(body);
        req.end();
      },
    );

  const idToken = async (user: OidcUser): Promise<string> => {
    users.set(user.sub, user);
    const state = randomBytes(8).toString('hex');
    pendingLogin.set(state, user.sub);
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const auth = new URL('/auth', issuer);
    auth.search = new URLSearchParams({
      client_id: CLIENT_ID,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: 'openid email groups department',
      state,
      nonce: randomBytes(8).toString('hex'),
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    // Browser: /auth → /interaction/:uid → (login+consent) → /auth/:uid → redirect_uri?code=
    let cookies: string[] = [];
    let next: string | undefined = auth.toString();
    let code: string | null = null;
    for (let hop = 0; hop < 8 && next; hop++) {
      const res = await call(next, { cookies });
      cookies = [
        ...cookies.filter((c) => !res.setCookies.some((n) => n.split('=')[0] === c.split('=')[0])),
        ...res.setCookies,
      ];
      if (!res.location)
        throw new Error(`OIDC flow stopped at ${next}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
      const loc = new URL(res.location, issuer);
      if (loc.href.startsWith(REDIRECT_URI)) {
        code = loc.searchParams.get('code');
        if (!code) throw new Error(`authorization failed: ${loc.search}`);
        break;
      }
      next = loc.href;
    }
    if (!code) throw new Error('OIDC flow did not reach the redirect URI');
    const token = await call('/token', {
      method: 'POST',
      form: {
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
      },
    });
    const parsed = JSON.parse(token.body) as { id_token?: string };
    if (!parsed.id_token) throw new Error(`token endpoint: HTTP ${token.status} ${token.body.slice(0, 300)}`);
    return parsed.id_token;
  };

  return {
    issuer,
    clientId: CLIENT_ID,
    caPem: ca.certPem,
    idToken,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
