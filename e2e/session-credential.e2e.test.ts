/**
 * Which credential an MCP session gets, through the real parts: a real `warden controller`
 * (authority, audit writer) on the real API server, users signed in at a real OpenID Provider, a
 * real broker (runBroker, attested with its pod-bound token), real MCP SDK clients and a real MCP
 * SDK server.
 *
 * One AccessPolicy has two Allow rules for the same target with different credential scopes and
 * conditions: rule 0 (jira:admin) for admins, rule 1 (jira:read) for support staff. The MCP
 * session traffic (initialize, notifications, tools/list — the broker's own tools/list included)
 * must carry the credential of the rule whose `when` holds for the caller, never rule 0's because
 * it comes first; a caller for whom no rule applies gets no session at all, told why.
 *
 * The same calls show that the trail names a user one way: the broker's Decision entries and the
 * authority's Credential entries both record `user: alice` with `userIssuer`, so
 * `kubectl warden audit --user alice` (run as users run it, a child process) finds both.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OidcFixture, startOidcProvider } from '../authority/oidc-fixture.js';
import { type McpUpstream, type Seen, startMcpUpstream } from '../broker/int-fixtures.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import type { RunningController } from '../controller/run.js';
import type { AuditEntry, AuditRecord } from '../core/api/index.js';
import { API_VERSION, GROUP, HEADER_USER_TOKEN, PLURAL, VERSION } from '../core/constants.js';
import { KubeConfigApi, type ObjectList } from '../kube/kube.js';
import { createAgentPod, startTestController, writePodToken } from './agent-stack.js';
import { eventually } from './eventually.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from './harness/index.js';

const ISSUER = 'https://warden-authority.session.e2e';
const AGENT = 'support-bot';

let ns: string;
let idp: OidcFixture;
let jira: McpUpstream;
let controller: RunningController;
let broker: RunningBroker;
let api: KubeConfigApi;
const dirs: string[] = [];
const tokens: Record<'alice' | 'root' | 'eve', string> = { alice: '', root: '', eve: '' };

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

/** The claims of the Warden JWT an upstream request carried (null when it carried none). */
function claimsOf(s: Seen): Record<string, unknown> | null {
  const auth = s.headers.authorization;
  if (typeof auth !== 'string' || !auth.startsWith('Bearer ')) return null;
  return decodeJwt(auth.slice('Bearer '.length));
}

const methodOf = (s: Seen): string =>
  String((s.body as { method?: unknown } | undefined)?.method ?? s.method);

/** The upstream requests made for `sub`, and their JWT scopes. */
const seenFor = (sub: string) =>
  jira.seen
    .map((s) => ({ method: methodOf(s), claims: claimsOf(s) }))
    .filter((s) => s.claims?.sub === sub)
    .map((s) => ({ method: s.method, scope: s.claims?.scope }));

/** An MCP session as the agent opens it for `who`: initialize, then `work` on the session. */
async function asUser<T>(who: keyof typeof tokens, work: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ name: 'session-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(
    new URL(`http://127.0.0.1:${broker.ports.listen}/mcp/jira`),
    { requestInit: { headers: { [HEADER_USER_TOKEN]: tokens[who] } } },
  );
  try {
    await client.connect(transport);
    return await work(client);
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  ns = await freshNamespace('session-cred');
  api = new KubeConfigApi(kubeConfig());
  idp = await startOidcProvider();
  tokens.alice = await idp.idToken({ sub: 'alice', groups: ['support'] });
  tokens.root = await idp.idToken({ sub: 'root', groups: ['admins'] });
  tokens.eve = await idp.idToken({ sub: 'eve', groups: ['contractors'] });
  jira = await startMcpUpstream();

  await create(PLURAL.AgentIdentity, 'AgentIdentity', AGENT, {
    serviceAccountName: AGENT,
    userContext: { mode: 'Optional', trustedIssuers: [{ issuer: idp.issuer, audiences: [idp.clientId] }] },
  });
  await create(PLURAL.CredentialProvider, 'CredentialProvider', 'jira', {
    target: { url: jira.url, protocol: 'MCP' },
    type: 'JWT',
    jwt: { audience: 'jira', defaultTTL: '5m' },
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', 'jira-access', {
    agentSelector: { names: [AGENT] },
    effect: 'Allow',
    rules: [
      {
        targets: ['jira'],
        tools: ['jira.*'],
        when: [{ name: 'admins', expression: "user.present && 'admins' in user.groups" }],
        credential: { scopes: ['jira:admin'] },
      },
      {
        targets: ['jira'],
        tools: ['jira.get_*', 'jira.search'],
        when: [{ name: 'support-staff', expression: "user.present && 'support' in user.groups" }],
        credential: { scopes: ['jira:read'] },
      },
    ],
  });

  controller = await startTestController(kubeConfig(), {
    namespace: ns,
    log: pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' }),
    identityPrefix: 'session-cred',
    issuer: ISSUER,
    idpCaPem: idp.caPem,
    audit: { maxEntries: 50, maxBytes: 256 * 1024, maxAgeMs: 300 },
  });
  const kc = kubeConfig();
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: AGENT } } });
  const pod = await createAgentPod(kc, { namespace: ns, agent: AGENT, name: `${AGENT}-0`, issuer: ISSUER });
  const { dir, tokenFile } = await writePodToken(kc, {
    namespace: ns,
    serviceAccount: AGENT,
    pod,
    prefix: 'warden-session-',
  });
  dirs.push(dir);
  broker = await runBroker({
    tokenFile,
    authorityUrl: `http://127.0.0.1:${controller.authorityPort}`,
    authorityIssuer: ISSUER,
    listen: { host: '127.0.0.1', port: 0 },
    healthPort: 0,
    healthHost: '127.0.0.1',
    podName: pod.metadata?.name,
    log: pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' }),
  });
  await eventually('the broker to be ready', async () => broker.readiness().ready, 30_000);
}, 120_000);

