/**
 * Cold-start measurement: how long the operator takes to bring N AgentIdentities
 * and N AccessPolicies to Ready on a private control plane, and the memory it
 * holds afterwards. A measurement, not a test; bench/ can wrap it.
 *
 *   node --expose-gc --import tsx operator/testing/coldstart.ts [N] [workers per controller] [namespace-wide policies]
 */
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { AccessPolicy, AgentIdentity, Condition } from '../../core/api/index.js';
import { FIELD_MANAGER } from '../../core/constants.js';
import { compileAccessPolicy } from '../../core/policy/compile.js';
import { startControlPlane } from '../../e2e/controlplane/controlplane.js';
import { installCrds } from '../../e2e/harness/crds.js';
import { resourceInformer } from '../../kube/informer.js';
import { type KubeApi, KubeConfigApi, type KubeObject } from '../../kube/kube.js';
import { ACCESS_POLICIES, AGENT_IDENTITIES } from '../../kube/resources.js';
import { runOperator } from '../main.js';
import { decideAccessPolicy, toSpecLike } from '../reconcilers/accesspolicy.js';
import { decideAgentIdentity } from '../reconcilers/agentidentity.js';

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
  /** CPU of this process (operator + the measuring client's watches) from start to Ready, in seconds. */
  cpuSeconds: number;
  /** The floor on the same API server: a bare client creating the 2N objects (16 at a time). */
  createMs: number;
  /**
   * The floor: the same bare client writing every object's status once (one merge PATCH each of
   * the status the operator writes, as many at a time as the operator has workers), before the
   * operator starts. What the operator needs at least: it writes each object's status once.
   */
  statusFloorMs: number;
  /** Workers writing status at a time in the floor (the operator's per controller × 2 controllers). */
  floorConcurrency: number;
  /** CPU seconds of kube-apiserver, etcd and this process during the floor's status writes. */
  floorCpu: PhaseCpu;
  /** The same from the operator's start until every object is Ready. */
  operatorCpu: PhaseCpu;
  /** API requests the server counted from the operator's start until Ready, by verb (PATCH, LIST, WATCH, …). */
  operatorRequests: Record<string, number>;
  /** Of those, answered 409 Conflict. */
  operatorConflicts: number;
}

/** CPU seconds one phase cost each process (where the wall time went). */
export interface PhaseCpu {
  apiserver: number;
  etcd: number;
  /** This process: the floor's client, or the operator plus the readiness watches. */
  client: number;
}

/** A Prometheus text exposition's samples of one metric, summed per value of `label` ('' = all). */
function metricBy(text: string, metric: string, label = ''): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== metric) continue;
    const key = label ? (new RegExp(`${label}="([^"]*)"`).exec(m[2] ?? '')?.[1] ?? '') : '';
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

interface ServerSample {
  apiserverCpu: number;
  etcdCpu: number;
  clientCpu: number;
  requestsByVerb: Map<string, number>;
  /** Requests answered 409 Conflict (a status computed from a stale read, retried). */
  conflicts: number;
}

