/**
 * Agent-to-agent delegation chains through the real parts: a real `warden controller` (authority,
 * audit writer) on the real API server, alice signed in at a real OpenID Provider, and two agent
 * stacks, each with its own real broker (runBroker, attested with its pod-bound token):
 *
 *   alice → planner (agent A) → its broker → researcher's MCP server (agent B, a real MCP SDK
 *   server) → researcher's broker → the `jira` MCP server (real MCP SDK server)
 *
 * planner's broker injects a Warden JWT (sub alice, act planner, audience researcher's agent URN)
 * toward researcher; researcher forwards it to its own broker as the caller's token. researcher's
 * broker and the authority read the chain from it; policy decides on request.chain; the jira
 * credential nests both agents in `act`; every hop's audit entry records the chain.
 */
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type OidcFixture, startOidcProvider } from '../authority/oidc-fixture.js';
import { type McpUpstream, startMcpUpstream } from '../broker/int-fixtures.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import type { RunningController } from '../controller/run.js';
import type { AuditEntry, AuditRecord } from '../core/api/index.js';
import {
  API_VERSION,
  GROUP,
  HEADER_REQUEST_ID,
  HEADER_USER_TOKEN,
  PLURAL,
  VERSION,
} from '../core/constants.js';
import { KubeConfigApi, type ObjectList } from '../kube/kube.js';
import { createAgentPod, startTestController, writePodToken } from './agent-stack.js';
import { eventually } from './eventually.js';
import { freshNamespace, kubeConfig } from './harness/index.js';

/** The authority's issuer here: https, as spec.userContext.trustedIssuers requires. */
const ISSUER = 'https://warden-authority.chain.e2e';

let ns: string;
let idp: OidcFixture;
let jira: McpUpstream;
let researcherServer: Server;
let controller: RunningController;
let planner: RunningBroker;
let researcher: RunningBroker;
let api: KubeConfigApi;
const dirs: string[] = [];

/** What researcher's MCP server saw and did, per call of its `research` tool. */
const researcherSaw: Array<{ authorization: string | undefined }> = [];

const text = (t: string, isError = false) => ({ content: [{ type: 'text' as const, text: t }], isError });

async function mcpCall(
  url: string,
  headers: Record<string, string>,
  tool: string,
  args: Record<string, unknown>,
): Promise<{ text: string; isError: boolean }> {
  const client = new Client({ name: 'chain-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  try {
    // A refusal of the MCP session itself (initialize) surfaces here, as one of the call would.
    await client.connect(transport);
    const r = (await client.callTool({ name: tool, arguments: args })) as {
      content: Array<{ type: string; text?: string }>;
      isError?: boolean;
    };
    return { text: r.content.map((c) => c.text ?? '').join(''), isError: r.isError === true };
  } catch (err) {
    return { text: `refused: ${(err as Error).message}`, isError: true };
  } finally {
    await client.close();
  }
}

/**
 * researcher's code: an MCP server whose `research` tool calls `jira` through researcher's own
 * broker, forwarding the token its caller's broker injected as the caller's token.
 */
async function startResearcherServer(): Promise<string> {
  researcherServer = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body: unknown = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const s = new McpServer({ name: 'researcher', version: '1.0.0' });
    s.registerTool(
      'research',
      { description: 'Looks things up in jira', inputSchema: { tool: z.string() } },
      async ({ tool }, extra) => {
        const authorization = extra.requestInfo?.headers.authorization as string | undefined;
        researcherSaw.push({ authorization });
        const token = (authorization ?? '').replace(/^Bearer\s+/i, '');
        const r = await mcpCall(
          `http://127.0.0.1:${researcher.ports.listen}/mcp/jira`,
          token ? { [HEADER_USER_TOKEN]: token } : {},
          tool,
          { q: 'printers', key: 'OPS-1' },
        );
        return text(r.text, r.isError);
      },
    );
    const t = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void t.close());
    await s.connect(t);
    await t.handleRequest(req, res, body);
  });
  await new Promise<void>((r) => researcherServer.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(researcherServer.address() as AddressInfo).port}/mcp`;
}

async function create(plural: string, kind: string, name: string, spec: unknown): Promise<void> {
  await kubeConfig()
    .makeApiClient(CustomObjectsApi)
    .createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural,
      body: { apiVersion: API_VERSION, kind, metadata: { name, namespace: ns }, spec },
    });
}

async function startAgentBroker(agent: string): Promise<RunningBroker> {
  const kc = kubeConfig();
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: agent } } });
  const pod = await createAgentPod(kc, { namespace: ns, agent, name: `${agent}-0`, issuer: ISSUER });
  const { dir, tokenFile } = await writePodToken(kc, {
    namespace: ns,
    serviceAccount: agent,
    pod,
    prefix: 'warden-chain-',
  });
  dirs.push(dir);
  return runBroker({
    tokenFile,
    authorityUrl: `http://127.0.0.1:${controller.authorityPort}`,
    authorityIssuer: ISSUER,
    listen: { host: '127.0.0.1', port: 0 },
    healthPort: 0,
    healthHost: '127.0.0.1',
    podName: pod.metadata?.name,
    log: pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' }),
  });
}

