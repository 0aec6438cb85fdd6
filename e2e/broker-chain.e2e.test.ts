/**
 * The broker chain against the real control plane and the real authority: a pod (created directly:
 * no kubelet runs) → its pod-bound projected token → the broker (in-process, runBroker) attests at the
 * authority → follows the policy stream (which also tells it the CredentialProviders) → the agent's tool calls are decided (locally, then centrally
 * at /v1/credentials) and reach a real MCP server (SDK McpServer, stateless) → audit events reach the
 * authority → the kill switch (spec.suspended) denies.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditSubject, BrokerEvent, BrokerEventSink } from '../authority/audit-endpoint.js';
import { type Authority, createAuthority } from '../authority/index.js';
import {
  createAgentIdentity,
  createPod,
  createServiceAccount,
  type Fixture,
  fixture,
  patchAgentIdentity,
  projectedToken,
  TEST_BROKER_IMAGE,
} from '../authority/int-fixtures.js';
import { BrokerDenyReason, JSONRPC_POLICY_DENIED } from '../broker/constants.js';
import { type McpUpstream, type Seen, startHttpUpstream, startMcpUpstream } from '../broker/int-fixtures.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import { freshNamespace, kubeConfig } from './harness/index.js';

let f: Fixture;
let authority: Authority;
let broker: RunningBroker;
let mcp: McpUpstream;
let api: { url: string; seen: Seen[]; close(): Promise<void> };
let saToken: string;
const shipped: Array<{ who: AuditSubject; event: BrokerEvent }> = [];
const sink: BrokerEventSink = {
  recordBrokerEvents: (who, events) => {
    for (const event of events) shipped.push({ who, event });
  },
};
/** Everything the agent received, to look for credentials in. */
const received: string[] = [];

async function agentPost(body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(`http://127.0.0.1:${broker.ports.listen}/mcp/jira`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  received.push(...[...r.headers].map(([k, v]) => `${k}: ${v}`), text);
  return {
    status: r.status,
    json: JSON.parse(text) as Record<string, unknown> & {
      error?: { code: number; message: string; data?: Record<string, unknown> };
    },
  };
}

const call = (id: number, name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
});

beforeAll(async () => {
  const kc = kubeConfig();
  f = fixture(kc, await freshNamespace('broker-chain'));
  await createServiceAccount(f, 'bot-sa');
  await createAgentIdentity(f, 'support-bot', { serviceAccountName: 'bot-sa' });
  const custom = kc.makeApiClient(CustomObjectsApi);
  const policy = (name: string, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: f.namespace,
      plural: PLURAL.AccessPolicy,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AccessPolicy', metadata: { name }, spec },
    });
  await policy('jira-support', {
    agentSelector: { names: ['support-bot'] },
    rules: [
      { targets: ['jira'], tools: ['jira.get_*', 'jira.search', 'jira.delete_*'] },
      { targets: ['tickets'], http: { methods: ['GET'], paths: ['/api/v1/tickets/*'] } },
    ],
  });
  await policy('no-delete', { effect: 'Deny', rules: [{ targets: ['*'], tools: ['*.delete_*'] }] });

  mcp = await startMcpUpstream({ stateless: true });
  api = await startHttpUpstream();
  // Each target is a CredentialProvider: the authority mints a Warden JWT for it after its Allow.
  // The broker gets no --provider configuration: it learns the targets from the policy snapshot.
  for (const [name, url, protocol] of [
    ['jira', mcp.url, 'MCP'],
    ['tickets', api.url, 'HTTP'],
  ] as const) {
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: f.namespace,
      plural: PLURAL.CredentialProvider,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'CredentialProvider',
        metadata: { name },
        spec: { target: { url, protocol }, type: 'JWT', jwt: {} },
      },
    });
  }
  authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace: f.namespace,
    watchNamespace: f.namespace,
    issuer: 'https://warden-authority.test',
    log: pino({ level: 'silent' }),
    brokerAuditSinks: [sink],
  });
  const authorityPort = await authority.listen(0, '127.0.0.1');

  const pod = await createPod(f, 'support-bot-1', { serviceAccount: 'bot-sa', agent: 'support-bot' });
  saToken = await projectedToken(f, 'bot-sa', pod);
  const dir = await mkdtemp(join(tmpdir(), 'warden-broker-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, saToken, { mode: 0o600 });
  broker = await runBroker({
    tokenFile,
    authorityUrl: `http://127.0.0.1:${authorityPort}`,
    listen: { host: '127.0.0.1', port: 0 },
    healthPort: 0,
    healthHost: '127.0.0.1',
    log: pino({ level: 'silent' }),
  });
});

