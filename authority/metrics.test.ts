/**
 * What the authority records into its metrics registry (observability/metrics.ts): one
 * warden_token_exchanges_total sample per POST /v1/token, one warden_decisions_total sample per
 * POST /v1/credentials, and each credential handed out. Driven over real HTTP against the
 * production server and handlers with in-memory Kubernetes readers; the series are read back from
 * the registry.
 */
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialProvider } from '../core/api/index.js';
import { DEFAULT_BROKER_AUDIENCE } from '../core/constants.js';
import { buildPolicySet } from '../core/policy/index.js';
import { allowPolicy } from '../core/policy/testing.js';
import { createMetrics, type WardenMetrics } from '../observability/metrics.js';
import { seriesValue } from '../observability/testing.js';
import { injectBroker, TEST_BROKER_IMAGE } from '../webhook/test-builders.js';
import { MemoryAuditSink } from './audit.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from './constants.js';
import { handleCredentials } from './credentials.js';
import { StaticKeySource } from './keystore.js';
import { createMinters } from './mint/index.js';
import type { PolicySource } from './policy-store.js';
import { FailureRateLimiter } from './ratelimit.js';
import { createAuthorityServer } from './server.js';
import { Sessions } from './session.js';
import { handleTokenExchange } from './token.js';
import { UserTokenVerifier } from './user-token.js';

const ISSUER = 'https://warden-authority.metrics';
const NS = 'agents';
const GOOD_TOKEN = 'projected-sa-token';

// As the webhook admits it: only a pod carrying the injected broker attests.
const pod = injectBroker(
  {
    metadata: {
      name: 'bot-1',
      namespace: NS,
      uid: 'uid-1',
      annotations: { 'warden.dev/agent': 'support-bot' },
    },
    spec: { serviceAccountName: 'bot-sa', containers: [{ name: 'bot', image: 'ghcr.io/acme/bot@sha256:1' }] },
  },
  { agent: 'support-bot', issuer: ISSUER },
);
const identitySpec = { serviceAccountName: 'bot-sa' };
const jiraProvider = {
  apiVersion: 'warden.dev/v1alpha1',
  kind: 'CredentialProvider',
  metadata: { name: 'jira', namespace: NS },
  spec: { type: 'JWT', target: { url: 'https://jira.example.com/mcp', protocol: 'MCP' } },
} as CredentialProvider;

/** The in-memory store: one agent, allowed jira.get_* on jira and anything on wiki (no provider). */
const store: PolicySource = {
  identity: (namespace, name) =>
    namespace === NS && name === 'support-bot' ? { name, namespace, labels: {}, spec: identitySpec } : null,
  policySet: (namespace, name) =>
    namespace === NS && name === 'support-bot'
      ? buildPolicySet(
          [
            allowPolicy('jira-readers', { targets: ['jira'], tools: ['jira.get_*'] }),
            // A target no CredentialProvider exists for: allowed by policy, refused at issuance.
            allowPolicy('wiki', { targets: ['wiki'], tools: ['*'] }),
          ],
          {
            name,
            namespace,
            labels: {},
          },
        )
      : null,
  snapshot: () => {
    throw new Error('not used by /v1/credentials');
  },
  subscribe: () => () => {},
};

let metrics: WardenMetrics;
let base: string;
let server: ReturnType<typeof createAuthorityServer>;

const value = (name: string, labels: Record<string, string>) => seriesValue(metrics, name, labels);

