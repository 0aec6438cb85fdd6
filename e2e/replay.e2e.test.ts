/**
 * Policy impact replay through the real chain (#21 item 1): a real API server, the controller
 * in-process (authority + audit writer), a real broker attested with a pod-bound token, a real MCP
 * server (SDK McpServer) and an SDK MCP client. The agent's calls leave a trail of AuditRecords;
 * `kubectl warden replay` (a child process, as users run it) re-decides them against a stricter
 * proposal, offline.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type McpUpstream, startHttpUpstream, startMcpUpstream } from '../broker/int-fixtures.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import type { ReplayReport } from '../cli/replay.js';
import type { UsageReport } from '../cli/usage.js';
import type { RunningController } from '../controller/run.js';
import type { AgentIdentity, AuditEntry, AuditRecord } from '../core/api/index.js';
import { recordName, sealRecord } from '../core/audit/chain.js';
import { API_VERSION, PLURAL } from '../core/constants.js';
import { KubeConfigApi, type ObjectList } from '../kube/kube.js';
import {
  createAgentWithApi,
  startTestController,
  wardenObjectCreator,
  writePodToken,
} from './agent-stack.js';
import { eventually } from './eventually.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from './harness/index.js';

const run = promisify(execFile);
const AGENT = 'support-bot';
/** A secret-looking tool argument: it must not reach the trail. */
const SECRET = 'hunter2-not-recorded';

let ns: string;
let controller: RunningController;
let broker: RunningBroker;
let mcp: McpUpstream;
let http: Awaited<ReturnType<typeof startHttpUpstream>>;
let tokenDir: string;
let workDir: string;
const api = () => new KubeConfigApi(kubeConfig());

async function cli(args: string[]) {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', 'cli/kubectl-warden.ts', ...args],
      { env: { ...process.env, KUBECONFIG: kubeconfigPath() } },
    );
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

async function records(): Promise<AuditRecord[]> {
  const list = await api().request<ObjectList<AuditRecord>>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
  );
  return list.items;
}

const decisions = (rs: AuditRecord[], agent = AGENT): AuditEntry[] =>
  rs
    .filter((r) => r.spec.agent === agent)
    .flatMap((r) => r.spec.entries.filter((e) => e.kind === 'Decision'));

beforeAll(async () => {
  const kc = kubeConfig();
  ns = await freshNamespace('replay');
  const log = pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' });
  const create = wardenObjectCreator(kc, ns);
  http = await startHttpUpstream();
  mcp = await startMcpUpstream({ stateless: true });
  // AgentIdentity support-bot, CredentialProvider api (HTTP) and AccessPolicy support-bot-read (GET on api).
  const pod = await createAgentWithApi(kc, { namespace: ns, agent: AGENT, upstreamUrl: http.url });
  await create(PLURAL.CredentialProvider, 'CredentialProvider', 'jira', {
    target: { url: mcp.url, protocol: 'MCP' },
    type: 'JWT',
    jwt: { audience: 'jira' },
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', 'jira-tools', {
    agentSelector: { names: [AGENT] },
    rules: [{ targets: ['jira'], tools: ['jira.*'] }],
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', 'no-delete', {
    effect: 'Deny',
    rules: [{ targets: ['*'], tools: ['*.delete_*'] }],
  });
  // An agent whose trail predates replay data: its entries are counted and skipped.
  await create(PLURAL.AgentIdentity, 'AgentIdentity', 'old-bot', { serviceAccountName: 'old-bot' });
  const now = Date.now();
  const old = (i: number): AuditEntry => ({
    time: new Date(now - 60_000 + i * 1000).toISOString(),
    kind: 'Decision',
    decision: 'Allow',
    target: 'jira',
    tool: 'jira.search',
  });
  await api().request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'AuditRecord',
      metadata: { name: recordName('old-bot', 0), namespace: ns },
      spec: sealRecord({ agent: 'old-bot', sequence: 0, previousDigest: '', entries: [old(0), old(1)] }),
    },
  });

  controller = await startTestController(kc, {
    namespace: ns,
    log,
    identityPrefix: 'replay',
    audit: { maxEntries: 50, maxBytes: 256 * 1024, maxAgeMs: 300 },
  });
  const token = await writePodToken(kc, {
    namespace: ns,
    serviceAccount: AGENT,
    pod,
    prefix: 'warden-replay-',
  });
  tokenDir = token.dir;
  broker = await runBroker({
    tokenFile: token.tokenFile,
    authorityUrl: `http://127.0.0.1:${controller.authorityPort}`,
    listen: { host: '127.0.0.1', port: 0 },
    healthPort: 0,
    healthHost: '127.0.0.1',
    podName: pod.metadata?.name,
    log,
  });
  await eventually('the broker to be ready', async () => broker.readiness().ready, 30_000);

  // The agent's traffic: 3 reads, 3 searches (one argument looks like a secret), 2 denied deletes,
  // 2 HTTP GETs.
  const client = new Client({ name: 'agent', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${broker.ports.listen}/mcp/jira`)),
  );
  for (let i = 0; i < 3; i++) {
    await client.callTool({ name: 'jira.get_issue', arguments: { key: `SUP-${i}` } });
    await client.callTool({ name: 'jira.search', arguments: { q: `printer ${i}`, apiKey: SECRET } });
  }
  for (let i = 0; i < 2; i++) {
    await expect(
      client.callTool({ name: 'jira.delete_issue', arguments: { key: `SUP-${i}` } }),
    ).rejects.toThrow(/denied/);
  }
  await client.close();
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`http://127.0.0.1:${broker.ports.listen}/http/api/api/v1/tickets/${i}`);
    expect(r.status).toBe(200);
    await r.text();
  }
  await eventually(
    'the calls to be in the trail',
    async () =>
      decisions(await records()).filter((e) => e.tool?.startsWith('jira.') || e.method).length >= 10,
    60_000,
  );
  workDir = mkdtempSync(join(tmpdir(), 'warden-replay-'));
  // The proposal: searches are no longer allowed.
  writeFileSync(
    join(workDir, 'stricter.yaml'),
    `apiVersion: warden.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: jira-tools
spec:
  agentSelector: {names: [${AGENT}]}
  rules:
    - targets: [jira]
      tools: ["jira.get_*", "jira.delete_*"]
`,
  );
}, 180_000);