const researcherUrn = () => `urn:warden:agent:${ns}:researcher`;
const subject = (agent: string) => `system:warden:agent:${ns}:${agent}`;

async function entries(agent: string): Promise<AuditEntry[]> {
  const list = await api.request<ObjectList<AuditRecord>>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
  );
  return list.items.filter((r) => r.spec.agent === agent).flatMap((r) => r.spec.entries);
}

let alice: string;

beforeAll(async () => {
  ns = await freshNamespace('chain');
  api = new KubeConfigApi(kubeConfig());
  idp = await startOidcProvider();
  alice = await idp.idToken({ sub: 'alice', groups: ['research'] });
  jira = await startMcpUpstream();
  const researcherUrl = await startResearcherServer();

  await create(PLURAL.AgentIdentity, 'AgentIdentity', 'planner', {
    serviceAccountName: 'planner',
    userContext: { mode: 'Optional', trustedIssuers: [{ issuer: idp.issuer, audiences: [idp.clientId] }] },
  });
  // researcher accepts Warden's own tokens minted for it as the caller: the chain's entry point.
  await create(PLURAL.AgentIdentity, 'AgentIdentity', 'researcher', {
    serviceAccountName: 'researcher',
    userContext: { mode: 'Optional', trustedIssuers: [{ issuer: ISSUER, audiences: [researcherUrn()] }] },
  });
  await create(PLURAL.CredentialProvider, 'CredentialProvider', 'researcher', {
    target: { url: researcherUrl, protocol: 'MCP' },
    type: 'JWT',
    jwt: { audience: researcherUrn(), defaultTTL: '5m' },
  });
  await create(PLURAL.CredentialProvider, 'CredentialProvider', 'jira', {
    target: { url: jira.url, protocol: 'MCP' },
    type: 'JWT',
    jwt: { audience: 'jira', defaultTTL: '5m' },
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', 'planner-asks-researcher', {
    agentSelector: { names: ['planner'] },
    effect: 'Allow',
    rules: [{ targets: ['researcher'], tools: ['research'] }],
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', 'researcher-reads-jira', {
    agentSelector: { names: ['researcher'] },
    effect: 'Allow',
    rules: [
      {
        targets: ['jira'],
        tools: ['jira.search'],
        when: [
          { name: 'for-planner', expression: "request.chain.exists(a, a.name == 'planner')" },
          { name: 'at-most-two-agents', expression: 'size(request.chain) <= 2' },
        ],
      },
      {
        targets: ['jira'],
        tools: ['jira.get_issue'],
        when: [{ name: 'not-delegated', expression: 'size(request.chain) <= 1' }],
      },
    ],
  });

  controller = await startTestController(kubeConfig(), {
    namespace: ns,
    log: pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' }),
    identityPrefix: 'chain',
    issuer: ISSUER,
    idpCaPem: idp.caPem,
    audit: { maxEntries: 50, maxBytes: 256 * 1024, maxAgeMs: 300 },
  });
  planner = await startAgentBroker('planner');
  researcher = await startAgentBroker('researcher');
  await eventually(
    'both brokers to be ready',
    async () => planner.readiness().ready && researcher.readiness().ready,
    30_000,
  );
}, 120_000);

