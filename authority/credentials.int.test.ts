import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADER_USER_TOKEN } from '../core/constants.js';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { MemoryAuditSink } from './audit.js';
import { httpsFetch } from './fetch.js';
import { type Authority, createAuthority } from './index.js';
import {
  createAgentIdentity,
  createServiceAccount,
  createWardenObject,
  deletePod,
  type Fixture,
  fixture,
  httpCall,
  patchAgentIdentity,
  podWatchShows,
  sessionFor,
  TEST_BROKER_IMAGE,
} from './int-fixtures.js';
import { type OidcFixture, startOidcProvider } from './oidc-fixture.js';

let f: Fixture;
let authority: Authority;
let base: string;
let idp: OidcFixture;
let untrusted: OidcFixture;
const audit = new MemoryAuditSink();
const tokens: Record<string, string> = {};

const newSession = (agent: string, podName: string): Promise<string> =>
  sessionFor(f, base, { pod: podName, agent });

const ask = (session: string, body: unknown, userToken?: string) =>
  httpCall(`${base}/v1/credentials`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${session}`,
      'content-type': 'application/json',
      ...(userToken ? { [HEADER_USER_TOKEN]: userToken } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const jiraGet = {
  target: 'jira',
  tool: 'jira.get_issue',
  args: { key: 'SUP-1' },
  context: { ticketId: 'SUP-1' },
};

beforeAll(async () => {
  idp = await startOidcProvider();
  untrusted = await startOidcProvider();
  const kc = kubeConfig();
  f = fixture(kc, await freshNamespace('authority-creds'));
  await createServiceAccount(f, 'bot-sa');
  const trustedIssuers = [{ issuer: idp.issuer, audiences: [idp.clientId], claims: ['email'] }];
  await createAgentIdentity(f, 'support-bot', {
    serviceAccountName: 'bot-sa',
    userContext: { mode: 'Optional', trustedIssuers },
  });
  await createAgentIdentity(f, 'human-only', {
    serviceAccountName: 'bot-sa',
    userContext: { mode: 'Required', trustedIssuers },
  });
  await createAgentIdentity(f, 'solo-bot', {
    serviceAccountName: 'bot-sa',
    userContext: { mode: 'Forbidden' },
  });
  await createWardenObject(f, 'AccessPolicy', 'support-jira', {
    rules: [
      {
        targets: ['jira'],
        tools: ['jira.get_*'],
        when: [
          { name: 'support-staff', expression: "user.present && 'support' in user.groups" },
          {
            name: 'ticket-referenced',
            expression: "has(context.ticketId) && context.ticketId.matches('^SUP-[0-9]+$')",
          },
        ],
      },
      { targets: ['status-page'], tools: ['*'] },
    ],
  });
  // Targets are CredentialProviders: the Allow answer carries a credential minted for them.
  for (const name of ['jira', 'status-page']) {
    await createWardenObject(f, 'CredentialProvider', name, {
      target: { url: `https://${name}.example/mcp`, protocol: 'MCP' },
      type: 'JWT',
      jwt: {},
    });
  }
  authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace: f.namespace,
    watchNamespace: f.namespace,
    issuer: 'https://warden-authority.test',
    audit,
    log: pino({ level: 'silent' }),
    idpFetch: httpsFetch({ ca: `${idp.caPem}\n${untrusted.caPem}` }),
  });
  base = `http://127.0.0.1:${await authority.listen(0, '127.0.0.1')}`;
  tokens.alice = await idp.idToken({
    sub: 'alice',
    groups: ['support'],
    department: 'Support',
    email: 'alice@acme.example',
  });
  tokens.bob = await idp.idToken({ sub: 'bob', groups: ['eng'], department: 'Engineering' });
  tokens.mallory = await untrusted.idToken({ sub: 'mallory', groups: ['support'] });
});

afterAll(async () => {
  await authority?.close();
  await idp?.stop();
  await untrusted?.stop();
});