afterAll(async () => {
  await broker?.close();
  await controller?.stop();
  await mcp?.close();
  await http?.close();
  if (tokenDir) rmSync(tokenDir, { recursive: true, force: true });
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('kubectl warden replay on a trail written by the real chain', () => {
  it('the trail records what the engine decided on, without the secret-looking argument', async () => {
    const rs = await records();
    expect(JSON.stringify(rs)).not.toContain(SECRET);
    const search = decisions(rs).find((e) => e.tool === 'jira.search');
    expect(search?.replay).toMatchObject({ kind: 'mcp', policyDecision: 'Allow', policyReason: 'Allowed' });
    expect(JSON.parse(search?.replay?.args ?? '{}')).toEqual({
      q: expect.stringMatching(/^printer /),
      apiKey: '[REDACTED]',
    });
    expect(search?.replay?.withheld).toEqual(['request.args.apiKey']);
    const del = decisions(rs).find((e) => e.tool === 'jira.delete_issue');
    expect(del?.replay).toMatchObject({ policyDecision: 'Deny', policyReason: 'DeniedByPolicy' });
    const get = decisions(rs).find((e) => e.target === 'api' && e.method === 'GET');
    expect(get?.replay).toEqual({ kind: 'http', policyDecision: 'Allow', policyReason: 'Allowed' });
  });

  it('reports what a stricter proposal would deny, grouped, as JSON for CI', async () => {
    const r = await cli([
      'replay',
      '-f',
      join(workDir, 'stricter.yaml'),
      '--delete',
      `${AGENT}-read`,
      '-n',
      ns,
      '--since',
      '1h',
      '-o',
      'json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as ReplayReport;
    expect(report.policies).toEqual({
      added: [],
      changed: [`${ns}/jira-tools`],
      deleted: [`${ns}/${AGENT}-read`],
    });
    expect(report.agents).toEqual([`${ns}/old-bot`, `${ns}/${AGENT}`]);
    expect(report.entries.skipped['no-replay-data']).toBe(2);
    expect(report.changes).toMatchObject({ allowToDeny: 5, denyToAllow: 0 });
    expect(report.drift).toBe(0);
    const byWhat = Object.fromEntries(report.groups.map((g) => [g.what, g]));
    expect(byWhat['jira.search']).toMatchObject({
      direction: 'allow→deny',
      count: 3,
      approximate: 3,
      user: 'agent acting alone',
      policy: `${ns}/jira-tools (no longer allows)`,
    });
    expect(byWhat['jira.search']?.examples[0]?.after).toMatchObject({
      decision: 'Deny',
      reason: 'NoMatchingAllow',
    });
    const gets = report.groups.filter((g) => g.what.startsWith('api GET /api/v1/tickets/'));
    expect(gets.reduce((n, g) => n + g.count, 0)).toBe(2);
  });

  it('fails a pipeline when more recorded calls would be denied than allowed for', async () => {
    const args = ['replay', '-f', join(workDir, 'stricter.yaml'), '-n', ns, '--since', '1h'];
    const over = await cli([...args, '--fail-on-new-denials', '2']);
    expect(over.code).toBe(1);
    expect(over.stderr).toContain(
      'replay: 3 recorded calls that were allowed would be denied, more than --fail-on-new-denials 2',
    );
    expect(over.stdout).toContain('Would change: 3 — allow→deny 3, deny→allow 0');
    const within = await cli([...args, '--fail-on-new-denials', '3']);
    expect(within.code).toBe(0);
  });

  it('reports the denials a deleted Deny policy would lift', async () => {
    const r = await cli([
      'replay',
      '--delete',
      'no-delete',
      '-n',
      ns,
      '--agent',
      AGENT,
      '--since',
      '1h',
      '-o',
      'json',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as ReplayReport;
    expect(report.agents).toEqual([`${ns}/${AGENT}`]);
    expect(report.changes).toMatchObject({ allowToDeny: 0, denyToAllow: 2 });
    expect(report.groups[0]).toMatchObject({ what: 'jira.delete_issue', policy: `${ns}/jira-tools rule 0` });
  });

  it('refuses a proposal that does not compile, naming where', async () => {
    writeFileSync(
      join(workDir, 'broken.yaml'),
      'kind: AccessPolicy\nmetadata: {name: x}\nspec: {rules: [{targets: [jira], when: [{name: c, expression: "usr.present"}]}]}\n',
    );
    const r = await cli(['replay', '-f', join(workDir, 'broken.yaml'), '-n', ns]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /the proposal is not valid, nothing replayed:\n {2}.*broken\.yaml \(document 1\): AccessPolicy .*\/x: spec\.rules\[0\]\.when\[0\]/,
    );
  });
});

describe('kubectl warden usage on the same trail', () => {
  it('counts calls, denials, credentials and hours per tool from the AuditRecords', async () => {
    const r = await cli(['usage', '-n', ns, '--agent', AGENT, '--since', '1h', '-o', 'json']);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as UsageReport;
    expect(report.agents).toEqual([AGENT]);
    expect(report.totals).toMatchObject({
      calls: 10,
      allowed: 8,
      denied: 2,
      distinctUsers: 0,
      actingAlone: 10,
    });
    expect(report.totals.credentialsIssued).toBeGreaterThanOrEqual(2);
    expect(report.totals.protocolMessages).toBeGreaterThan(0);
    expect(report.rows).toEqual([
      { key: 'jira.get_issue', calls: 3, allowed: 3, denied: 0, users: 0 },
      { key: 'jira.search', calls: 3, allowed: 3, denied: 0, users: 0 },
      { key: 'api GET (HTTP)', calls: 2, allowed: 2, denied: 0, users: 0 },
      { key: 'jira.delete_issue', calls: 2, allowed: 0, denied: 2, users: 0 },
    ]);
    expect(report.hours.reduce((a, b) => a + b, 0)).toBe(10);
  });

  it('prints a table with bars, and CSV', async () => {
    const table = await cli(['usage', '-n', ns, '--since', '1h', '--by', 'agent']);
    // old-bot's two entries (written before replay data) count too: usage needs no replay data.
    expect(table.stdout).toContain(`Usage of 2 agents (old-bot, ${AGENT})`);
    expect(table.stdout).toMatch(new RegExp(`${AGENT}\\s+10\\s+2 \\(20%\\)\\s+0\\s+█+`));
    expect(table.stdout).toContain('Calls per hour of the day (UTC):');
    const csv = await cli(['usage', '-n', ns, '--since', '1h', '--by', 'target', '-o', 'csv']);
    expect(csv.stdout.trim().split('\n')).toEqual([
      'target,calls,allowed,denied,users',
      'jira,10,8,2,0',
      'api,2,2,0,0',
    ]);
    const refused = await cli(['status', '-n', ns, '-o', 'csv']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('-o csv: only kubectl warden usage prints CSV');
  });

  it('keeps per-tool counters in the AgentIdentity status (status.usage)', async () => {
    await eventually(
      'status.usage to count the tool calls',
      async () => {
        const a = await api().request<AgentIdentity>(
          'GET',
          `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/${AGENT}`,
        );
        const tools = a.status?.usage?.tools ?? [];
        return tools.reduce((n, t) => n + t.calls, 0) === 8 ? tools : undefined;
      },
      30_000,
    );
    const a = await api().request<AgentIdentity>(
      'GET',
      `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/${AGENT}`,
    );
    expect(a.status?.usage?.tools).toEqual([
      { name: 'jira.get_issue', calls: 3, denied: 0 },
      { name: 'jira.search', calls: 3, denied: 0 },
      { name: 'jira.delete_issue', calls: 2, denied: 2 },
    ]);
    expect(a.status?.usage?.since).toMatch(/^\d{4}-/);
    expect(
      a.metadata?.managedFields?.some((m) => m.manager === 'warden-usage' && m.subresource === 'status'),
    ).toBe(true);
  });
});
