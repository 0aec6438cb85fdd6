/**
 * Sender-constrained Warden JWTs (RFC 9449 DPoP), end to end: the real control plane, the real
 * authority, the real broker (runBroker, attested with a pod-bound token) and two real upstreams
 * that verify DPoP with samples/dpop-target.ts — the sample MCP server (SDK McpServer) and a plain
 * HTTP API. An allowed call through the broker works; the very token it carried, taken from the
 * upstream as a thief would, is refused when replayed without a proof, as a bearer token, with a
 * proof from another key, with the broker's proof for another URL or method, or with the same
 * proof twice. The authority refuses to mint a bound token without the broker's key thumbprint.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Authority, createAuthority } from '../authority/index.js';
import {
  createAgentIdentity,
  createPod,
  createServiceAccount,
  createWardenObject,
  type Fixture,
  fixture,
  httpCall,
  projectedToken,
  sessionFor,
  TEST_BROKER_IMAGE,
} from '../authority/int-fixtures.js';
import { accessTokenHash, DpopKey } from '../broker/dpop.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import { createWardenTokenVerifier, TokenRefused } from '../samples/dpop-target.js';
import { type SampleMcpServer, startSampleMcpServer } from './demo/sample-mcp-server.js';
import { eventually } from './eventually.js';
import { freshNamespace, kubeConfig } from './harness/index.js';

const ISSUER = 'https://warden-authority.test';
let f: Fixture;
let authority: Authority;
let authorityUrl: string;
let broker: RunningBroker;
let jira: SampleMcpServer;
let api: { url: string; seen: Array<{ authorization?: string; dpop?: string[] }>; close(): Promise<void> };
/** Every header and body byte the agent received. */
const received: string[] = [];

