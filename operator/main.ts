/**
 * The operator's reconcilers as leader-only runnables on a Manager (kube/manager.ts):
 * addOperator() registers them on the process's manager (`warden controller` does);
 * runOperator() is a manager holding only the operator (tests, the cold-start benchmark).
 *
 * The manager's cache runs on every replica (warm caches: a replica that wins the Lease
 * starts reconciling without a cold list); reconcilers run only on the leader.
 */
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AccessPolicy, AgentIdentity, CredentialProvider } from '../core/api/index.js';
import type { Clock } from '../kube/clock.js';
import type { Controller, ControllerMetrics } from '../kube/controller.js';
import { describeError } from '../kube/errors.js';
import type { EventRecorder } from '../kube/events.js';
import type { Informer, InformerLifecycleEvent } from '../kube/informer.js';
import { type KubeApi, KubeConfigApi, type KubeObject } from '../kube/kube.js';
import { controllerRunnable, Manager } from '../kube/manager.js';
import {
  ACCESS_POLICIES,
  AGENT_IDENTITIES,
  CREDENTIAL_PROVIDERS,
  SERVICE_ACCOUNTS,
} from '../kube/resources.js';
import type { StatusWriter } from '../kube/status.js';
import { accessPolicyController } from './reconcilers/accesspolicy.js';
import { agentIdentityController } from './reconcilers/agentidentity.js';
import { apiSecretReader, credentialProviderController } from './reconcilers/credentialprovider.js';

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  /** Watch only this namespace; undefined watches all namespaces. */
  namespace?: string;
  /** Namespace of the leader-election Lease. Default: `namespace`, else "warden-system". */
  leaseNamespace?: string;
  /** Name of the Lease. Default LEADER_LEASE_NAME. */
  leaseName?: string;
  /** This replica's identity (the pod name). Default: hostname + pid. */
  identity?: string;
  logger: Logger;
  /** false runs the controllers at once, without a Lease (single replica, tests). Default true. */
  leaderElection?: boolean;
  leaseDurationMs?: number;
  renewPeriodMs?: number;
  retryPeriodMs?: number;
  /** Parallel reconciles per controller. Default 4. */
  concurrency?: number;
  /** How often a CredentialProvider waiting for a Secret is re-checked (Secrets are not watched). Default 30 s. */
  secretRecheckMs?: number;
  /** Informer resync period. Default 10 min. */
  resyncPeriodMs?: number;
  metrics?: ControllerMetrics;
  /** Called after controllers started (true) or stopped (false). */
  onLeadershipChange?: (leading: boolean) => void;
  onInformerLifecycle?: (informer: string, event: InformerLifecycleEvent) => void;
  clock?: Clock;
  /** Overrides for tests: the API client, status writer and recorder. */
  api?: KubeApi;
  statusWriter?: StatusWriter;
  recorder?: EventRecorder;
  /** Further leader-only controllers (revocation, audit retention), built on the shared informers. */
  extraControllers?: (shared: SharedInformers) => Controller[];
}

/** The informers and clients extra controllers may build on. */
export interface SharedInformers {
  agents: Informer<AgentIdentity>;
  providers: Informer<CredentialProvider>;
  api: KubeApi;
  recorder: EventRecorder;
  clock: Clock;
  logger: Logger;
}

export interface RunningOperator {
  /** Graceful shutdown: stop controllers (draining in-flight reconciles up to deadlineMs), release the Lease, stop informers. */
  stop(deadlineMs?: number): Promise<void>;
  isLeader(): boolean;
  /** Resolves when controllers run and have nothing queued or in flight. */
  whenIdle(): Promise<void>;
  readonly identity: string;
  readonly controllers: readonly Controller[];
}

/** Registers the AgentIdentity, CredentialProvider and AccessPolicy reconcilers (leader-only), reading the manager's cache. */
export function addOperator(
  mgr: Manager,
  opts: Pick<OperatorOptions, 'concurrency' | 'secretRecheckMs' | 'metrics'> & {
    stopDeadlineMs?: () => number;
  } = {},
): { controllers: Controller[]; shared: SharedInformers } {
  const agents = mgr.cache.informer<AgentIdentity>(AGENT_IDENTITIES);
  const policies = mgr.cache.informer<AccessPolicy>(ACCESS_POLICIES);
  const providers = mgr.cache.informer<CredentialProvider>(CREDENTIAL_PROVIDERS);
  const serviceAccounts = mgr.cache.informer<KubeObject>(SERVICE_ACCOUNTS);
  const log = mgr.logger.child({ component: 'operator', identity: mgr.identity });
  const common = {
    status: mgr.statusWriter(),
    recorder: mgr.recorder,
    clock: mgr.clock,
    logger: log,
    concurrency: opts.concurrency,
    metrics: opts.metrics,
  };
  const controllers: Controller[] = [
    agentIdentityController({ ...common, agents, serviceAccounts }),
    credentialProviderController({
      ...common,
      providers,
      readSecret: apiSecretReader(mgr.api),
      secretRecheckMs: opts.secretRecheckMs,
    }),
    accessPolicyController({ ...common, policies, agents }),
  ];
  for (const c of controllers) addController(mgr, c, opts.stopDeadlineMs);
  return {
    controllers,
    shared: { agents, providers, api: mgr.api, recorder: mgr.recorder, clock: mgr.clock, logger: log },
  };
}

/** Registers one reconciler as a leader-only runnable. */
export function addController(mgr: Manager, c: Controller, stopDeadlineMs?: () => number): void {
  mgr.add(controllerRunnable(c, `controller/${c.name}`, stopDeadlineMs), { leaderOnly: true });
}

export function runOperator(opts: OperatorOptions): RunningOperator {
  const identity = opts.identity ?? `${hostname()}-${process.pid}`;
  const api = opts.api ?? new KubeConfigApi(opts.kubeConfig);
  const mgr = new Manager({
    api,
    logger: opts.logger,
    identity,
    namespace: opts.namespace,
    clock: opts.clock,
    recorder: opts.recorder,
    statusWriter: opts.statusWriter,
    resyncPeriodMs: opts.resyncPeriodMs,
    onInformerLifecycle: opts.onInformerLifecycle,
    onLeadershipChange: opts.onLeadershipChange,
    leaderElection:
      opts.leaderElection === false
        ? false
        : {
            namespace: opts.leaseNamespace ?? opts.namespace ?? 'warden-system',
            name: opts.leaseName,
            leaseDurationMs: opts.leaseDurationMs,
            renewPeriodMs: opts.renewPeriodMs,
            retryPeriodMs: opts.retryPeriodMs,
          },
  });
  let deadlineMs = 10_000;
  const { controllers, shared } = addOperator(mgr, { ...opts, stopDeadlineMs: () => deadlineMs });
  const extra = opts.extraControllers?.(shared) ?? [];
  for (const c of extra) addController(mgr, c, () => deadlineMs);
  const all = [...controllers, ...extra];
  const started = mgr.start();
  started.catch((err: unknown) => opts.logger.error({ err: describeError(err) }, 'operator failed to start'));

  return {
    identity,
    controllers: all,
    isLeader: () => mgr.isLeader(),
    async whenIdle() {
      await started;
      await mgr.settled();
      await Promise.all(all.map((c) => c.whenIdle()));
    },
    stop(d = 10_000) {
      deadlineMs = d;
      return mgr.stop();
    },
  };
}