async function serverSample(api: KubeApi, etcdUrl: string): Promise<ServerSample> {
  const [apis, etcd] = await Promise.all([
    api.request<string>('GET', '/metrics', { accept: 'text/plain', timeoutMs: 60_000 }),
    fetch(`${etcdUrl}/metrics`).then((r) => r.text()),
  ]);
  const cpu = process.cpuUsage();
  return {
    apiserverCpu: metricBy(apis, 'process_cpu_seconds_total').get('') ?? 0,
    etcdCpu: metricBy(etcd, 'process_cpu_seconds_total').get('') ?? 0,
    clientCpu: (cpu.user + cpu.system) / 1e6,
    requestsByVerb: metricBy(apis, 'apiserver_request_total', 'verb'),
    conflicts: metricBy(apis, 'apiserver_request_total', 'code').get('409') ?? 0,
  };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

function phaseCpu(a: ServerSample, b: ServerSample): PhaseCpu {
  return {
    apiserver: round2(b.apiserverCpu - a.apiserverCpu),
    etcd: round2(b.etcdCpu - a.etcdCpu),
    client: round2(b.clientCpu - a.clientCpu),
  };
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

type ColdStartObject = KubeObject & {
  metadata: { name?: string; generation?: number };
  status?: { conditions?: Array<{ type: string; observedGeneration?: number }> };
};

const isReady = (o: ColdStartObject): boolean =>
  o.status?.conditions?.some((c) => c.type === 'Ready' && c.observedGeneration === o.metadata.generation) ??
  false;

/**
 * The status the operator will write for each object, computed with its own decide functions
 * (operator/reconcilers), but one generation stale: written once by the bare client, it costs the
 * API server what the operator's write costs (same fields, same size), yet the objects are not
 * Ready until the operator writes them again (with observedGeneration 1).
 */
function floorStatuses(
  ns: string,
  n: number,
  wide: number,
): Array<{ path: string; status: Record<string, unknown> }> {
  const base = `/apis/warden.dev/v1alpha1/namespaces/${ns}`;
  const now = new Date();
  const stale = (status: { observedGeneration?: number; conditions: Condition[] }) => ({
    ...status,
    observedGeneration: 0,
    conditions: status.conditions.map((c) => ({ ...c, observedGeneration: 0 })),
  });
  const compiled = compileAccessPolicy({ namespace: ns, name: 'policy-0', spec: toSpecLike(policySpec(0)) });
  const out: Array<{ path: string; status: Record<string, unknown> }> = [];
  for (let i = 0; i < n; i++) {
    const agent = {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'AgentIdentity',
      metadata: { name: `agent-${i}`, namespace: ns, generation: 1, labels: agentLabels(i) },
      spec: { serviceAccountName: SERVICE_ACCOUNT },
    } as AgentIdentity;
    out.push({
      path: `${base}/agentidentities/agent-${i}/status`,
      status: stale(decideAgentIdentity({ agent, serviceAccountExists: true }, now).status),
    });
  }
  for (let i = 0; i < n; i++) {
    const policy = {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'AccessPolicy',
      metadata: { name: `policy-${i}`, namespace: ns, generation: 1 },
      spec: policySpec(i),
    } as AccessPolicy;
    const decided = decideAccessPolicy(
      { policy, compiled, agents: [{ name: `agent-${i}`, labels: agentLabels(i) }] },
      now,
    );
    out.push({ path: `${base}/accesspolicies/policy-${i}/status`, status: stale(decided.status) });
  }
  const everyAgent = Array.from({ length: n }, (_, i) => ({ name: `agent-${i}`, labels: agentLabels(i) }));
  for (let j = 0; j < wide; j++) {
    const policy = {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'AccessPolicy',
      metadata: { name: `wide-${j}`, namespace: ns, generation: 1 },
      spec: widePolicySpec(),
    } as AccessPolicy;
    const decided = decideAccessPolicy({ policy, compiled, agents: everyAgent }, now);
    out.push({ path: `${base}/accesspolicies/wide-${j}/status`, status: stale(decided.status) });
  }
  return out;
}

/** One status merge PATCH per object (both kinds), `concurrency` at a time; ms from first to last. */
async function writeEveryStatusOnce(
  api: KubeApi,
  targets: ReadonlyArray<{ path: string; status: Record<string, unknown> }>,
  concurrency: number,
): Promise<number> {
  const started = Date.now();
  await pool([...targets], concurrency, ({ path, status }) =>
    // The operator's field manager: its write then updates the same managedFields entry, as on a
    // real cold start where it is the status's only writer.
    api.request('PATCH', path, {
      contentType: 'application/merge-patch+json',
      body: { status },
      query: { fieldManager: FIELD_MANAGER },
    }),
  );
  return Date.now() - started;
}

const SERVICE_ACCOUNT = 'agent-sa';
const agentLabels = (i: number) => ({ team: `team-${i % 10}` });
const policySpec = (i: number): AccessPolicy['spec'] =>
  ({
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
  }) as AccessPolicy['spec'];
/** A policy for every agent of the namespace (no agentSelector). */
const widePolicySpec = (): AccessPolicy['spec'] => {
  const { agentSelector: _, ...spec } = policySpec(0);
  return spec as AccessPolicy['spec'];
};

export async function measureColdStart(
  n = 1000,
  log: (l: string) => void = () => {},
  concurrency = 4,
  /**
   * AccessPolicies selecting every agent of the namespace (no agentSelector), on top of the N that
   * select one agent each: each agent's status write is an update of an agent every one of them selects.
   */
  widePolicies = 0,
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
      body: { metadata: { name: SERVICE_ACCOUNT } },
    });
    const base = `/apis/warden.dev/v1alpha1/namespaces/${ns}`;
    const idx = Array.from({ length: n }, (_, i) => i);
    log(`creating ${n} AgentIdentities and ${n} AccessPolicies`);
    const createStarted = Date.now();
    await pool(idx, 16, (i) =>
      api.request('POST', `${base}/agentidentities`, {
        body: {
          apiVersion: 'warden.dev/v1alpha1',
          kind: 'AgentIdentity',
          metadata: { name: `agent-${i}`, labels: agentLabels(i) },
          spec: { serviceAccountName: SERVICE_ACCOUNT },
        },
      }),
    );
    await pool(idx, 16, (i) =>
      api.request('POST', `${base}/accesspolicies`, {
        body: {
          apiVersion: 'warden.dev/v1alpha1',
          kind: 'AccessPolicy',
          metadata: { name: `policy-${i}` },
          spec: policySpec(i),
        },
      }),
    );
    for (let j = 0; j < widePolicies; j++)
      await api.request('POST', `${base}/accesspolicies`, {
        body: {
          apiVersion: 'warden.dev/v1alpha1',
          kind: 'AccessPolicy',
          metadata: { name: `wide-${j}` },
          spec: widePolicySpec(),
        },
      });

    // Readiness from watches (one list, then events): polling a LIST of every object each second
    // costs the API server and this process O(N) per poll for O(N) seconds — quadratic in N, and
    // it was most of this process's CPU at 10k.
    const ready = { identities: new Set<string>(), policies: new Set<string>() };
    let onReady: () => void = () => {};
    const readyByWatch = new Promise<void>((resolve) => {
      onReady = resolve;
    });
    const watchers = [
      [AGENT_IDENTITIES, ready.identities],
      [ACCESS_POLICIES, ready.policies],
    ].map(([ref, set]) => {
      const inf = resourceInformer<ColdStartObject>(api, ref as typeof AGENT_IDENTITIES, ns, {
        logger: pino({ level: 'warn' }),
        resyncPeriodMs: 0,
      });
      const seen = (o: ColdStartObject): void => {
        const name = o.metadata?.name ?? '';
        if (isReady(o)) (set as Set<string>).add(name);
        else (set as Set<string>).delete(name);
        if (ready.identities.size === n && ready.policies.size === n + widePolicies) onReady();
      };
      inf.on({ add: seen, update: (_, o) => seen(o) });
      return inf;
    });
    const createMs = Date.now() - createStarted;
    // The floor before the operator runs, on the same API server and etcd: the status the operator
    // will write, one generation stale (floorStatuses), so the objects are not Ready when it starts.
    // The readiness watches run through the floor too, so both phases carry the same measuring
    // cost (the API server sends each status write to them); listed before the operator starts, so
    // their caches are in the "before" memory sample.
    for (const w of watchers) w.start();
    await Promise.all(watchers.map((w) => w.waitForSync()));
    log('measuring the floor (one status write per object)');
    const floorConcurrency = 2 * concurrency;
    const statuses = floorStatuses(ns, n, widePolicies);
    const floor0 = await serverSample(api, cp.etcdUrl);
    const statusFloorMs = await writeEveryStatusOnce(api, statuses, floorConcurrency);
    const floor1 = await serverSample(api, cp.etcdUrl);
    gc?.();
    const before = process.memoryUsage();
    let reconciles = 0;
    const op0 = await serverSample(api, cp.etcdUrl);
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
    await readyByWatch;
    const readyMs = Date.now() - started;
    const cpu = process.cpuUsage(cpu0);
    const op1 = await serverSample(api, cp.etcdUrl);
    await op.whenIdle();
    gc?.();
    const after = process.memoryUsage();
    await op.stop();
    await Promise.all(watchers.map((w) => w.stop()));
    return {
      objects: { agentIdentities: n, accessPolicies: n + widePolicies },
      readyMs,
      rssBeforeMiB: mib(before.rss),
      rssAfterMiB: mib(after.rss),
      heapUsedAfterMiB: mib(after.heapUsed),
      heapDeltaMiB: mib(after.heapUsed - before.heapUsed),
      reconciles,
      cpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
      createMs,
      statusFloorMs,
      floorConcurrency,
      floorCpu: phaseCpu(floor0, floor1),
      operatorCpu: phaseCpu(op0, op1),
      operatorRequests: Object.fromEntries(
        [...op1.requestsByVerb]
          .map(([verb, count]) => [verb, count - (op0.requestsByVerb.get(verb) ?? 0)] as const)
          .filter(([, d]) => d > 0),
      ),
      operatorConflicts: op1.conflicts - op0.conflicts,
    };
  } finally {
    await cp.stop();
  }
}

if (process.argv[1]?.endsWith('coldstart.ts')) {
  const n = Number(process.argv[2] ?? 1000);
  const concurrency = Number(process.argv[3] ?? 4);
  const wide = Number(process.argv[4] ?? 0);
  measureColdStart(n, (l) => process.stderr.write(`${l}\n`), concurrency, wide).then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