/** A plain HTTP API that accepts only DPoP-bound Warden JWTs. */
async function startDpopApi(jwksUrl: string) {
  const seen: Array<{ authorization?: string; dpop?: string[] }> = [];
  let base = '';
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const server: Server = createServer(async (req, res) => {
    seen.push({
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headersDistinct.dpop ? { dpop: req.headersDistinct.dpop } : {}),
    });
    try {
      const { claims } = await verify({
        method: req.method ?? 'GET',
        url: new URL(req.url ?? '/', base),
        authorization: req.headers.authorization,
        dpop: req.headersDistinct.dpop,
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ item: req.url, for: claims.sub }));
    } catch (err) {
      const r = err instanceof TokenRefused ? err : new TokenRefused('invalid_token', String(err));
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': r.wwwAuthenticate });
      res.end(JSON.stringify({ error: r.error, error_description: r.message }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const verify = createWardenTokenVerifier({
    issuer: ISSUER,
    jwks,
    audience: 'items-api',
    requireDpop: true,
  });
  return {
    url: `${base}/base`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const toolCall = (id: number, name: string, args: Record<string, unknown>) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

async function agentCall(
  id: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${broker.ports.listen}/mcp/jira`, {
    method: 'POST',
    headers: { ...MCP_HEADERS, ...headers },
    body: toolCall(id, 'jira.get_issue', { key: 'SUP-7' }),
  });
  const text = await r.text();
  received.push(...[...r.headers].map(([k, v]) => `${k}: ${v}`), text);
  return { status: r.status, text };
}

/** What a thief who obtained the token (and maybe a proof) sends straight to the upstream. */
function direct(url: string, headers: Record<string, string>, method = 'POST') {
  return httpCall(url, {
    method,
    headers: { ...MCP_HEADERS, ...headers },
    ...(method === 'POST' ? { body: toolCall(99, 'jira.get_issue', { key: 'SUP-7' }) } : {}),
  });
}

beforeAll(async () => {
  const kc = kubeConfig();
  f = fixture(kc, await freshNamespace('dpop'), ISSUER);
  await createServiceAccount(f, 'bot-sa');
  await createAgentIdentity(f, 'support-bot', { serviceAccountName: 'bot-sa' });
  authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace: f.namespace,
    watchNamespace: f.namespace,
    issuer: ISSUER,
    log: pino({ level: 'silent' }),
  });
  authorityUrl = `http://127.0.0.1:${await authority.listen(0, '127.0.0.1')}`;
  const jwksUrl = `${authorityUrl}/.well-known/jwks.json`;
  jira = await startSampleMcpServer({ issuer: ISSUER, jwksUrl, audience: 'jira-mcp', requireDpop: true });
  api = await startDpopApi(jwksUrl);

  await createWardenObject(f, 'CredentialProvider', 'jira', {
    target: { url: jira.url, protocol: 'MCP' },
    type: 'JWT',
    jwt: { audience: 'jira-mcp', senderConstraint: 'DPoP' },
  });
  await createWardenObject(f, 'CredentialProvider', 'items', {
    target: { url: api.url, protocol: 'HTTP' },
    type: 'JWT',
    jwt: { audience: 'items-api', senderConstraint: 'DPoP' },
  });
  await createWardenObject(f, 'AccessPolicy', 'support', {
    agentSelector: { names: ['support-bot'] },
    rules: [
      { targets: ['jira'], tools: ['jira.get_issue'] },
      { targets: ['items'], http: { methods: ['GET'], paths: ['/items/*'] } },
    ],
  });

  const pod = await createPod(f, 'support-bot-1', { serviceAccount: 'bot-sa', agent: 'support-bot' });
  const dir = await mkdtemp(join(tmpdir(), 'warden-dpop-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, await projectedToken(f, 'bot-sa', pod), { mode: 0o600 });
  broker = await runBroker({
    tokenFile,
    authorityUrl,
    listen: { host: '127.0.0.1', port: 0 },
    healthPort: 0,
    healthHost: '127.0.0.1',
    log: pino({ level: 'silent' }),
  });
  await eventually(
    'the broker is ready',
    async () => (await fetch(`http://127.0.0.1:${broker.ports.health}/readyz`)).status === 200,
    20_000,
  );
});

afterAll(async () => {
  await broker?.close();
  await authority?.close();
  await jira?.close();
  await api?.close();
});

describe('DPoP-bound Warden JWTs through the real broker', () => {
  it('an allowed MCP call works: the upstream verified the token and the broker-signed proof', async () => {
    const r = await agentCall(1);
    expect(r.status).toBe(200);
    expect(r.text).toContain(`served to system:warden:agent:${f.namespace}:support-bot`);
    expect(jira.calls).toEqual(['jira.get_issue']);
    expect(jira.credentialsSeen.at(-1)).toMatch(/^DPoP eyJ/);
    expect(jira.proofsSeen.length).toBeGreaterThan(0);
  });

  it('each upstream request carries its own proof', async () => {
    const before = jira.proofsSeen.length;
    await agentCall(2);
    const fresh = jira.proofsSeen.slice(before);
    expect(fresh.length).toBeGreaterThan(0);
    expect(new Set(jira.proofsSeen).size).toBe(jira.proofsSeen.length);
  });

  it('a DPoP header the agent sends is dropped; the upstream gets only the broker proof', async () => {
    const before = jira.proofsSeen.length;
    const r = await agentCall(3, { dpop: 'agent-made-proof', authorization: 'DPoP agent-made-token' });
    expect(r.status).toBe(200);
    const fresh = jira.proofsSeen.slice(before);
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).not.toBe('agent-made-proof');
    expect(jira.credentialsSeen.at(-1)).not.toContain('agent-made-token');
  });

  it('an allowed HTTP proxy call works with a proof for its method and path', async () => {
    const r = await fetch(`http://127.0.0.1:${broker.ports.listen}/http/items/items/42?verbose=1`);
    const text = await r.text();
    received.push(text);
    expect(r.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ item: '/base/items/42?verbose=1' });
    expect(api.seen.at(-1)?.authorization).toMatch(/^DPoP eyJ/);
  });

  it('the agent never received the token or a proof', () => {
    const all = received.join('\n');
    for (const auth of [...jira.credentialsSeen, ...api.seen.map((s) => s.authorization ?? '')]) {
      expect(all).not.toContain(auth.replace(/^DPoP /, ''));
    }
    for (const proof of jira.proofsSeen) expect(all).not.toContain(proof);
  });
});

describe('the same token, leaked, is useless outside the broker', () => {
  // What the broker sent on its last call: the token, and the proof it signed for POST /mcp.
  let token = '';
  let proof = '';
  beforeAll(() => {
    token = jira.credentialsSeen.at(-1)!.replace(/^DPoP /, '');
    proof = jira.proofsSeen.at(-1)!;
  });
  const leaked = () => token;
  const lastProof = () => proof;

  it('refused without a proof', async () => {
    const r = await direct(jira.url, { authorization: `DPoP ${leaked()}` });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'invalid_dpop_proof' });
    expect(String(r.headers['www-authenticate'])).toMatch(/^DPoP error="invalid_dpop_proof"/);
  });

  it('refused as a bearer token', async () => {
    const r = await direct(jira.url, { authorization: `Bearer ${leaked()}` });
    expect(r.status).toBe(401);
    expect(r.body.error_description).toMatch(/only DPoP-bound/);
  });

  it("refused with a valid proof from the thief's own key", async () => {
    const thief = new DpopKey();
    const proof = thief.proof({ htm: 'POST', url: new URL(jira.url), ath: accessTokenHash(leaked()) });
    const r = await direct(jira.url, { authorization: `DPoP ${leaked()}`, dpop: proof });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'invalid_token' });
    expect(r.body.error_description).toMatch(/cnf\.jkt/);
  });

  it("refused with the broker's proof used for another URL", async () => {
    const r = await direct(`${new URL(jira.url).origin}/admin`, {
      authorization: `DPoP ${leaked()}`,
      dpop: lastProof(),
    });
    expect(r.status).toBe(401);
    expect(r.body.error_description).toMatch(/htu/);
  });

  it("refused with the broker's proof used for another method", async () => {
    const r = await direct(jira.url, { authorization: `DPoP ${leaked()}`, dpop: lastProof() }, 'DELETE');
    expect(r.status).toBe(401);
    expect(r.body.error_description).toMatch(/htm 'POST'/);
  });

  it("refused when the broker's proof is replayed as is", async () => {
    const r = await direct(jira.url, { authorization: `DPoP ${leaked()}`, dpop: lastProof() });
    expect(r.status).toBe(401);
    expect(r.body.error_description).toMatch(/replay/);
    expect(jira.calls).toEqual(['jira.get_issue', 'jira.get_issue', 'jira.get_issue']);
  });

  it('the HTTP API refuses its leaked token without the broker too', async () => {
    const token = api.seen.at(-1)!.authorization!.replace(/^DPoP /, '');
    const r = await httpCall(`${api.url}/items/42`, { headers: { authorization: `DPoP ${token}` } });
    expect(r.status).toBe(401);
  });
});

