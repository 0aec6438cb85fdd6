/**
 * Fault: the kube-apiserver process is restarted (a PRIVATE control plane: stopping the shared one
 * would break every other test file). A real `warden controller` (operator + authority + audit
 * writer) and a real broker keep running through it.
 *
 * e2e/killswitch.e2e.test.ts covers "no audit entry lost across an outage"; this test covers what
 * comes after the restart: every component reconnects and converges on changes made *after* it —
 * a new AccessPolicy reaches the broker through the authority's re-established watch and policy
 * stream, the operator reconciles it and a suspension (status conditions, revocation), and the
 * decisions taken while the API server was away are all in the AuditRecords, once, with the
 * decision the agent saw.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessPolicy } from '../../core/api/index.js';
import { verifyChain } from '../../core/audit/chain.js';
import { API_VERSION, PLURAL } from '../../core/constants.js';
import { type ControlPlane, installCrds, startControlPlane } from '../harness/index.js';
import { eventually, type Stack, startStack } from '../killswitch-fixture.js';
import { auditEntries, auditRecords, getAgent } from './faults-b-fixture.js';

const NS = 'apiserver-restart';

describe('fault: kube-apiserver restarted (private control plane)', () => {
  let cp: ControlPlane;
  let stack: Stack;

  beforeAll(async () => {
    cp = await startControlPlane();
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    stack = await startStack({ kubeConfig: kc, namespace: NS });
    await stack.waitReady();
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    await cp?.stop();
  });

  it('operator, authority and broker reconnect and converge on changes made after the restart; decisions taken meanwhile are all audited', async () => {
    const prefix = `restart-${Date.now()}-`;
    const calls: { requestId: string; status: number }[] = [];
    const call = async (method: 'GET' | 'POST') => {
      const requestId = `${prefix}${calls.length}`;
      const r = await stack.call(method, requestId);
      calls.push({ requestId, status: r.status });
      return r;
    };
    expect((await call('GET')).status).toBe(200);
    expect((await call('POST')).status).toBe(403);

    await cp.stopApiServer();
    // The agent keeps working on what the broker holds: its policy snapshot and cached credential.
    for (let i = 0; i < 20; i++) await call(i % 2 ? 'POST' : 'GET');
    const during = calls.slice(2);
    // The controller's writer could not persist them: they are buffered, not dropped.
    await eventually(
      'the audit writer buffering through failed writes',
      async () => {
        const s = stack.controller.auditWriter.stats();
        return s.failures > 0 && s.buffered > 0;
      },
      30_000,
    );

    await cp.startApiServer();

    // A spec change made after the restart: an AccessPolicy that also allows POST.
    await eventually(
      'the AccessPolicy created after the restart',
      async () =>
        stack.api.request('POST', `/apis/${API_VERSION}/namespaces/${NS}/${PLURAL.AccessPolicy}`, {
          body: {
            apiVersion: API_VERSION,
            kind: 'AccessPolicy',
            metadata: { name: 'bot-write' },
            spec: {
              agentSelector: { names: [stack.agent] },
              effect: 'Allow',
              rules: [{ targets: ['api'], http: { methods: ['POST'], paths: ['/**'] } }],
            },
          },
        }),
      30_000,
      500,
    );
    // Broker (snapshot from the authority's watch, over the re-opened stream) and authority
    // (central decision before the credential) both know it: the POST goes through.
    await eventually(
      'a POST allowed by the new policy',
      async () => (await call('POST')).status === 200,
      60_000,
      250,
    );
    // The operator reconciled it.
    const policy = await eventually(
      'the new AccessPolicy Ready',
      async () => {
        const p = await stack.api.request<AccessPolicy>(
          'GET',
          `/apis/${API_VERSION}/namespaces/${NS}/${PLURAL.AccessPolicy}/bot-write`,
        );
        const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
        return ready?.status === 'True' && ready.observedGeneration === p.metadata?.generation && p;
      },
      60_000,
      250,
    );
    expect(policy.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBeDefined();

    // A suspension after the restart: the broker denies, the AgentIdentity status converges.
    await stack.patchAgent({ suspended: true, suspendReason: 'after the restart' });
    const denied = await eventually('a denied call', async () => {
      const r = await call('GET');
      return r.status !== 200 && r;
    });
    // The first denial may come from the authority's central decision (its watch can see the
    // suspension before the broker's snapshot does); either way it says why.
    expect(denied.body).toMatch(/AgentSuspended|is suspended/);
    // The broker's own snapshot converges too: it denies locally, without asking.
    await eventually('the broker denying from its snapshot', async () => {
      const r = await call('GET');
      return r.status !== 200 && r.body.includes('AgentSuspended');
    });
    const agent = await eventually(
      'the AgentIdentity status converged',
      async () => {
        const a = await getAgent(stack.api, NS, stack.agent);
        const suspended = a.status?.conditions?.find((c) => c.type === 'Suspended');
        return (
          suspended?.status === 'True' &&
          suspended.observedGeneration === a.metadata?.generation &&
          a.status?.revocation?.completedAt !== undefined &&
          a
        );
      },
      60_000,
      250,
    );
    expect(agent.status?.revocation).toMatchObject({ reason: 'after the restart', pending: 0 });

    // Every decision, the ones during the outage included, is in the trail once, as the agent saw it.
    const wanted = new Set(calls.map((c) => c.requestId));
    await eventually(
      'every decision in the AuditRecords',
      async () => {
        const seen = new Set(
          auditEntries(await auditRecords(stack.api, NS, stack.agent)).map((e) => e.requestId),
        );
        return [...wanted].every((id) => seen.has(id));
      },
      60_000,
      500,
    );
    // Let a duplicate, if any, arrive before counting exactly.
    await new Promise((r) => setTimeout(r, 1500));
    const records = await auditRecords(stack.api, NS, stack.agent);
    const decisions = auditEntries(records).filter(
      (e) => e.kind === 'Decision' && e.requestId?.startsWith(prefix),
    );
    expect(decisions).toHaveLength(calls.length);
    const byId = new Map(decisions.map((e) => [e.requestId, e.decision]));
    for (const c of calls)
      expect([c.requestId, byId.get(c.requestId)]).toEqual([
        c.requestId,
        c.status === 200 ? 'Allow' : 'Deny',
      ]);
    expect(during.filter((c) => c.status === 200).length).toBeGreaterThan(0);
    expect(stack.controller.auditWriter.stats()).toMatchObject({ dropped: 0, buffered: 0 });
    const verified = verifyChain(records.map((r) => ({ name: r.metadata?.name, spec: r.spec })));
    expect(verified.problems).toEqual([]);
  }, 180_000);
});
