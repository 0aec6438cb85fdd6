/**
 * `make demo`: the Warden story on an embedded local control plane, narrated step by
 * step with real parts only — kube-apiserver + etcd built from source, the Warden
 * controller (operator, webhook, authority), a real OIDC provider, a real MCP server,
 * the broker, and an MCP client playing the agent. Cleans up and exits 0 on success.
 *
 * There is no kubelet here: the agent pod is admitted (and mutated) by the API server
 * but never runs, so the broker runs as a local process holding a token bound to that
 * pod — exactly what the kubelet would mount into the injected sidecar.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import { pino } from 'pino';
import { startOidcProvider } from '../../authority/oidc-fixture.js';
import { type RunningBroker, runBroker } from '../../broker/main.js';
import { type RunningController, runController } from '../../controller/run.js';
import {
  ANNOTATION_AGENT,
  ANNOTATION_INJECTED,
  GROUP,
  HEADER_USER_TOKEN,
  PLURAL,
  VERSION,
} from '../../core/constants.js';
import { KubeConfigApi } from '../../kube/kube.js';
import { webhookConfiguration } from '../../webhook/config.js';
import { freePort, startControlPlane, useBuiltKubectl } from '../controlplane/controlplane.js';
import { installCrds } from '../harness/crds.js';
import { kubectlAt } from '../harness/kubectl.js';
import { createWardenAdmin, postgresProviderSpec, startPostgres } from '../harness/postgres.js';
import { DEMO_GATEWAY_SERVICE_ACCOUNT, gatewayStep } from './gateway-step.js';
import { startSampleMcpServer } from './sample-mcp-server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NS = 'demo';
const WARDEN_NS = 'warden-system';
let step = 0;
const say = (line: string) => process.stdout.write(`\n${String(++step).padStart(2)}. ${line}\n`);
const show = (text: string) => process.stdout.write(`${text.trimEnd().replace(/^/gm, '      ')}\n`);
const ms = (t0: number) => `${(performance.now() - t0).toFixed(0)} ms`;

const cleanups: Array<() => Promise<unknown>> = [];
const t0 = Date.now();
let failed = false;

async function main(): Promise<void> {
  say('Start a local Kubernetes control plane (kube-apiserver + etcd, built from their Go modules)');
  const cp = await startControlPlane({ log: (l) => show(l) });
  cleanups.push(() => cp.stop());
  useBuiltKubectl(cp.binaries);
  const k = (args: string[], input?: string) => kubectlAt(cp.kubeconfigPath, args, input ? { input } : {});
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);

  say("Install Warden's CRDs and start the Warden controller (operator + webhook + authority)");
  await installCrds(cp.kubeconfigPath);
  for (const ns of [WARDEN_NS, NS]) await core.createNamespace({ body: { metadata: { name: ns } } });
  const oidc = await startOidcProvider();
  cleanups.push(() => oidc.stop());
  const authorityPort = await freePort();
  const issuer = `http://127.0.0.1:${authorityPort}`;
  // The controller writes every audit event as a JSON line on its stdout for a log pipeline
  // (docs/audit-export.md). Here that stdout is the demo's own, so keep the lines and show one
  // at the audit step instead of interleaving hundreds with the story.
  const exported = { count: 0, last: '' };
  const controller: RunningController = await runController({
    auditLineWriter: (text) => {
      for (const line of text.split('\n')) {
        if (line === '') continue;
        exported.count++;
        exported.last = line;
      }
    },
    kubeConfig: kc,
    // Errors only: the start-up retries while the fresh API server initialises are expected.
    log: pino({ level: 'error' }),
    namespace: WARDEN_NS,
    identity: 'demo-controller',
    leaderElection: true,
    host: '127.0.0.1',
    webhookPort: 0,
    authorityPort,
    healthPort: 0,
    tlsNames: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
    webhookConfigurationName: 'warden-pod-injector',
    issuer,
    authorityTls: false,
    idpCaPem: oidc.caPem,
    broker: { image: 'warden:demo' },
    tlsSecret: 'warden-webhook-tls',
    version: 'demo',
    audit: { maxEntries: 50, maxBytes: 256 * 1024, maxAgeMs: 1000 },
    // Expired temporary PostgreSQL roles are dropped within a second (default 60 s).
    postgresSweepIntervalMs: 1000,
    // The shared gateway's service account (the optional gateway step).
    gatewayServiceAccounts: [`${WARDEN_NS}/${DEMO_GATEWAY_SERVICE_ACCOUNT}`],
  });
  cleanups.push(() => controller.stop());
  const mwc = webhookConfiguration({
    wardenNamespace: WARDEN_NS,
    clientConfig: { url: `https://127.0.0.1:${controller.webhookPort}/mutate` },
    caBundlePem: controller.webhook.material().caBundlePem,
  });
  await k(['apply', '-f', '-'], JSON.stringify(mwc));
  show(
    `authority ${issuer}, webhook https://127.0.0.1:${controller.webhookPort}/mutate (registered with the API server)`,
  );

  say('The platform team declares the agent, its policies and a credential provider');
  const jira = await startSampleMcpServer({ issuer, jwksUrl: `${issuer}/.well-known/jwks.json` });
  cleanups.push(() => jira.close());
  const db = await startSampleDatabase();
  cleanups.push(() => db.stop());
  const manifests = demoManifests({
    jiraUrl: jira.url,
    oidcIssuer: oidc.issuer,
    oidcAudience: oidc.clientId,
    db,
  });
  const applied = await k(['apply', '-n', NS, '-f', '-'], manifests);
  if (applied.code !== 0) throw new Error(`applying the demo resources failed:\n${applied.stderr}`);
  show(applied.stdout);
  await waitUntil('AgentIdentity support-bot Ready', async () => {
    const r = await k([
      'get',
      'agentidentity',
      'support-bot',
      '-n',
      NS,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    ]);
    return r.stdout === 'True';
  });
  show((await k(['get', 'warden', '-n', NS])).stdout);

  say('The app team starts an annotated agent pod: the webhook injects the broker sidecar');
  const podManifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'support-bot-0', annotations: { [ANNOTATION_AGENT]: 'support-bot' } },
    spec: {
      serviceAccountName: 'support-bot',
      containers: [{ name: 'agent', image: 'ghcr.io/acme/support-bot:1.4' }],
    },
  };
  const podOut = await k(['apply', '-n', NS, '-f', '-'], JSON.stringify(podManifest));
  if (podOut.code !== 0) throw new Error(`pod rejected:\n${podOut.stderr}`);
  const pod = await core.readNamespacedPod({ name: 'support-bot-0', namespace: NS });
  const sidecar = pod.spec?.initContainers?.find((c) => c.restartPolicy === 'Always');
  show(`init (native sidecar): ${sidecar?.name} — ${sidecar?.args?.join(' ')}`);
  show(`agent env: ${(pod.spec?.containers?.[0]?.env ?? []).map((e) => `${e.name}=${e.value}`).join(' ')}`);
  show(`annotation ${ANNOTATION_INJECTED}: ${pod.metadata?.annotations?.[ANNOTATION_INJECTED]}`);
  const suspendedPod = await k([
    'run',
    'rogue',
    '-n',
    NS,
    '--image=x',
    '--overrides',
    JSON.stringify({ spec: { serviceAccountName: 'default' } }),
    '--annotations',
    `${ANNOTATION_AGENT}=support-bot`,
  ]);
  show(`a pod claiming support-bot with another service account is refused:\n${suspendedPod.stderr.trim()}`);

  say('The broker attests with its pod-bound service-account token and receives its policy');
  const tokenRes = await core.createNamespacedServiceAccountToken({
    name: 'support-bot',
    namespace: NS,
    body: {
      spec: {
        audiences: ['warden.dev/broker'],
        expirationSeconds: 600,
        boundObjectRef: {
          apiVersion: 'v1',
          kind: 'Pod',
          name: 'support-bot-0',
          uid: pod.metadata?.uid ?? '',
        },
      },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'warden-demo-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, tokenRes.status?.token ?? '', { mode: 0o600 });
  const tAttest = performance.now();
  const broker: RunningBroker = await runBroker({
    tokenFile,
    authorityUrl: issuer,
    listen: { host: '127.0.0.1', port: 0 },
    pgListen: { host: '127.0.0.1', port: 0 },
    healthPort: 0,
    healthHost: '127.0.0.1',
    podName: 'support-bot-0',
    log: pino({ level: 'error' }),
  });
  cleanups.push(() => broker.close());
  // For the final check only: the PostgreSQL passwords the authority gave the broker.
  const issue = broker.client.issue.bind(broker.client);
  broker.client.issue = async (req) => {
    const c = await issue(req);
    if (c.postgresql) issuedSecrets.push(c.postgresql.password);
    return c;
  };
  await waitUntil('broker ready', async () => broker.readiness().ready);
  show(`attested and ready in ${ms(tAttest)}: ${broker.readiness().reason}`);

  say('The agent (a real MCP client) lists tools through the broker: only what policy could allow');
  const mcpUrl = new URL(`http://127.0.0.1:${broker.ports.listen}/mcp/jira`);
  const agent = await connectAgent(mcpUrl, {});
  cleanups.push(() => agent.close());
  const tools = await agent.listTools();
  show(`tools: ${tools.tools.map((t) => t.name).join(', ')}`);

  say('An allowed call: jira.get_issue — the broker injects a just-in-time Warden JWT upstream');
  const got = await agent.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-7' } });
  show(textOf(got));

  say('A denied call: jira.delete_issue — refused with the reasons, the MCP server never sees it');
  const before = jira.calls.length;
  show(await denial(() => agent.callTool({ name: 'jira.delete_issue', arguments: { key: 'SUP-7' } })));
  show(`calls that reached the MCP server during the denial: ${jira.calls.length - before}`);

  say('jira.create_issue with the agent acting alone: denied (the rule needs a support user)');
  show(
    await denial(() =>
      agent.callTool({ name: 'jira.create_issue', arguments: { summary: 'Printer on fire' } }),
    ),
  );

  say('The same call on behalf of alice (group "support", signed in at the OIDC provider): allowed');
  const aliceToken = await oidc.idToken({ sub: 'alice', groups: ['support'], department: 'customer-care' });
  const alice = await connectAgent(mcpUrl, { [HEADER_USER_TOKEN]: aliceToken });
  cleanups.push(() => alice.close());
  show(
    textOf(await alice.callTool({ name: 'jira.create_issue', arguments: { summary: 'Printer on fire' } })),
  );
  const bob = await connectAgent(mcpUrl, {
    [HEADER_USER_TOKEN]: await oidc.idToken({ sub: 'bob', groups: ['sales'] }),
  });
  cleanups.push(() => bob.close());
  show(
    `bob (group "sales"): ${await denial(() => bob.callTool({ name: 'jira.create_issue', arguments: { summary: 'x' } }))}`,
  );

  say('The agent queries the orders database through the broker: no password, a temporary role');
  const pgUrl = `postgresql://127.0.0.1:${broker.ports.pg}/orders-db`;
  show(`agent connects to ${pgUrl} (WARDEN_PG_BASE + provider name) as any user, without a password`);
  const sql = new pg.Client({ connectionString: pgUrl, user: 'support-bot' });
  // biome-ignore lint/suspicious/noExplicitAny: pg's Connection.stream is not in its typings.
  ((sql as any).connection.stream as NodeJS.ReadableStream).on('data', (d: Buffer) =>
    received.push(d.toString('latin1')),
  );
  let sessionEnded = false;
  sql.on('error', () => {});
  sql.on('end', () => {
    sessionEnded = true;
  });
  await sql.connect();
  const rows = await sql.query<{ who: string; orders: string; until: string }>(
    `SELECT current_user AS who, (SELECT count(*) FROM orders) AS orders,
            (SELECT rolvaliduntil FROM pg_roles WHERE rolname = current_user)::text AS until`,
  );
  const role = rows.rows[0]?.who ?? '';
  show(`SELECT ran as ${role}: ${rows.rows[0]?.orders} orders (role VALID UNTIL ${rows.rows[0]?.until})`);
  show(await sqlDenial(`postgresql://127.0.0.1:${broker.ports.pg}/payroll-db`));
  const tRole = performance.now();
  await waitUntil('the temporary role to be dropped', async () => !(await db.roleExists(role)), 30_000, 200);
  await waitUntil('its session to end', async () => sessionEnded, 10_000, 50);
  show(`${role} expired and was dropped by the operator ${ms(tRole)} later; the open session was ended`);

  if (process.env.WARDEN_DEMO_GATEWAY === '1') {
    say('Optional: an agent pod without a sidecar calls the shared gateway (`warden gateway`) over TLS');
    await gatewayStep({
      core,
      namespace: NS,
      wardenNamespace: WARDEN_NS,
      issuer,
      dir,
      show,
      denial: (call) => denial(call),
      cleanups,
    });
  }

  say('The security team flips the kill switch: spec.suspended: true');
  const api = new KubeConfigApi(kc);
  const tKill = performance.now();
  await api.request(
    'PATCH',
    `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL.AgentIdentity}/support-bot`,
    {
      body: { spec: { suspended: true, suspendReason: 'demo: suspicious activity' } },
      contentType: 'application/merge-patch+json',
    },
  );
  let denied = '';
  await waitUntil(
    'first denied call',
    async () => {
      denied = await denial(
        () => agent.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-7' } }),
        true,
      );
      return denied !== '';
    },
    10_000,
    10,
  );
  show(`next call denied ${ms(tKill)} after the patch: ${denied}`);
  await waitUntil(
    'revocation completed',
    async () => {
      const r = await k([
        'get',
        'agentidentity',
        'support-bot',
        '-n',
        NS,
        '-o',
        'jsonpath={.status.revocation.completedAt}',
      ]);
      return r.stdout !== '';
    },
    20_000,
  );
  show((await k(['get', 'agentidentity', 'support-bot', '-n', NS])).stdout);

  const cli = (args: string[]) =>
    promisify(execFile)('npx', ['tsx', join(root, 'cli/kubectl-warden.ts'), ...args], {
      env: { ...process.env, KUBECONFIG: cp.kubeconfigPath },
    });

  say('Revived with a circuit breaker: an agent looping on denied calls suspends itself');
  show((await cli(['revive', 'support-bot', '-n', NS])).stdout.trim());
  const patched = await k([
    'patch',
    'agentidentity',
    'support-bot',
    '-n',
    NS,
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { circuitBreaker: { maxDenialsPerMinute: 10, action: 'Suspend' } } }),
  ]);
  if (patched.code !== 0) throw new Error(`setting the circuit breaker failed:\n${patched.stderr}`);
  show('spec.circuitBreaker: {maxDenialsPerMinute: 10, action: Suspend}');
  const looper = await connectAgent(mcpUrl, {});
  cleanups.push(() => looper.close());
  let denials = 0;
  let crossedAt = 0;
  let last = '';
  const tLoop = performance.now();
  // A prompt-injected agent retrying a call policy denies (the Deny rule on *.delete_*).
  while (performance.now() - tLoop < 30_000) {
    last = await denial(
      () => looper.callTool({ name: 'jira.delete_issue', arguments: { key: 'SUP-7' } }),
      true,
    );
    if (last.includes('AgentSuspended')) break;
    if (++denials === 11) crossedAt = performance.now();
  }
  const tripped = ms(crossedAt);
  if (!last.includes('AgentSuspended')) throw new Error(`the circuit breaker did not trip: ${last}`);
  show(
    `${denials} denied calls, then: ${last.slice(0, 160)}…\ntripped ${tripped} after the 11th denial (the threshold is 10 per minute)`,
  );
  const reason = await k([
    'get',
    'agentidentity',
    'support-bot',
    '-n',
    NS,
    '-o',
    'jsonpath={.spec.suspendReason}',
  ]);
  show(`spec.suspendReason: ${reason.stdout}`);
  await waitUntil('the breaker revocation', async () => {
    const r = await k([
      'get',
      'agentidentity',
      'support-bot',
      '-n',
      NS,
      '-o',
      'jsonpath={.status.revocation.reason}',
    ]);
    return r.stdout.startsWith('CircuitBreakerTripped');
  });
  let note = '';
  await waitUntil('the CircuitBreakerTripped Event', async () => {
    const r = await k([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      'reason=CircuitBreakerTripped',
      '-o',
      'jsonpath={.items[0].message}',
    ]);
    note = r.stdout;
    return note !== '';
  });
  show(`Event CircuitBreakerTripped: ${note}`);

  say('The auditor reads the trail: `kubectl warden audit`, `--verify` and `kubectl warden status -A`');
  await controller.auditWriter.flush(true);
  show((await cli(['audit', '-n', NS, '--agent', 'support-bot'])).stdout);
  show((await cli(['audit', '-n', NS, '--verify'])).stdout);
  show((await cli(['status', '-A'])).stdout);
  show(
    `The controller also exported ${exported.count} audit events as JSON lines on its stdout (docs/audit-export.md), the last:\n${exported.last}`,
  );

  say('Before tightening a policy, replay the trail against it: `kubectl warden replay`');
  const proposal = mkdtempSync(join(tmpdir(), 'warden-demo-replay-'));
  cleanups.push(async () => rmSync(proposal, { recursive: true, force: true }));
  const proposed = join(proposal, 'support-write.yaml');
  // The proposed change: creating issues also needs a ticket in the request context.
  writeFileSync(
    proposed,
    `apiVersion: warden.dev/v1alpha1
kind: AccessPolicy
metadata: {name: support-write, namespace: ${NS}}
spec:
  agentSelector: {names: [support-bot]}
  rules:
    - targets: [jira]
      tools: [jira.create_issue]
      when:
        - {name: support-staff, expression: "user.present && 'support' in user.groups"}
        - {name: ticket-referenced, expression: "has(context.ticketId)"}
`,
  );
  show(`proposed: ${proposed} (support-write also needs context.ticketId)`);
  // As a CI gate: --fail-on-new-denials 0 exits 1 because alice's create_issue would be denied.
  const replay = await cli([
    'replay',
    '-f',
    proposed,
    '-n',
    NS,
    '--since',
    '1h',
    '--fail-on-new-denials',
    '0',
  ]).then(
    (r) => ({ ...r, code: 0 }),
    (err: { stdout: string; stderr: string; code: number }) => err,
  );
  show(replay.stdout);
  show(`exit status ${replay.code}: ${replay.stderr.trim()}`);
  if (replay.code !== 1 || !replay.stdout.includes('allow→deny 1')) {
    throw new Error(`replay: expected one new denial and exit status 1, got ${replay.code}`);
  }

  say('How the agent used its tools, from the trail: `kubectl warden usage`');
  show((await cli(['usage', '-n', NS, '--since', '1h'])).stdout);

  say('What the agent saw: compare every byte it received with the credentials the MCP server got');
  for (const c of [agent, alice, bob]) await c.close();
  await Promise.race([Promise.all(pendingReads), new Promise((r) => setTimeout(r, 2_000))]);
  const all = received.join('\n');
  const issued = [...jira.credentialsSeen.map((c) => c.replace(/^Bearer /, '')), ...issuedSecrets];
  const leaked = issued.filter((c) => all.includes(c));
  show(
    `${jira.credentialsSeen.length} Warden JWTs reached the MCP server and ${issuedSecrets.length} PostgreSQL password(s) the broker; ${received.length} responses reached the agent`,
  );
  show(`credentials found in what the agent received: ${leaked.length}`);
  if (leaked.length > 0 || /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./.test(all)) {
    throw new Error('the agent received a credential');
  }
}

/** The demo's resources: agent, policies, provider (the samples/ folder has a fuller set). */
function demoManifests(o: {
  jiraUrl: string;
  oidcIssuer: string;
  oidcAudience: string;
  db: SampleDatabase;
}): string {
  const doc = (kind: string, name: string, spec: unknown) =>
    JSON.stringify({ apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec });
  return [
    JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'support-bot' } }),
    JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }),
    doc('AgentIdentity', 'support-bot', {
      serviceAccountName: 'support-bot',
      userContext: {
        mode: 'Optional',
        trustedIssuers: [{ issuer: o.oidcIssuer, audiences: [o.oidcAudience] }],
      },
    }),
    doc('CredentialProvider', 'jira', {
      target: { url: o.jiraUrl, protocol: 'MCP' },
      type: 'JWT',
      jwt: { defaultTTL: '5m' },
    }),
    doc('AccessPolicy', 'support-read', {
      agentSelector: { names: ['support-bot'] },
      rules: [{ targets: ['jira'], tools: ['jira.get_*'] }],
    }),
    doc('AccessPolicy', 'support-write', {
      agentSelector: { names: ['support-bot'] },
      rules: [
        {
          targets: ['jira'],
          tools: ['jira.create_issue'],
          when: [{ name: 'support-staff', expression: "user.present && 'support' in user.groups" }],
        },
      ],
    }),
    doc('AccessPolicy', 'deny-deletes', {
      effect: 'Deny',
      rules: [{ targets: ['*'], tools: ['*.delete_*'] }],
    }),
    // The database admin login Warden creates temporary roles with (never given to the agent).
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'orders-db-admin' },
      stringData: { username: o.db.adminUser, password: o.db.adminPassword },
    }),
    ...['orders-db', 'payroll-db'].map((name) =>
      doc(
        'CredentialProvider',
        name,
        // The role's TTL is short for the demo, so its expiry can be watched.
        postgresProviderSpec(o.db, {
          grantRoles: ['orders_read'],
          adminSecret: 'orders-db-admin',
          roleTTL: '5s',
        }),
      ),
    ),
    // A rule with neither tools nor http covers every request to its targets: DB connections.
    doc('AccessPolicy', 'orders-db-read', {
      agentSelector: { names: ['support-bot'] },
      rules: [{ targets: ['orders-db'] }],
    }),
  ].join('\n---\n');
}