beforeAll(async () => {
  metrics = createMetrics();
  const keys = StaticKeySource.generate();
  const sessions = new Sessions({ issuer: ISSUER, keys });
  const pods = { getPod: async (_ns: string, name: string) => (name === pod.metadata?.name ? pod : null) };
  server = createAuthorityServer({
    issuer: ISSUER,
    keys,
    audit: new MemoryAuditSink(),
    limiter: new FailureRateLimiter({ burst: 1e6, refillPerSecond: 1, maxSources: 10 }),
    log: pino({ level: 'silent' }),
    token: (ctx) =>
      handleTokenExchange(ctx, {
        // The API server authenticates exactly one token, as bound to pod bot-1.
        reviewer: {
          review: async (token) =>
            token === GOOD_TOKEN
              ? {
                  authenticated: true,
                  username: `system:serviceaccount:${NS}:bot-sa`,
                  audiences: [DEFAULT_BROKER_AUDIENCE],
                  podName: 'bot-1',
                  podUID: 'uid-1',
                }
              : { authenticated: false, error: 'token invalid' },
        },
        pods,
        identities: {
          getAgentIdentity: async (_ns, name) =>
            name === 'support-bot' ? { metadata: { name, namespace: NS }, spec: identitySpec } : null,
        },
        sessions,
        metrics,
        broker: { trustedImages: [TEST_BROKER_IMAGE], authorityUrl: ISSUER },
      }),
    credentials: (ctx) =>
      handleCredentials(ctx, {
        sessions,
        store,
        pods,
        userTokens: new UserTokenVerifier(),
        issuance: {
          minters: createMinters({ issuer: ISSUER, keys }),
          providers: { getProvider: async (_ns, name) => (name === 'jira' ? jiraProvider : undefined) },
          secrets: {
            read: async () => {
              throw new Error('no Secrets in this test');
            },
          },
        },
        metrics,
      }),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function exchange(
  subjectToken: string,
  type: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${base}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: type,
    }).toString(),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function askCredential(
  session: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${base}/v1/credentials`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe('authority metrics', () => {
  let session = '';

  it('a token exchange that issues a session: result issued, one Session credential', async () => {
    const r = await exchange(GOOD_TOKEN, TOKEN_TYPE_JWT);
    expect(r.status).toBe(200);
    session = String(r.body.access_token);
    expect(await value('warden_token_exchanges_total', { result: 'issued' })).toBe(1);
    expect(await value('warden_credentials_issued_total', { type: 'Session' })).toBe(1);
  });

  it('a refresh with the session token: result refreshed, a second Session credential', async () => {
    const r = await exchange(session, TOKEN_TYPE_ACCESS_TOKEN);
    expect(r.status).toBe(200);
    expect(await value('warden_token_exchanges_total', { result: 'refreshed' })).toBe(1);
    expect(await value('warden_token_exchanges_total', { result: 'issued' })).toBe(1);
    expect(await value('warden_credentials_issued_total', { type: 'Session' })).toBe(2);
  });

  it.each([
    ['a token the API server rejects', 'garbage', TOKEN_TYPE_JWT, 'invalid_grant'],
    ['an unknown subject_token_type', GOOD_TOKEN, 'urn:example:nope', 'invalid_request'],
  ])(
    'a refused exchange (%s): result is the OAuth error code, nothing issued',
    async (_n, token, type, code) => {
      const before = await value('warden_token_exchanges_total', { result: code });
      const r = await exchange(token, type);
      expect(r.body.error).toBe(code);
      expect(await value('warden_token_exchanges_total', { result: code })).toBe(before + 1);
      expect(await value('warden_credentials_issued_total', { type: 'Session' })).toBe(2);
    },
  );

  it('an allowed credential request: decision allow/Allowed and one JWT credential', async () => {
    const r = await askCredential(session, { target: 'jira', tool: 'jira.get_issue' });
    expect(r.status).toBe(200);
    expect(r.body.credential).toBeTruthy();
    expect(
      await value('warden_decisions_total', { component: 'authority', decision: 'allow', reason: 'Allowed' }),
    ).toBe(1);
    expect(await value('warden_credentials_issued_total', { type: 'JWT' })).toBe(1);
  });

  it('a policy denial: decision and denial with the policy reason, nothing issued', async () => {
    const r = await askCredential(session, { target: 'jira', tool: 'jira.delete_issue' });
    expect(r.status).toBe(403);
    expect(r.body.decision).toMatchObject({ reason: 'NoMatchingAllow' });
    expect(
      await value('warden_decisions_total', {
        component: 'authority',
        decision: 'deny',
        reason: 'NoMatchingAllow',
      }),
    ).toBe(1);
    expect(await value('warden_denials_total', { reason: 'NoMatchingAllow' })).toBe(1);
    expect(await value('warden_credentials_issued_total', { type: 'JWT' })).toBe(1);
  });

  it('a refusal after the policy allowed (no CredentialProvider): deny with the issuance reason', async () => {
    const r = await askCredential(session, { target: 'wiki', tool: 'wiki.read' });
    expect(r.status).toBe(403);
    expect(r.body.decision).toMatchObject({ reason: 'ProviderNotFound' });
    expect(
      await value('warden_decisions_total', {
        component: 'authority',
        decision: 'deny',
        reason: 'ProviderNotFound',
      }),
    ).toBe(1);
    expect(await value('warden_decisions_total', { component: 'authority', decision: 'allow' })).toBe(1);
  });

  it('a request refused before any decision (no session): decision deny with the OAuth code', async () => {
    const r = await askCredential('not-a-session', { target: 'jira', tool: 'jira.get_issue' });
    expect(r.status).toBe(401);
    expect(
      await value('warden_decisions_total', {
        component: 'authority',
        decision: 'deny',
        reason: 'invalid_token',
      }),
    ).toBe(1);
  });
});
