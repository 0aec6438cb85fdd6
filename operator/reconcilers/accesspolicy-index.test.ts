/**
 * The AccessPolicy reconciler finds agents and policies through informer indexes instead of
 * scanning the namespace (#20: a cold start with N agents and N policies was O(N²)). The indexes
 * only narrow the search: for random agents, policies and selectors, the agents a policy matches
 * and the policies an agent event re-queues are exactly what scanning everything gives.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AccessPolicy, AgentIdentity } from '../../core/api/index.js';
import { keyOf } from '../../kube/controller.js';
import { Informer } from '../../kube/informer.js';
import type { KubeObject } from '../../kube/kube.js';
import { FakeClock } from '../../kube/testing/fake-clock.js';
import { FakeWatch } from '../../kube/testing/fake-watch.js';
import { agentSelectionChanged, candidateAgents, policiesAffectedByAgent, selects } from './accesspolicy.js';

const seed = Number(process.env.FUZZ_SEED ?? 20_261_204);

async function informerOf<T extends KubeObject>(items: T[]): Promise<Informer<T>> {
  const informer = new Informer<T>({
    name: 'test',
    path: '/test',
    list: async () => ({ items, metadata: { resourceVersion: '1' } }),
    watch: new FakeWatch(),
    logger: pino({ level: 'silent' }),
    clock: new FakeClock(),
    resyncPeriodMs: 0,
  });
  informer.start();
  await informer.waitForSync();
  return informer;
}

const name = fc.constantFrom('a', 'b', 'c', 'd');
const namespace = fc.constantFrom('ns1', 'ns2');
const labels = fc.dictionary(fc.constantFrom('team', 'tier'), fc.constantFrom('red', 'blue'), { maxKeys: 2 });
const agent = fc.record({ name, namespace, labels });
const policy = fc.record({
  name: fc.string({ minLength: 1, maxLength: 4 }).map((s) => `p-${Buffer.from(s).toString('hex')}`),
  namespace,
  names: fc.option(fc.array(name, { maxLength: 3 }), { nil: undefined }),
  matchLabels: fc.option(labels, { nil: undefined }),
  listed: fc.array(name, { maxLength: 2 }),
});

const toAgent = (a: { name: string; namespace: string; labels: Record<string, string> }): AgentIdentity =>
  ({ metadata: { name: a.name, namespace: a.namespace, labels: a.labels } }) as AgentIdentity;

describe('AccessPolicy indexes', () => {
  it('match the same agents and re-queue the same policies as a scan of the namespace', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(agent, { selector: (a) => `${a.namespace}/${a.name}` }),
        fc.uniqueArray(policy, { selector: (p) => `${p.namespace}/${p.name}` }),
        async (as, ps) => {
          const agents = await informerOf(as.map(toAgent));
          const policies = await informerOf(
            ps.map(
              (p) =>
                ({
                  metadata: { name: p.name, namespace: p.namespace },
                  spec: {
                    agentSelector: {
                      ...(p.names ? { names: p.names } : {}),
                      ...(p.matchLabels ? { matchLabels: p.matchLabels } : {}),
                    },
                    rules: [],
                  },
                  status: { matchedAgents: p.listed },
                }) as unknown as AccessPolicy,
            ),
          );
          const ref = (a: AgentIdentity) => ({
            name: a.metadata?.name ?? '',
            labels: a.metadata?.labels ?? {},
          });
          for (const p of policies.list()) {
            const ns = p.metadata?.namespace ?? '';
            const sel = p.spec?.agentSelector;
            const viaIndex = candidateAgents(agents, ns, sel).filter((a) => selects(sel, ref(a)));
            const viaScan = agents.list(ns).filter((a) => selects(sel, ref(a)));
            expect(viaIndex.map(keyOf).sort()).toEqual(viaScan.map(keyOf).sort());
          }
          for (const a of agents.list()) {
            const viaScan = policies
              .list(a.metadata?.namespace)
              .filter(
                (p) =>
                  selects(p.spec?.agentSelector, ref(a)) ||
                  (p.status?.matchedAgents ?? []).includes(a.metadata?.name ?? ''),
              )
              .map(keyOf);
            expect(policiesAffectedByAgent(policies, a).sort()).toEqual(viaScan.sort());
          }
          await Promise.all([agents.stop(), policies.stop()]);
        },
      ),
      { seed, numRuns: 150 },
    );
  });
});

describe('agentSelectionChanged: which AgentIdentity updates can change the policies selecting it', () => {
  const agent = (labels?: Record<string, string>, status?: Record<string, unknown>): AgentIdentity =>
    ({
      metadata: { name: 'bot', namespace: 'ns', ...(labels ? { labels } : {}) },
      spec: { serviceAccountName: 'sa' },
      ...(status ? { status } : {}),
    }) as AgentIdentity;

  it('ignores a status-only update (the operator or the authority writing status)', () => {
    expect(agentSelectionChanged(agent({ team: 'a' }), agent({ team: 'a' }, { conditions: [] }))).toBe(false);
    expect(agentSelectionChanged(agent(), agent(undefined, { conditions: [] }))).toBe(false);
  });

  it.each([
    ['a label added', agent({ team: 'a' }), agent({ team: 'a', tier: '1' })],
    ['a label removed', agent({ team: 'a', tier: '1' }), agent({ team: 'a' })],
    ['a label value changed', agent({ team: 'a' }), agent({ team: 'b' })],
    ['labels added to an agent without any', agent(), agent({ team: 'a' })],
    ['a label renamed (same count)', agent({ team: 'a' }), agent({ group: 'a' })],
  ])('counts %s', (_, before, after) => {
    expect(agentSelectionChanged(before, after)).toBe(true);
  });
});