describe('POST /v1/credentials', () => {
  it('allows a support user with a ticket, naming the deciding policy', async () => {
    const session = await newSession('support-bot', 'support-1');
    const res = await ask(session, jiraGet, tokens.alice);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      decision: 'Allow',
      policy: `${f.namespace}/support-jira`,
      rule: 0,
      user: { sub: 'alice', issuer: idp.issuer },
    });
    expect(audit.events.at(-1)).toMatchObject({
      kind: 'Decision',
      decision: 'Allow',
      agent: 'support-bot',
      user: 'alice',
      userIssuer: idp.issuer,
      target: 'jira',
      tool: 'jira.get_issue',
    });
  });

  it('denies a user outside the support group, naming the failed condition', async () => {
    const session = await newSession('support-bot', 'support-2');
    const res = await ask(session, jiraGet, tokens.bob);
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('access_denied');
    expect(res.body.decision).toMatchObject({
      decision: 'Deny',
      condition: 'support-staff',
      policy: `${f.namespace}/support-jira`,
    });
    expect(audit.events.at(-1)).toMatchObject({
      decision: 'Deny',
      error: 'access_denied',
      user: 'bob',
      userIssuer: idp.issuer,
    });
  });

  it('decides for the agent acting alone when no user token is sent', async () => {
    const session = await newSession('support-bot', 'support-3');
    expect((await ask(session, jiraGet)).status).toBe(403);
    const status = await ask(session, { target: 'status-page', tool: 'status.get' });
    expect(status.status).toBe(200);
    expect(status.body.user).toBeNull();
    expect(audit.events.at(-1)?.user).toBe('agent acting alone');
  });

  it('answers an Allow with a minted, audience-scoped Warden JWT for the provider', async () => {
    const session = await newSession('support-bot', 'support-mint');
    const res = await ask(session, { target: 'status-page', tool: 'status.get' });
    expect(res.status).toBe(200);
    const cred = res.body.credential as { id: string; headers: Record<string, string>; expiresAt: string };
    const jwt = /^Bearer (.+)$/.exec(cred.headers.Authorization ?? '')?.[1] ?? '';
    const claims = decodeJwt(jwt);
    expect(claims).toMatchObject({
      iss: 'https://warden-authority.test',
      aud: 'https://status-page.example/mcp',
      jti: cred.id,
    });
    expect(Date.parse(cred.expiresAt)).toBeGreaterThan(Date.now());
    expect(audit.events.at(-1)).toMatchObject({ decision: 'Allow', credentialId: cred.id });
  });

  it('allows MCP protocol traffic (no tool) to a target some rule serves, and mints for it', async () => {
    const session = await newSession('support-bot', 'support-proto');
    const res = await ask(session, { target: 'status-page', kind: 'mcp' });
    expect(res.status).toBe(200);
    expect((res.body.credential as { headers: Record<string, string> }).headers.Authorization).toMatch(
      /^Bearer /,
    );
    expect((await ask(session, { target: 'nowhere', kind: 'mcp' })).status).toBe(403);
  });

  it('fails closed when the allowed target has no CredentialProvider', async () => {
    const session = await newSession('solo-bot', 'solo-missing');
    await createWardenObject(f, 'AccessPolicy', 'ghost-target', {
      agentSelector: { names: ['solo-bot'] },
      rules: [{ targets: ['ghost'], tools: ['*'] }],
    });
    let res = await ask(session, { target: 'ghost', tool: 'x' });
    for (
      let i = 0;
      i < 50 && res.body.decision && (res.body.decision as { reason?: string }).reason !== 'ProviderNotFound';
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
      res = await ask(session, { target: 'ghost', tool: 'x' });
    }
    expect(res.status).toBe(403);
    expect(res.body.decision).toMatchObject({ reason: 'ProviderNotFound' });
    expect(res.body.error_description).toMatch(/CredentialProvider .*\/ghost does not exist/);
  });

  it('refuses a user token from an untrusted issuer', async () => {
    const session = await newSession('support-bot', 'support-4');
    const res = await ask(session, jiraGet, tokens.mallory);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'invalid_grant',
      error_description: `user token issuer is not trusted by AgentIdentity ${f.namespace}/support-bot (spec.userContext.trustedIssuers)`,
    });
    expect(audit.events.at(-1)).toMatchObject({ decision: 'Deny', error: 'invalid_grant' });
  });

  it('enforces userContext.mode Required and Forbidden', async () => {
    const human = await newSession('human-only', 'human-1');
    const alone = await ask(human, { target: 'status-page', tool: 'x' });
    expect(alone.status).toBe(403);
    expect(alone.body.decision).toMatchObject({ reason: 'UserRequired' });
    expect((await ask(human, { target: 'status-page', tool: 'x' }, tokens.alice)).status).toBe(200);

    const solo = await newSession('solo-bot', 'solo-1');
    const withUser = await ask(solo, { target: 'status-page', tool: 'x' }, tokens.alice);
    expect(withUser.status).toBe(403);
    expect(withUser.body.decision).toMatchObject({ reason: 'UserForbidden' });
  });

  it('denies a suspended agent at once, without a new session', async () => {
    await createAgentIdentity(f, 'kill-me', { serviceAccountName: 'bot-sa' });
    const session = await newSession('kill-me', 'kill-1');
    await patchAgentIdentity(f, 'kill-me', { suspended: true });
    // The store is watch-fed: wait for the watch event rather than a fixed time.
    for (let i = 0; i < 100 && !authority.store.identity(f.namespace, 'kill-me')?.spec.suspended; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const res = await ask(session, { target: 'status-page', tool: 'x' });
    expect(res.status).toBe(403);
    expect(res.body.decision).toMatchObject({ reason: 'AgentSuspended' });
  });

  it('refuses a session whose pod was deleted', async () => {
    const session = await newSession('support-bot', 'gone-1');
    await deletePod(f, 'gone-1');
    await podWatchShows(f, authority.pods, 'gone-1', (p) => p === undefined);
    const res = await ask(session, { target: 'status-page', tool: 'x' });
    expect(res.status).toBe(401);
    expect(res.body.error_description).toContain('pod this session is bound to no longer exists');
  });

  it.each([
    ['invalid JSON', '{', 'not valid JSON'],
    ['a missing target', { tool: 'x' }, 'target (a CredentialProvider name) is required'],
    ['an unknown kind', { target: 'jira', kind: 'ftp' }, 'kind must be one of'],
    [
      'an http request without a path',
      { target: 'jira', kind: 'http', method: 'GET' },
      'method and path are required',
    ],
    ['a bad chainStep', { target: 'jira', tool: 'x', context: { chainStep: -1 } }, 'context.chainStep'],
  ])('refuses %s', async (_name, body, message) => {
    const session = await newSession('support-bot', `bad-${Math.random().toString(36).slice(2, 8)}`);
    const res = await ask(session, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.error_description).toContain(message);
  });

  it('refuses an oversize body', async () => {
    const session = await newSession('support-bot', 'big-1');
    const res = await ask(session, { target: 'jira', tool: 'x', args: { blob: 'x'.repeat(70_000) } });
    expect(res.status).toBe(413);
    expect(res.body.error_description).toContain('65536-byte limit');
  });
});
