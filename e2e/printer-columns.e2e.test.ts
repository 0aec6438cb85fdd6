/**
 * Every printer column of every CRD shows a real value after real traffic: the kill-switch stack
 * (real API server, `warden controller`, broker, HTTP upstream) serves allowed and denied calls,
 * then the project's kubectl prints each kind with -o wide and no cell may be blank ("<none>").
 * Also: AuditRecords are in their own category, and `kubectl warden status -A` reports the traffic.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialProvider } from '../core/api/index.js';
import { API_VERSION, PLURAL } from '../core/constants.js';
import { freshNamespace, kubeConfig, kubeconfigPath, kubectl } from './harness/index.js';
import { eventually, type Stack, startStack } from './killswitch-fixture.js';

const exec = promisify(execFile);

/** Columns of `kubectl get -o wide` output, split on the header's column starts. */
function table(text: string): { header: string[]; rows: string[][] } {
  const lines = text.trimEnd().split('\n');
  const head = lines[0] ?? '';
  const starts = [...head.matchAll(/(?:^|\s{2,})(\S+(?: \S+)*)/g)].map((m) =>
    head.indexOf(m[1] ?? '', m.index),
  );
  const cut = (line: string) => starts.map((s, i) => line.slice(s, starts[i + 1] ?? line.length).trim());
  return { header: cut(head), rows: lines.slice(1).map(cut) };
}

describe('printer columns after real traffic', () => {
  let stack: Stack;
  let ns: string;

  beforeAll(async () => {
    ns = await freshNamespace('columns');
    stack = await startStack({ kubeConfig: kubeConfig(), namespace: ns });
    await stack.waitReady();
    for (let i = 0; i < 3; i++) expect((await stack.call('GET')).status).toBe(200);
    expect((await stack.call('POST')).status).toBe(403);
    // The counters are rate-bounded (one write per object per 2 s) and the audit flushes in batches.
    await eventually(
      'counters and audit written',
      async () => {
        const agent = await stack.getAgent();
        const provider = await stack.api.request<CredentialProvider>(
          'GET',
          `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.CredentialProvider}/api`,
        );
        const records = await stack.auditRecords();
        return (
          (agent.status?.decisions?.allowed ?? 0) >= 3 &&
          (agent.status?.decisions?.denied ?? 0) >= 1 &&
          (provider.status?.issuedCount ?? 0) >= 1 &&
          records.length > 0
        );
      },
      30_000,
    );
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it.each([PLURAL.AgentIdentity, PLURAL.AccessPolicy, PLURAL.CredentialProvider, PLURAL.AuditRecord])(
    'kubectl get %s -o wide: every column of every row has a value',
    async (plural) => {
      const r = await kubectl(['get', plural, '-n', ns, '-o', 'wide']);
      expect(r.code, r.stderr).toBe(0);
      const { header, rows } = table(r.stdout);
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        header.forEach((col, i) => {
          const cell = row[i] ?? '';
          expect(cell, `${plural} column ${col}`).not.toBe('');
          expect(cell, `${plural} column ${col}`).not.toBe('<none>');
          expect(cell, `${plural} column ${col} (no raw JSON)`).not.toMatch(/^[[{]/);
        });
      }
    },
  );

  it('issued credentials are counted on the CredentialProvider (Issued column)', async () => {
    const r = await kubectl([
      'get',
      PLURAL.CredentialProvider,
      'api',
      '-n',
      ns,
      '-o',
      'jsonpath={.status.issuedCount}',
    ]);
    expect(Number(r.stdout)).toBeGreaterThanOrEqual(1);
  });

  it('kubectl get warden lists the declared objects, not the AuditRecords; warden-audit lists those', async () => {
    const all = await kubectl(['get', 'warden', '-n', ns, '-o', 'name']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain('agentidentity.warden.dev/');
    expect(all.stdout).toContain('credentialprovider.warden.dev/');
    expect(all.stdout).not.toContain('auditrecord');
    const audit = await kubectl(['get', 'warden-audit', '-n', ns, '-o', 'name']);
    expect(audit.stdout).toContain('auditrecord.warden.dev/');
  });

  it('kubectl warden status -A shows the traffic', async () => {
    const r = await exec(process.execPath, ['--import', 'tsx', 'cli/kubectl-warden.ts', 'status', '-A'], {
      env: { ...process.env, KUBECONFIG: kubeconfigPath() },
    });
    if (process.env.WARDEN_E2E_SHOW_STATUS) process.stdout.write(`\n${r.stdout}\n`);
    const line = r.stdout.split('\n').find((l) => l.startsWith(`${ns} `) && l.includes(stack.agent));
    // One credential (the broker caches it), three allowed calls, one denied.
    expect(line).toMatch(/\sTrue\s+no\s+[3-9]\d*\s+[1-9]\d*\s+\d+[smh]\s+1\s+-\s+ok \(\d+ entries\)$/);
  });
});
