/**
 * Who flipped the kill switch: a real user (impersonated with `kubectl --as`, allowed by a Role,
 * not system:masters) patches spec.suspended; the chart's MutatingAdmissionPolicy (installed by
 * the harness from charts/warden/templates/killswitch-user-policy.yaml) records the API server's
 * userInfo in the object, the revocation reconciler carries it into status.revocation.requestedBy
 * and the Suspension audit entry, and `kubectl warden audit` and `status` show it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATION_REVIVED_BY, ANNOTATION_SUSPENDED_BY } from '../core/constants.js';
import { freshNamespace, kubeConfig, kubeconfigPath, kubectl } from './harness/index.js';
import { eventually, type Stack, startStack } from './killswitch-fixture.js';

const exec = promisify(execFile);
const cli = async (...args: string[]) =>
  (
    await exec(process.execPath, ['--import', 'tsx', 'cli/kubectl-warden.ts', ...args], {
      env: { ...process.env, KUBECONFIG: kubeconfigPath() },
    })
  ).stdout;

describe('who flipped the kill switch (kubectl --as, MutatingAdmissionPolicy)', () => {
  let stack: Stack;
  let ns: string;

  beforeAll(async () => {
    ns = await freshNamespace('ks-user');
    stack = await startStack({ kubeConfig: kubeConfig(), namespace: ns });
    // The security team's users may get and patch AgentIdentities in this namespace, nothing more.
    const rbac = await kubectl(['apply', '-n', ns, '-f', '-'], {
      input: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: kill-switch}
rules:
  - apiGroups: [warden.dev]
    resources: [agentidentities]
    verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kill-switch}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kill-switch}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice@example.com}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob@example.com}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: mallory@example.com}
`,
    });
    expect(rbac.code, rbac.stderr).toBe(0);
    await stack.waitReady();
  });

  afterAll(async () => {
    await stack?.stop();
  });

  const patch = (user: string, body: unknown) =>
    kubectl([
      'patch',
      'agentidentity',
      stack.agent,
      '-n',
      ns,
      '--as',
      user,
      '--type',
      'merge',
      '-p',
      JSON.stringify(body),
    ]);

  it('records the user who set spec.suspended in the object, status, audit entry, audit view and status view', async () => {
    const r = await patch('alice@example.com', { spec: { suspended: true, suspendReason: 'INC-9' } });
    expect(r.code, r.stderr).toBe(0);
    const agent = await stack.getAgent();
    expect(agent.metadata?.annotations?.[ANNOTATION_SUSPENDED_BY]).toBe('alice@example.com');
    const rev = await eventually('revocation completed', async () => {
      const a = await stack.getAgent();
      return a.status?.revocation?.completedAt ? a.status.revocation : undefined;
    });
    expect(rev.requestedBy).toMatch(
      /^alice@example\.com via kubectl-client-side-apply|^alice@example\.com via kubectl-patch/,
    );
    const entry = await eventually('the Suspension audit entry', async () =>
      (await stack.auditRecords()).flatMap((x) => x.spec.entries).find((e) => e.kind === 'Suspension'),
    );
    expect(entry.user).toMatch(/^alice@example\.com via /);
    const audit = await cli('audit', '-n', ns, '--agent', stack.agent);
    expect(audit).toMatch(/Suspension\s+Deny\s+alice@example\.com/);
    const status = await cli('status', '-n', ns);
    expect(status).toMatch(
      new RegExp(`${stack.agent}\\s+False \\(Suspended\\)\\s+yes, by alice@example\\.com`),
    );
  });

  it('a plain edit cannot forge or erase the annotation', async () => {
    const forged = await patch('mallory@example.com', {
      metadata: { annotations: { [ANNOTATION_SUSPENDED_BY]: 'bob@example.com' } },
    });
    expect(forged.code, forged.stderr).toBe(0);
    expect((await stack.getAgent()).metadata?.annotations?.[ANNOTATION_SUSPENDED_BY]).toBe(
      'alice@example.com',
    );
    const erased = await patch('mallory@example.com', {
      metadata: { annotations: { [ANNOTATION_SUSPENDED_BY]: null, [ANNOTATION_REVIVED_BY]: 'mallory' } },
    });
    expect(erased.code, erased.stderr).toBe(0);
    const annotations = (await stack.getAgent()).metadata?.annotations ?? {};
    expect(annotations[ANNOTATION_SUSPENDED_BY]).toBe('alice@example.com');
    expect(annotations[ANNOTATION_REVIVED_BY]).toBeUndefined();
  });

  it('records who cleared it (revived-by) and names them in the Resumed Event', async () => {
    const r = await patch('bob@example.com', { spec: { suspended: false } });
    expect(r.code, r.stderr).toBe(0);
    expect((await stack.getAgent()).metadata?.annotations?.[ANNOTATION_REVIVED_BY]).toBe('bob@example.com');
    const events = await eventually('the Resumed Event', async () => {
      const e = await kubectl(['get', 'events.events.k8s.io', '-n', ns, '-o', 'json']);
      const items = (JSON.parse(e.stdout) as { items: { reason?: string; note?: string }[] }).items;
      return items.find((x) => x.reason === 'Resumed');
    });
    expect(events.note).toContain('(set by bob@example.com)');
  });
});