afterAll(async () => {
  await broker?.close();
  await controller?.stop();
  await jira?.close();
  await idp?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the credential of an MCP session comes from the rule whose when holds', () => {
  it('a support user: every session request carries the read credential, never the first rule (admin)', async () => {
    // callTool first: the broker fetches the tool list itself (its own session credential), then the agent lists.
    const { text, tools } = await asUser('alice', async (c) => {
      const r = (await c.callTool({ name: 'jira.search', arguments: { q: 'printers' } })) as {
        content: Array<{ text?: string }>;
      };
      const listed = await c.listTools();
      return { text: r.content.map((x) => x.text ?? '').join(''), tools: listed.tools.map((t) => t.name) };
    });
    expect(text).toBe('results for printers');
    // tools/list is filtered to what rule 1 could allow alice.
    expect(tools.sort()).toEqual(['jira.get_issue', 'jira.search']);
    const alice = seenFor('alice');
    const methods = new Set(alice.map((s) => s.method));
    for (const m of ['initialize', 'notifications/initialized', 'tools/list', 'tools/call']) {
      expect(methods, `an upstream ${m} for alice`).toContain(m);
    }
    // Two tools/list: the broker's own (before the call) and the agent's.
    expect(alice.filter((s) => s.method === 'tools/list').length).toBe(2);
    expect(alice.every((s) => s.scope === 'jira:read')).toBe(true);
  });

  it('an admin: the session carries the admin credential (the conditions decide, not the order)', async () => {
    const tools = await asUser('root', async (c) => (await c.listTools()).tools.map((t) => t.name));
    expect(tools).toContain('jira.admin_reset');
    const root = seenFor('root');
    expect(root.map((s) => s.method)).toContain('initialize');
    expect(root.every((s) => s.scope === 'jira:admin')).toBe(true);
  });

  it('a user no rule applies to gets no session: refused before the upstream, saying which condition failed', async () => {
    const before = jira.seen.length;
    const refused = await asUser('eve', async () => 'connected').catch((err: Error) => err.message);
    expect(refused).not.toBe('connected');
    expect(refused).toContain("MCP session traffic (no tool named) to 'jira' denied");
    expect(refused).toContain("condition 'admins' of AccessPolicy");
    expect(refused).toContain('is false');
    expect(jira.seen.length).toBe(before);
    expect(seenFor('eve')).toEqual([]);
  });

  it('the audit trail records which rule allowed each session, and the refusal', async () => {
    const entries = async (): Promise<AuditEntry[]> => {
      const list = await api.request<ObjectList<AuditRecord>>(
        'GET',
        `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
      );
      return list.items.filter((r) => r.spec.agent === AGENT).flatMap((r) => r.spec.entries);
    };
    const sessionOf = (es: AuditEntry[], user: string, decision: 'Allow' | 'Deny') =>
      es.find(
        (e) =>
          e.kind === 'Decision' &&
          e.user === user &&
          e.decision === decision &&
          e.tool === undefined &&
          e.replay?.kind === 'session',
      );
    await eventually(
      'session decisions of alice, root and eve in the AuditRecords',
      async () => {
        const es = await entries();
        return !!(
          sessionOf(es, 'alice', 'Allow') &&
          sessionOf(es, 'root', 'Allow') &&
          sessionOf(es, 'eve', 'Deny')
        );
      },
      30_000,
    );
    const es = await entries();
    expect(sessionOf(es, 'alice', 'Allow')?.message).toContain(`AccessPolicy ${ns}/jira-access rule 1`);
    expect(sessionOf(es, 'root', 'Allow')?.message).toContain(`AccessPolicy ${ns}/jira-access rule 0`);
    expect(sessionOf(es, 'eve', 'Deny')?.replay).toMatchObject({ policyReason: 'ConditionFailed' });
  });
});

describe('one spelling of the user in the audit trail (broker and authority)', () => {
  it("kubectl warden audit --user alice finds the broker's decisions and the authority's credentials", async () => {
    const audit = async (args: string[]): Promise<Array<AuditEntry & { agent: string }>> => {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'cli/kubectl-warden.ts', 'audit', '-n', ns, '-o', 'json', ...args],
        { env: { ...process.env, KUBECONFIG: kubeconfigPath() } },
      );
      return JSON.parse(stdout) as Array<AuditEntry & { agent: string }>;
    };
    await controller.auditWriter.flush(true);
    let rows: Array<AuditEntry & { agent: string }> = [];
    await eventually(
      "alice's broker Decision and authority Credential entries",
      async () => {
        rows = await audit(['--user', 'alice']);
        return (
          rows.some((r) => r.kind === 'Decision' && r.tool === 'jira.search') &&
          rows.some((r) => r.kind === 'Credential' && r.target === 'jira')
        );
      },
      30_000,
    );
    // Every row is alice's, in one spelling, with the issuer that vouched for her apart.
    expect(new Set(rows.map((r) => `${r.user}|${r.userIssuer}`))).toEqual(new Set([`alice|${idp.issuer}`]));
    expect(new Set(rows.map((r) => r.kind))).toEqual(new Set(['Decision', 'Credential']));
    // The issuer-qualified form finds the same rows; another issuer's alice would not match it.
    const qualified = await audit(['--user', `alice (${idp.issuer})`]);
    expect(qualified.length).toBe(rows.length);
    expect(await audit(['--user', 'alice (https://elsewhere.example)'])).toEqual([]);
  });
});