interface SampleDatabase {
  port: number;
  adminUser: string;
  adminPassword: string;
  roleExists(role: string): Promise<boolean>;
  stop(): Promise<void>;
}

/** A throwaway PostgreSQL with an orders table and an admin role Warden may create roles with. */
async function startSampleDatabase(): Promise<SampleDatabase> {
  const server = await startPostgres();
  const su = new pg.Client({ connectionString: server.connectionString });
  await su.connect();
  const adminPassword = `demo-${Math.random().toString(36).slice(2)}`;
  await createWardenAdmin(su, { password: adminPassword, grantRoles: ['orders_read'] });
  for (const q of [
    'CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL)',
    "INSERT INTO orders VALUES (1, 'keyboard'), (2, 'monitor'), (3, 'cable')",
    'GRANT SELECT ON orders TO orders_read',
  ])
    await su.query(q);
  return {
    port: server.port,
    adminUser: 'warden_admin',
    adminPassword,
    roleExists: async (role) =>
      (await su.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1,
    stop: async () => {
      await su.end().catch(() => {});
      await server.stop();
    },
  };
}

/** Connects expecting a refusal; returns the server's message (and DETAIL). */
async function sqlDenial(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url, user: 'support-bot' });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.end();
    return `unexpectedly connected to ${url}`;
  } catch (err) {
    const e = err as { code?: string; message?: string; detail?: string };
    return `${url}: refused (SQLSTATE ${e.code}): ${e.message}${e.detail ? ` — ${e.detail}` : ''}`;
  }
}

