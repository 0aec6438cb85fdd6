/**
 * The reconcilers against the real control plane: each test runs the operator
 * in its own namespace and drives it only through the Kubernetes API.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig } from '../../e2e/harness/index.js';
import { KubeConfigApi, type ResourceRef } from '../../kube/kube.js';
import type { Outcome } from '../../kube/queue.js';
import { ApiStatusWriter, type StatusWriter } from '../../kube/status.js';
import { type RunningOperator, runOperator } from '../main.js';
import {
  condition,
  corePath,
  create,
  del,
  eventsFor,
  eventually,
  get,
  type Obj,
  testLogger,
  wardenPath,
} from '../testing/int.js';

const api = new KubeConfigApi(kubeConfig());
let running: RunningOperator | undefined;

afterEach(async () => {
  await running?.stop(5_000);
  running = undefined;
});

function start(
  namespace: string,
  extra: { statusWriter?: StatusWriter; outcomes?: Array<[string, Outcome]> } = {},
) {
  running = runOperator({
    kubeConfig: kubeConfig(),
    namespace,
    leaderElection: false,
    logger: testLogger,
    identity: `test-${namespace}`,
    secretRecheckMs: 1_000,
    statusWriter: extra.statusWriter,
    metrics: { reconciled: (controller, outcome) => extra.outcomes?.push([controller, outcome]) },
  });
  return running;
}

const agent = (name: string, sa: string, spec: Record<string, unknown> = {}): Obj => ({
  apiVersion: 'warden.dev/v1alpha1',
  kind: 'AgentIdentity',
  metadata: { name, labels: { team: 'support' } },
  spec: { serviceAccountName: sa, ...spec },
});

describe('AgentIdentity reconciler', () => {
  it('reports ServiceAccountNotFound, then becomes Ready when the ServiceAccount is created later; reflects suspension', async () => {
    const ns = await freshNamespace('op-agent');
    start(ns);
    await create(api, wardenPath(ns, 'agentidentities'), agent('bot', 'bot-sa'));

    const notFound = await eventually('Ready=False ServiceAccountNotFound', async () => {
      const a = await get(api, wardenPath(ns, 'agentidentities', 'bot'));
      return condition(a, 'Ready')?.reason === 'ServiceAccountNotFound' && a;
    });
    expect(condition(notFound, 'Ready')?.message).toContain(`ServiceAccount ${ns}/bot-sa not found`);
    expect(notFound.status?.observedGeneration).toBe(1);
    expect(condition(notFound, 'Suspended')?.status).toBe('False');
    await eventually('a Warning Event', async () =>
      (await eventsFor(api, ns, 'bot')).some(
        (e) => e.reason === 'ServiceAccountNotFound' && e.type === 'Warning',
      ),
    );

    // The ServiceAccount appears later; nobody touches the AgentIdentity.
    await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'bot-sa' } });
    await eventually('Ready=True', async () => {
      const a = await get(api, wardenPath(ns, 'agentidentities', 'bot'));
      return condition(a, 'Ready')?.status === 'True' && a;
    });
    await eventually('a Normal Ready Event', async () =>
      (await eventsFor(api, ns, 'bot')).some((e) => e.reason === 'Ready' && e.type === 'Normal'),
    );

    // Kill switch.
    await api.request('PATCH', wardenPath(ns, 'agentidentities', 'bot'), {
      body: { spec: { suspended: true, suspendReason: 'incident INC-7' } },
      contentType: 'application/merge-patch+json',
    });
    const suspended = await eventually('Suspended=True', async () => {
      const a = await get(api, wardenPath(ns, 'agentidentities', 'bot'));
      return condition(a, 'Suspended')?.status === 'True' && a;
    });
    expect(condition(suspended, 'Suspended')?.message).toBe('spec.suspended is true: incident INC-7');
    expect(condition(suspended, 'Ready')).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(suspended.status?.observedGeneration).toBe(2);
  });
});

describe('CredentialProvider reconciler', () => {
  it('SecretNotFound → SecretKeyMissing → Ready as the Secret appears and is fixed; values never leak', async () => {
    const ns = await freshNamespace('op-provider');
    start(ns);
    await create(api, wardenPath(ns, 'credentialproviders'), {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'CredentialProvider',
      metadata: { name: 'tickets' },
      spec: {
        target: { url: 'https://tickets.example.com', protocol: 'HTTP' },
        type: 'APIKey',
        apiKey: { secretRef: { name: 'tickets-key', key: 'token' } },
      },
    });
    await eventually('SecretNotFound', async () => {
      const p = await get(api, wardenPath(ns, 'credentialproviders', 'tickets'));
      return condition(p, 'Ready')?.reason === 'SecretNotFound' && p;
    });

    const secretValue = 'sk-live-DO-NOT-LEAK-1234567890';
    await create(api, corePath(ns, 'secrets'), {
      metadata: { name: 'tickets-key' },
      data: { wrong: Buffer.from(secretValue).toString('base64') },
    } as Obj);
    const keyMissing = await eventually('SecretKeyMissing', async () => {
      const p = await get(api, wardenPath(ns, 'credentialproviders', 'tickets'));
      return condition(p, 'Ready')?.reason === 'SecretKeyMissing' && p;
    });
    expect(condition(keyMissing, 'Ready')?.message).toContain("has no key 'token' (keys present: wrong)");

    await api.request('PATCH', corePath(ns, 'secrets', 'tickets-key'), {
      body: { data: { token: Buffer.from(secretValue).toString('base64') } },
      contentType: 'application/merge-patch+json',
    });
    const ready = await eventually('Ready', async () => {
      const p = await get(api, wardenPath(ns, 'credentialproviders', 'tickets'));
      return condition(p, 'Ready')?.status === 'True' && p;
    });
    expect(ready.status?.standingSecret).toBe(true);
    // Events are written by the recorder after the status write: wait for the last one.
    await expect
      .poll(async () => (await eventsFor(api, ns, 'tickets')).map((e) => e.reason), { timeout: 10_000 })
      .toEqual(expect.arrayContaining(['SecretNotFound', 'SecretKeyMissing', 'Ready']));
    const events = await eventsFor(api, ns, 'tickets');
    const b64 = Buffer.from(secretValue).toString('base64');
    for (const text of [JSON.stringify(ready), JSON.stringify(events)]) {
      expect(text).not.toContain(secretValue);
      expect(text).not.toContain(b64);
    }
  });
});

describe('AccessPolicy reconciler', () => {
  it('invalid CEL → InvalidExpression naming rule, condition and position with a Warning Event; valid → matchedAgents', async () => {
    const ns = await freshNamespace('op-policy');
    start(ns);
    await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'sa' } });
    await create(api, wardenPath(ns, 'agentidentities'), agent('support-bot', 'sa'));
    await create(api, wardenPath(ns, 'agentidentities'), agent('billing-bot', 'sa'));
    const policy = (name: string, spec: Record<string, unknown>): Obj => ({
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'AccessPolicy',
      metadata: { name },
      spec,
    });
    await create(
      api,
      wardenPath(ns, 'accesspolicies'),
      policy('broken', {
        rules: [
          {
            targets: ['jira'],
            when: [
              { name: 'ok', expression: 'true' },
              { name: 'typo', expression: 'usr.present' },
            ],
          },
        ],
      }),
    );
    await create(
      api,
      wardenPath(ns, 'accesspolicies'),
      policy('support', {
        agentSelector: { matchLabels: { team: 'support' } },
        rules: [{ targets: ['jira'], tools: ['jira.get_*'] }],
      }),
    );
    await create(
      api,
      wardenPath(ns, 'accesspolicies'),
      policy('nobody', { agentSelector: { names: ['ghost'] }, rules: [{ targets: ['*'] }] }),
    );

    const broken = await eventually('InvalidExpression', async () => {
      const p = await get(api, wardenPath(ns, 'accesspolicies', 'broken'));
      return condition(p, 'Ready')?.reason === 'InvalidExpression' && p;
    });
    expect(condition(broken, 'Ready')?.message).toBe(
      `spec.rules[0].when[1].expression (rule 0, condition 1 "typo"): undeclared reference to 'usr' at 1:1 (did you mean 'user'?)`,
    );
    await eventually('a Warning InvalidExpression Event', async () =>
      (await eventsFor(api, ns, 'broken')).some(
        (e) => e.type === 'Warning' && e.reason === 'InvalidExpression',
      ),
    );

    const support = await eventually('matchedAgents', async () => {
      const p = await get(api, wardenPath(ns, 'accesspolicies', 'support'));
      return (p?.status?.matchedAgents as string[] | undefined)?.length === 2 && p;
    });
    expect(support.status?.matchedAgents).toEqual(['billing-bot', 'support-bot']);
    expect(condition(support, 'Ready')?.status).toBe('True');

    const nobody = await eventually('a policy selecting no agent', async () => {
      const p = await get(api, wardenPath(ns, 'accesspolicies', 'nobody'));
      return condition(p, 'Ready') && p;
    });
    expect(nobody.status?.matchedAgents).toEqual([]);
    expect(condition(nobody, 'Ready')?.message).toContain('selects no AgentIdentity');
    await eventually('a NoMatchingAgents Event', async () =>
      (await eventsFor(api, ns, 'nobody')).some((e) => e.reason === 'NoMatchingAgents'),
    );

    // An agent leaving the selection updates matchedAgents.
    await del(api, wardenPath(ns, 'agentidentities', 'billing-bot'));
    await eventually('matchedAgents shrinks', async () => {
      const p = await get(api, wardenPath(ns, 'accesspolicies', 'support'));
      return JSON.stringify(p?.status?.matchedAgents) === '["support-bot"]';
    });
    // So does an agent whose labels no longer match (a label change wakes the policy; the
    // agents' status writes do not).
    await api.request('PATCH', wardenPath(ns, 'agentidentities', 'support-bot'), {
      body: { metadata: { labels: { team: 'sales' } } },
      contentType: 'application/merge-patch+json',
    });
    await eventually('matchedAgents follows the label change', async () => {
      const p = await get(api, wardenPath(ns, 'accesspolicies', 'support'));
      return JSON.stringify(p?.status?.matchedAgents) === '[]';
    });
  });
});

/** Wraps the real status writer to inject a real race just before the write. */
class RacingStatusWriter implements StatusWriter {
  private readonly inner: ApiStatusWriter;
  readonly raced = new Set<string>();
  readonly fieldManager: string;
  constructor(private readonly race: (path: string) => Promise<void>) {
    this.inner = new ApiStatusWriter(api);
    this.fieldManager = this.inner.fieldManager;
  }
  overwrite(ref: ResourceRef, obj: Obj, desired: Record<string, unknown>, signal?: AbortSignal) {
    return this.inner.overwrite(ref, obj, desired, signal);
  }
  async write(ref: ResourceRef, obj: Obj, desired: Record<string, unknown>, signal?: AbortSignal) {
    const path = wardenPath(obj.metadata?.namespace ?? '', ref.plural, obj.metadata?.name);
    if (!this.raced.has(path)) {
      this.raced.add(path);
      await this.race(path);
    }
    return this.inner.write(ref, obj, desired, signal);
  }
}

