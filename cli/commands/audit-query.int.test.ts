/**
 * `kubectl warden audit` filters against the real control plane: the command narrows what it lists
 * with label selectors (agent, denied, end hour) and pages through the rest; whatever it selects,
 * it must answer exactly what filtering every record would. Each query is checked against the
 * full filter over an admin's unselected list of the same trail, which holds records of several
 * agents across three hours and a record written before the selection labels existed.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { StaticAuditKeys } from '../../audit/keyset.js';
import { AuditWriter } from '../../audit/writer.js';
import type { AuditEntry, AuditRecord } from '../../core/api/index.js';
import { recordName, sealRecord } from '../../core/audit/chain.js';
import { API_VERSION, LABEL_AGENT, PLURAL } from '../../core/constants.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../../e2e/harness/index.js';
import { KubeConfigApi, type ObjectList } from '../../kube/kube.js';
import { type AuditFilter, type AuditRow, filterEntries } from '../audit-view.js';

const run = promisify(execFile);
const HOUR = 3_600_000;
const NOW = Date.now();
const USERS = ['https://idp.example|alice', 'https://idp.example|bob', 'agent acting alone'];
const TOOLS = ['jira.get_issue', 'jira.delete_issue', 'github.get_file'];

let ns = '';
let all: AuditRecord[] = [];
const keys = StaticAuditKeys.generate();

async function cli(args: string[]): Promise<AuditRow[]> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'cli/kubectl-warden.ts', 'audit', '-n', ns, '-o', 'json', ...args],
    { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, maxBuffer: 64 << 20 },
  );
  return JSON.parse(stdout) as AuditRow[];
}

const ids = (rows: readonly AuditRow[]) => rows.map((r) => `${r.agent}/${r.requestId}`);

beforeAll(async () => {
  ns = await freshNamespace('cli-audit-query');
  const api = new KubeConfigApi(kubeConfig());
  const writer = new AuditWriter({
    api,
    log: pino({ level: 'silent' }),
    keys,
    limits: { maxEntries: 7, maxBytes: 1 << 20, maxAgeMs: 0 },
  });
  // Two agents, one entry every 5 minutes over the last three hours: records of 7 entries span
  // about 35 minutes, so some cross an hour boundary.
  let i = 0;
  for (let t = NOW - 3 * HOUR; t <= NOW; t += 5 * 60_000) {
    for (const agent of ['bot', 'helper']) {
      const entry: AuditEntry = {
        time: new Date(t).toISOString(),
        kind: 'Decision',
        decision: i % 5 === 2 ? 'Deny' : 'Allow',
        user: USERS[i % USERS.length] as string,
        target: (TOOLS[i % TOOLS.length] as string).split('.')[0] as string,
        tool: TOOLS[i % TOOLS.length] as string,
        requestId: `r-${i}`,
      };
      writer.record(ns, agent, entry);
      i++;
    }
  }
  await writer.flush(true);
  await writer.stop();
  // A record written before the selection labels existed (agent label only), with a recent denial.
  const spec = sealRecord({
    agent: 'legacy-bot',
    sequence: 0,
    previousDigest: '',
    entries: [
      {
        time: new Date(NOW - 10 * 60_000).toISOString(),
        kind: 'Decision',
        decision: 'Deny',
        user: USERS[0] as string,
        tool: 'jira.delete_issue',
        requestId: 'legacy-1',
      },
    ],
  });
  await api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'AuditRecord',
      metadata: { name: recordName('legacy-bot', 0), labels: { [LABEL_AGENT]: 'legacy-bot' } },
      spec,
    },
  });
  all = (
    await api.request<ObjectList<AuditRecord>>(
      'GET',
      `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
    )
  ).items;
  expect(all.length).toBeGreaterThan(10);
  // The selection labels are on the writer's records.
  expect(all.find((r) => r.spec.agent === 'bot')?.metadata?.labels).toMatchObject({
    'warden.dev/agent': 'bot',
    'warden.dev/end-hour': expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d$/),
    'warden.dev/denied': expect.stringMatching(/^(true|false)$/),
  });
}, 120_000);

describe('kubectl warden audit filters (selectors + pagination) answer what filtering everything would', () => {
  it.each<[string, string[], (now: number) => AuditFilter]>([
    [
      'agent, decision and --since',
      ['--agent', 'bot', '--decision', 'Deny', '--since', '90m'],
      (n) => ({
        agent: 'bot',
        decision: 'Deny',
        sinceMs: n - 90 * 60_000,
      }),
    ],
    [
      'user and tool globs in an RFC 3339 time range, all agents',
      [
        '--user',
        '*alice',
        '--tool',
        'jira.*',
        '--since',
        new Date(NOW - 150 * 60_000).toISOString(),
        '--until',
        new Date(NOW - 40 * 60_000).toISOString(),
      ],
      () => ({ user: '*alice', tool: 'jira.*', sinceMs: NOW - 150 * 60_000, untilMs: NOW - 40 * 60_000 }),
    ],
    [
      'denials of the last 30 minutes, including a record without selection labels',
      ['--decision', 'Deny', '--since', '30m'],
      (n) => ({
        decision: 'Deny',
        sinceMs: n - 30 * 60_000,
      }),
    ],
    [
      'one agent until two hours ago',
      ['--agent', 'helper', '--until', '2h'],
      (n) => ({
        agent: 'helper',
        untilMs: n - 2 * HOUR,
      }),
    ],
  ])(
    '%s',
    async (_name, args, filterAt) => {
      const before = Date.now();
      const got = await cli(args);
      const after = Date.now();
      // Relative times are read when the command starts: the expected rows hold for any start in
      // [before, after]; entries lie 5 minutes apart, so none sits on that edge in practice.
      const expected = filterEntries(all, filterAt(before));
      expect(filterEntries(all, filterAt(after))).toEqual(expected);
      expect(expected.length).toBeGreaterThan(0);
      expect(ids(got)).toEqual(ids(expected));
    },
    120_000,
  );

  it('the denial query finds the record written before the labels existed', async () => {
    const got = await cli(['--decision', 'Deny', '--since', '30m']);
    expect(ids(got)).toContain('legacy-bot/legacy-1');
  }, 120_000);
});

describe('a relabelled record (labels are not signed) is named by any listing that reads it', () => {
  it('hiding a denial from --decision Deny by patching warden.dev/denied shows on the next listing and in --verify', async () => {
    const api = new KubeConfigApi(kubeConfig());
    const denied = all.find(
      (r) => r.spec.agent === 'helper' && r.metadata?.labels?.['warden.dev/denied'] === 'true',
    );
    const name = denied?.metadata?.name;
    expect(name).toBeDefined();
    await api.request('PATCH', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}/${name}`, {
      body: { metadata: { labels: { 'warden.dev/denied': 'false' } } },
      contentType: 'application/merge-patch+json',
    });
    const cliRaw = (args: string[]) =>
      run(
        process.execPath,
        ['--import', 'tsx', 'cli/kubectl-warden.ts', 'audit', '-n', ns, '-o', 'json', ...args],
        { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, maxBuffer: 64 << 20 },
      );
    const warning = `auditrecord ${ns}/${name} was relabelled: warden.dev/denied=false (its signed spec says true)`;
    // The label selector now skips it (what the warning is for) ...
    const hidden = await cliRaw(['--agent', 'helper', '--decision', 'Deny']);
    const hiddenIds = ids(JSON.parse(hidden.stdout) as AuditRow[]);
    const itsDenials = filterEntries([denied as AuditRecord], { decision: 'Deny' });
    expect(itsDenials.length).toBeGreaterThan(0);
    for (const id of ids(itsDenials)) expect(hiddenIds).not.toContain(id);
    // ... and any listing that reads it names it, once, with the rows unchanged.
    const listed = await cliRaw(['--agent', 'helper']);
    expect(listed.stderr.split(warning).length - 1).toBe(1);
    expect(ids(JSON.parse(listed.stdout) as AuditRow[])).toEqual(
      ids(filterEntries(all, { agent: 'helper' })),
    );
    // --verify reads every record whatever its labels, with a saved copy of the trail's keys; its
    // exit status is about the chain (the legacy record is unsigned), so only stderr is asserted.
    const saved = join(mkdtempSync(join(tmpdir(), 'warden-keys-')), 'audit-keys.json');
    writeFileSync(saved, JSON.stringify({ keys: keys.keySet().keys }));
    const verified = await cliRaw(['--verify', '--keys', saved]).catch((e: { stderr: string }) => e);
    expect(verified.stderr).toContain(warning);
  }, 120_000);
});