/** Every header and body byte the agent received, to prove it never saw a credential. */
const received: string[] = [];
/** PostgreSQL passwords the authority issued to the broker (collected for the final check). */
const issuedSecrets: string[] = [];
const pendingReads: Array<Promise<unknown>> = [];

const recordingFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  for (const [k, v] of res.headers) received.push(`${k}: ${v}`);
  pendingReads.push(
    res
      .clone()
      .text()
      .then((t) => received.push(t))
      .catch(() => {}),
  );
  return res;
};

async function connectAgent(url: URL, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'support-bot', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(url, { requestInit: { headers }, fetch: recordingFetch }),
  );
  return client;
}

function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

/** Runs a call expected to be denied and formats the structured reasons ('' if allowed and quiet). */
async function denial(call: () => Promise<unknown>, quiet = false): Promise<string> {
  try {
    const r = await call();
    if ((r as { isError?: boolean }).isError) return `error result: ${textOf(r)}`;
    return quiet ? '' : `unexpectedly allowed: ${textOf(r)}`;
  } catch (err) {
    const e = err as {
      code?: number;
      message?: string;
      data?: { reason?: string; reasons?: Array<Record<string, unknown>> };
    };
    const why = (e.data?.reasons ?? [])
      .filter((r) => r.policy)
      .map((r) => `${r.policy ?? ''} rule ${r.rule ?? '-'}${r.condition ? ` condition ${r.condition}` : ''}`)
      .join('; ');
    return `denied (${e.data?.reason ?? e.code}): ${e.message}${why ? ` [${why}]` : ''}`;
  }
}

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for: ${what}`);
}

try {
  await main();
} catch (err) {
  failed = true;
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  process.stdout.write('\nCleaning up...\n');
  for (const c of cleanups.reverse()) await c().catch(() => {});
  process.stdout.write(`Done in ${((Date.now() - t0) / 1000).toFixed(1)} s${failed ? ' (FAILED)' : ''}\n`);
}
process.exit(failed ? 1 : 0);