afterAll(async () => {
  await planner?.close();
  await researcher?.close();
  await controller?.stop();
  await new Promise<void>((r) => (researcherServer ? researcherServer.close(() => r()) : r()));
  await jira?.close();
  await idp?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const askPlanner = (tool: string) =>
  mcpCall(
    `http://127.0.0.1:${planner.ports.listen}/mcp/researcher`,
    { [HEADER_USER_TOKEN]: alice },
    'research',
    {
      tool,
    },
  );

describe('a call through two agents', () => {
  it('is decided with the chain, and the credential at the end nests both agents in act', async () => {
    const r = await askPlanner('jira.search');
    expect(r).toEqual({ text: 'results for printers', isError: false });

    // The token planner's broker injected toward researcher: alice, acted for by planner.
    const inbound = decodeJwt(researcherSaw.at(-1)?.authorization?.replace(/^Bearer /, '') ?? '');
    expect(inbound).toMatchObject({
      iss: ISSUER,
      aud: researcherUrn(),
      sub: 'alice',
      act: { sub: subject('planner') },
    });
    expect((inbound.act as { act?: unknown }).act).toBeUndefined();

    // The token researcher's broker injected toward jira: researcher acting for planner acting for alice.
    const call = jira.seen
      .filter((s) => (s.body as { method?: string } | undefined)?.method === 'tools/call')
      .at(-1);
    const jwt = decodeJwt(String(call?.headers.authorization).replace(/^Bearer /, ''));
    expect(jwt).toMatchObject({
      iss: ISSUER,
      aud: 'jira',
      sub: 'alice',
      act: { sub: subject('researcher'), act: { sub: subject('planner') } },
      client_id: subject('researcher'),
    });
    console.log('jira credential claims:', JSON.stringify({ sub: jwt.sub, act: jwt.act, aud: jwt.aud }));
  });

  it('is denied when the chain is deeper than the rule allows, saying which condition', async () => {
    const before = jira.calls.length;
    const r = await askPlanner('jira.get_issue');
    expect(r.isError).toBe(true);
    expect(r.text).toContain('not-delegated');
    expect(jira.calls.length).toBe(before);
  });

  it('records the whole chain in the audit entries of both brokers and of the authority', async () => {
    const chain = [
      { name: 'planner', namespace: ns },
      { name: 'researcher', namespace: ns },
    ];
    await eventually(
      'researcher audit entries with the chain',
      async () => {
        const es = await entries('researcher');
        return (
          es.some((e) => e.kind === 'Decision' && e.tool === 'jira.search' && e.decision === 'Allow') &&
          es.some((e) => e.kind === 'Decision' && e.tool === 'jira.get_issue' && e.decision === 'Deny') &&
          es.some((e) => e.kind === 'Credential' && e.target === 'jira' && e.decision === 'Allow')
        );
      },
      30_000,
    );
    const es = await entries('researcher');
    const allowed = es.find((e) => e.kind === 'Decision' && e.tool === 'jira.search');
    expect(allowed).toMatchObject({ decision: 'Allow', user: 'alice', chain });
    // Denied by researcher's broker before the authority verified the token for this call: the
    // chain is recorded as the token claimed it, never as the verified chain.
    const denied = es.find((e) => e.kind === 'Decision' && e.tool === 'jira.get_issue');
    expect(denied).toMatchObject({ decision: 'Deny', user: 'alice', claimedChain: chain });
    expect(denied?.chain).toBeUndefined();
    expect(denied?.message).toContain('not-delegated');
    const credential = es.find(
      (e) => e.kind === 'Credential' && e.target === 'jira' && e.decision === 'Allow',
    );
    // The same spelling as the broker's entries: the subject, and the issuer apart.
    expect(credential).toMatchObject({ user: 'alice', userIssuer: ISSUER, chain });
    console.log('researcher broker Decision entry:', JSON.stringify(allowed));
    // planner's hop was not delegated by another agent: its entries carry no chain.
    const plannerEntries = await entries('planner');
    const first = plannerEntries.find((e) => e.kind === 'Decision' && e.tool === 'research');
    expect(first).toMatchObject({ decision: 'Allow', user: 'alice' });
    expect(first?.chain).toBeUndefined();
  });

  it('a call researcher makes on its own has a chain of one: the rule needing planner denies it', async () => {
    const r = await mcpCall(`http://127.0.0.1:${researcher.ports.listen}/mcp/jira`, {}, 'jira.search', {});
    expect(r.isError).toBe(true);
    expect(r.text).toContain('for-planner');
    const direct = await mcpCall(
      `http://127.0.0.1:${researcher.ports.listen}/mcp/jira`,
      {},
      'jira.get_issue',
      {
        key: 'OPS-1',
      },
    );
    expect(direct).toEqual({ text: 'issue OPS-1: printer on fire', isError: false });
  });

  /** The token planner's broker injected toward researcher, with its claims rewritten (signature kept). */
  const forge = (edit: (claims: Record<string, unknown>) => Record<string, unknown>): string => {
    const real = researcherSaw.at(-1)?.authorization?.replace(/^Bearer /, '') ?? '';
    const [h, p, sig] = real.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    return `${h}.${Buffer.from(JSON.stringify(edit(claims))).toString('base64url')}.${sig}`;
  };
  const forgedEntries = async (requestId: string, what: string): Promise<AuditEntry[]> => {
    let found: AuditEntry[] = [];
    await eventually(
      what,
      async () => {
        found = (await entries('researcher')).filter((e) => e.requestId === requestId);
        return found.some((e) => e.kind === 'Decision' && e.decision === 'Deny');
      },
      30_000,
    );
    return found;
  };
  const ceo = { name: 'ceo-bot', namespace: '' };

  it('never trusts an unverified chain: a token whose claims were altered gets no credential', async () => {
    // Still "planner acting for someone": the broker's local decision allows; the authority
    // verifies the signature before any credential and refuses.
    const forged = forge((c) => ({ ...c, sub: 'mallory' }));
    const before = jira.calls.length;
    const r = await mcpCall(
      `http://127.0.0.1:${researcher.ports.listen}/mcp/jira`,
      { [HEADER_USER_TOKEN]: forged, [HEADER_REQUEST_ID]: 'forged-sub' },
      'jira.search',
      {},
    );
    expect(r.isError).toBe(true);
    expect(r.text).toContain('signature is invalid');
    expect(jira.calls.length).toBe(before);
    console.log('forged chain refusal:', r.text);
    // The broker's Deny (the authority refused the token) records the chain as claimed only.
    const es = await forgedEntries('forged-sub', "the broker's Deny of the forged token");
    const denied = es.filter((e) => e.kind === 'Decision' && e.decision === 'Deny');
    expect(denied.length).toBeGreaterThan(0);
    for (const e of denied) {
      expect(e.chain, JSON.stringify(e)).toBeUndefined();
      expect(e.claimedChain).toEqual([
        { name: 'planner', namespace: ns },
        { name: 'researcher', namespace: ns },
      ]);
    }
    expect(denied.some((e) => e.message?.includes('signature is invalid'))).toBe(true);
  });

  it('a forged chain denied by policy before any verification is recorded as claimed, never as the chain', async () => {
    // A token naming an agent that never called (ceo-bot) ahead of planner: three agents, so
    // researcher's rules (at most two; not delegated) deny it locally — the authority never sees it.
    ceo.namespace = ns;
    const forged = forge((c) => ({
      ...c,
      act: { sub: subject('planner'), act: { sub: subject('ceo-bot') } },
    }));
    const r = await mcpCall(
      `http://127.0.0.1:${researcher.ports.listen}/mcp/jira`,
      { [HEADER_USER_TOKEN]: forged, [HEADER_REQUEST_ID]: 'forged-chain' },
      'jira.search',
      {},
    );
    expect(r.isError).toBe(true);
    expect(r.text).toContain('at-most-two-agents');
    const es = await forgedEntries('forged-chain', "the broker's Deny of the forged chain");
    const denied = es.filter((e) => e.kind === 'Decision' && e.decision === 'Deny');
    for (const e of denied) {
      expect(e.chain, JSON.stringify(e)).toBeUndefined();
      expect(e.claimedChain).toEqual([
        ceo,
        { name: 'planner', namespace: ns },
        { name: 'researcher', namespace: ns },
      ]);
    }
    // Nowhere in the trail is ceo-bot part of a verified chain.
    const all = [...(await entries('researcher')), ...(await entries('planner'))];
    expect(all.filter((e) => e.chain?.some((a) => a.name === 'ceo-bot'))).toEqual([]);
  });
});
