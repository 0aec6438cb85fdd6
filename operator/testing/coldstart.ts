/**
 * Cold-start measurement: how long the operator takes to bring N AgentIdentities
 * and N AccessPolicies to Ready on a private control plane, and the memory it
 * holds afterwards. A measurement, not a test; bench/ can wrap it.
 *
 *   node --expose-gc --import tsx operator/testing/coldstart.ts [N] [workers per controller]
 */
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { startControlPlane } from '../../e2e/controlplane/controlplane.js';
import { installCrds } from '../../e2e/harness/crds.js';
import { KubeConfigApi } from '../../kube/kube.js';
import { runOperator } from '../main.js';

export interface ColdStartResult {
  objects: { agentIdentities: number; accessPolicies: number };
  /** From runOperator() to every object carrying Ready for its generation. */
  readyMs: number;
  /** Until every informer listed and the first reconcile pass of each object was queued. */
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapUsedAfterMiB: number;
  /** Heap growth attributable to the operator (after GC when --expose-gc is given). */
  heapDeltaMiB: number;
  reconciles: number;
  /** CPU of this process (operator + the measuring client) from start to Ready, in seconds. */
  cpuSeconds: number;
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await fn(item);
      }
    }),
  );
}

const mib = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;
const gc = (globalThis as { gc?: () => void }).gc;

export async function measureColdStart(
  n = 1000,
  log: (l: string) => void = () => {},
  concurrency = 4,
): Promise<ColdStartResult> {
  const cp = await startControlPlane({ log });
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const api = new KubeConfigApi(kc);
    const ns = 'coldstart';
    await api.request('POST', '/api/v1/namespaces', { body: { metadata: { name: ns } } });
    await api.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
      body: { metadata: { name: 'agent-sa' } },
    });
    const base = `/apis/warden.dev/v1alpha1/namespaces/${ns}`;
    const idx = Array.from({ length: n }, (_, i) => i);
    log(`creating ${n} AgentIdentities and ${n} AccessPolicies`);
    await pool(idx, 16, (i) =>
      api.request('POST', `${base}/agentidentities`, {
        body: {
          apiVersion: 'warden.dev/v1alpha1',
          kind: 'AgentIdentity',
          metadata: { name: `agent-${i}`, labels: { team: `team-${i % 10}` } },
          spec: { serviceAccountName: 'agent-sa' },
        },
      }),
    );
    await pool(idx, 16, (i) =>
      api.request('POST', `${base}/accesspolicies`, {
        body: {
          apiVersion: 'warden.dev/v1alpha1',
          kind: 'AccessPolicy',
          metadata: { name: `policy-${i}` },
          spec: {
            agentSelector: { names: [`agent-${i}`] },
            rules: [
              {
                targets: ['jira'],
                tools: ['jira.get_*'],
                when: [
                  { name: 'support-staff', expression: "user.present && 'support' in user.groups" },
                  {
                    name: 'ticket',
                    expression: "has(context.ticketId) && context.ticketId.startsWith('SUP-')",
                  },
                ],
              },
            ],
          },
        },
      }),
    );

    gc?.();
    const before = process.memoryUsage();
    let reconciles = 0;
    const started = Date.now();
    const cpu0 = process.cpuUsage();
    log('starting the operator');
    const op = runOperator({
      kubeConfig: kc,
      namespace: ns,
      leaderElection: false,
      identity: 'coldstart',
      logger: pino({ level: 'warn' }),
      concurrency,
      metrics: { reconciled: () => reconciles++ },
    });
    const allReady = async (plural: string) => {
      const list = await api.request<{
        items: Array<{
          metadata: { generation?: number };
          status?: { conditions?: Array<{ type: string; observedGeneration?: number }> };
        }>;
      }>('GET', `${base}/${plural}`, { timeoutMs: 60_000 });
      return list.items.filter((o) =>
        o.status?.conditions?.some(
          (c) => c.type === 'Ready' && c.observedGeneration === o.metadata.generation,
        ),
      ).length;
    };
    for (;;) {
      const [a, p] = [await allReady('agentidentities'), await allReady('accesspolicies')];
      if (a === n && p === n) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const readyMs = Date.now() - started;
    const cpu = process.cpuUsage(cpu0);
    await op.whenIdle();
    gc?.();
    const after = process.memoryUsage();
    await op.stop();
    return {
      objects: { agentIdentities: n, accessPolicies: n },
      readyMs,
      rssBeforeMiB: mib(before.rss),
      rssAfterMiB: mib(after.rss),
      heapUsedAfterMiB: mib(after.heapUsed),
      heapDeltaMiB: mib(after.heapUsed - before.heapUsed),
      reconciles,
      cpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    };
  } finally {
    await cp.stop();
  }
}

if (process.argv[1]?.endsWith('coldstart.ts')) {
  const n = Number(process.argv[2] ?? 1000);
  const concurrency = Number(process.argv[3] ?? 4);
  measureColdStart(n, (l) => process.stderr.write(`${l}\n`), concurrency).then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