describe('the authority binds only to the key the broker names', () => {
  it('refuses to mint a DPoP-bound token for a credential request without dpop_jkt', async () => {
    const session = await sessionFor(f, authorityUrl, { pod: 'support-bot-2', agent: 'support-bot' });
    const r = await httpCall(`${authorityUrl}/v1/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'jira', tool: 'jira.get_issue' }),
    });
    expect(r.status).toBe(403);
    expect(r.body.error_description).toMatch(/ProofKeyMissing.*dpop_jkt/);
  });

  it('binds the token to the thumbprint sent, and answers it so the broker can check', async () => {
    const session = await sessionFor(f, authorityUrl, { pod: 'support-bot-3', agent: 'support-bot' });
    const key = new DpopKey();
    const r = await httpCall(`${authorityUrl}/v1/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'jira', tool: 'jira.get_issue', dpop_jkt: key.thumbprint }),
    });
    expect(r.status).toBe(200);
    const credential = r.body.credential as { headers: Record<string, string>; dpop: { jkt: string } };
    expect(credential.dpop).toEqual({ jkt: key.thumbprint });
    const token = credential.headers.Authorization!.replace(/^DPoP /, '');
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
      cnf?: { jkt: string };
    };
    expect(payload.cnf).toEqual({ jkt: key.thumbprint });
  });
});