afterAll(async () => {
  await broker?.close();
  await authority?.close();
  await mcp?.close();
  await api?.close();
});

describe('broker chain (real control plane + authority)', () => {
  it('attests with the pod-bound token and becomes ready once the policy snapshot arrived', async () => {
    await expect
      .poll(async () => (await fetch(`http://127.0.0.1:${broker.ports.health}/readyz`)).status, {
        timeout: 20_000,
      })
      .toBe(200);
    expect(broker.client.snapshot?.agent?.name).toBe('support-bot');
    expect(broker.client.snapshot?.policies.map((p) => p.name)).toEqual(['jira-support', 'no-delete']);
  });

  it('an allowed tool call is decided locally and centrally and reaches the MCP server', async () => {
    const r = await agentPost(call(1, 'jira.get_issue', { key: 'SUP-7' }));
    expect(r.json.result).toEqual({ content: [{ type: 'text', text: 'issue SUP-7: printer on fire' }] });
    expect(mcp.calls).toContain('jira.get_issue');
  });

  it('a denied tool call carries structured reasons and never reaches the MCP server', async () => {
    const before = mcp.seen.length;
    const r = await agentPost(call(2, 'jira.delete_issue', { key: 'SUP-7' }));
    expect(r.json.error?.code).toBe(JSONRPC_POLICY_DENIED);
    expect(r.json.error?.data).toMatchObject({
      decision: 'Deny',
      reason: 'DeniedByPolicy',
      reasons: [{ policy: `${f.namespace}/no-delete`, rule: 0 }],
    });
    expect(mcp.seen.length).toBe(before);
  });

  it('the HTTP proxy is decided by method and path and strips what the agent sends', async () => {
    const ok = await fetch(`http://127.0.0.1:${broker.ports.listen}/http/tickets/api/v1/tickets/9`, {
      headers: { authorization: 'Bearer agent-made-up' },
    });
    received.push(await ok.text());
    expect(ok.status).toBe(200);
    // The agent's made-up bearer is stripped; the upstream gets the Warden JWT minted for 'tickets'.
    expect(api.seen.at(-1)?.headers.authorization).not.toContain('agent-made-up');
    expect(api.seen.at(-1)?.headers.authorization).toMatch(/^Bearer eyJ/);
    const no = await fetch(`http://127.0.0.1:${broker.ports.listen}/http/tickets/api/v1/admin`);
    received.push(await no.text());
    expect(no.status).toBe(403);
  });

  it('ships audit events to the authority, stamped with the attested pod', async () => {
    await expect.poll(() => shipped.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    const denied = shipped.find((s) => s.event.entry.tool === 'jira.delete_issue');
    expect(denied?.who).toMatchObject({ namespace: f.namespace, agent: 'support-bot', pod: 'support-bot-1' });
    expect(denied?.event.entry.decision).toBe('Deny');
  });

  it('the kill switch reaches the broker over the stream and denies', async () => {
    await patchAgentIdentity(f, 'support-bot', { suspended: true, suspendReason: 'e2e incident' });
    await expect
      .poll(() => broker.broker.decider.blocked()?.reason, { timeout: 10_000, interval: 20 })
      .toBe(BrokerDenyReason.AgentSuspended);
    const before = mcp.seen.length;
    const r = await agentPost(call(3, 'jira.search', { q: 'x' }));
    expect(r.json.error?.data).toMatchObject({ reason: BrokerDenyReason.AgentSuspended });
    expect(r.json.error?.message).toMatch(/suspended: e2e incident/);
    expect(mcp.seen.length).toBe(before);
  });

  it('the agent never observed a credential', () => {
    const all = received.join('\n');
    expect(all).not.toContain(saToken);
    expect(all).not.toMatch(/Bearer\s+ey/);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
  });
});