describe('races', () => {
  it('a 409 Conflict on the status write is retried and the object still converges', async () => {
    const ns = await freshNamespace('op-conflict');
    // Someone changes the object between our read and our write: the write carries a stale resourceVersion.
    const writer = new RacingStatusWriter(async (path) => {
      await api.request('PATCH', path, {
        body: { metadata: { labels: { touched: 'yes' } } },
        contentType: 'application/merge-patch+json',
      });
    });
    const outcomes: Array<[string, Outcome]> = [];
    start(ns, { statusWriter: writer, outcomes });
    await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'sa' } });
    await create(api, wardenPath(ns, 'agentidentities'), agent('bot', 'sa'));
    const a = await eventually('Ready after the conflict', async () => {
      const x = await get(api, wardenPath(ns, 'agentidentities', 'bot'));
      return condition(x, 'Ready')?.status === 'True' && x;
    });
    expect(a.metadata?.labels?.touched).toBe('yes');
    expect(outcomes).toContainEqual(['agentidentity', 'conflict']);
    expect(outcomes.filter(([c, o]) => c === 'agentidentity' && o === 'error')).toEqual([]);
  });

  it('objects deleted mid-reconcile are treated as done, and the operator keeps going', async () => {
    const ns = await freshNamespace('op-delete');
    const writer = new RacingStatusWriter(async (path) => {
      if (path.includes('/doomed-')) await del(api, path);
    });
    const outcomes: Array<[string, Outcome]> = [];
    start(ns, { statusWriter: writer, outcomes });
    await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'sa' } });
    for (let i = 0; i < 5; i++)
      await create(api, wardenPath(ns, 'agentidentities'), agent(`doomed-${i}`, 'sa'));
    await create(api, wardenPath(ns, 'credentialproviders'), {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'CredentialProvider',
      metadata: { name: 'doomed-jwt' },
      spec: { target: { url: 'https://x.example.com' }, type: 'JWT', jwt: {} },
    });
    await eventually('all doomed objects gone', async () => {
      const list = await api.request<{ items: unknown[] }>('GET', wardenPath(ns, 'agentidentities'));
      return list.items.length === 0;
    });
    // Still healthy: a new object converges.
    await create(api, wardenPath(ns, 'agentidentities'), agent('survivor', 'sa'));
    await eventually('survivor Ready', async () => {
      const x = await get(api, wardenPath(ns, 'agentidentities', 'survivor'));
      return condition(x, 'Ready')?.status === 'True';
    });
    expect(outcomes.filter(([, o]) => o === 'error')).toEqual([]);
  });
});
