/**
 * `kubectl warden explain` against the real control plane: the CLI runs as a
 * child process with the test kubeconfig and reads live AgentIdentity and
 * AccessPolicy objects.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, GROUP, PLURAL, VERSION } from '../../core/constants.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../../e2e/harness/index.js';

const run = promisify(execFile);

async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', 'cli/kubectl-warden.ts', ...args],
      {
        env: { ...process.env, KUBECONFIG: kubeconfigPath() },
      },
    );
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('kubectl warden explain (live CRs)', () => {
  let ns = '';

  beforeAll(async () => {
    ns = await freshNamespace('cli-explain');
    const api = kubeConfig().makeApiClient(CustomObjectsApi);
    const create = (
      plural: string,
      kind: string,
      name: string,
      spec: unknown,
      labels: Record<string, string> = {},
    ) =>
      api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural,
        body: { apiVersion: API_VERSION, kind, metadata: { name, namespace: ns, labels }, spec },
      });
    await create(
      PLURAL.AgentIdentity,
      'AgentIdentity',
      'support-bot',
      { serviceAccountName: 'support-bot' },
      { team: 'support' },
    );
    await create(PLURAL.AccessPolicy, 'AccessPolicy', 'support', {
      agentSelector: { names: ['support-bot'] },
      effect: 'Allow',
      rules: [
        {
          targets: ['jira'],
          tools: ['jira.get_*', 'jira.create_issue'],
          when: [
            { name: 'support-staff', expression: "user.present && 'support' in user.groups" },
            {
              name: 'ticket-referenced',
              expression: "has(context.ticketId) && context.ticketId.matches('^SUP-[0-9]+$')",
            },
          ],
        },
      ],
    });
    await create(PLURAL.AccessPolicy, 'AccessPolicy', 'no-deletes', {
      effect: 'Deny',
      rules: [{ targets: ['*'], tools: ['*.delete*'] }],
    });
  });

  it('allows with matching claims and context, and says which policy decided (JSON)', async () => {
    const r = await cli([
      'explain',
      '--agent',
      'support-bot',
      '--tool',
      'jira.create_issue',
      '--user-claims',
      '{"sub":"alice","groups":["support"]}',
      '--request-context',
      '{"ticketId":"SUP-1"}',
      '-n',
      ns,
      '--output',
      'json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.decision).toMatchObject({
      decision: 'Allow',
      reason: 'Allowed',
      policy: `${ns}/support`,
      rule: 0,
    });
    expect(out.policies.map((p: { policy: string }) => p.policy)).toEqual([
      `${ns}/no-deletes`,
      `${ns}/support`,
    ]);
  });

  it('explains a denial for the agent acting alone as a table', async () => {
    const r = await cli(['explain', '--agent', 'support-bot', '--tool', 'jira.create_issue', '-n', ns]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('DECISION  DENY (ConditionFailed)');
    expect(r.stdout).toContain('support-bot acting alone');
    expect(r.stdout).toMatch(/support-staff\s+false/);
  });

  it('fails clearly for an unknown agent', async () => {
    const r = await cli(['explain', '--agent', 'nobody', '--tool', 'jira.get_issue', '-n', ns]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`AgentIdentity ${ns}/nobody not found`);
  });
});
