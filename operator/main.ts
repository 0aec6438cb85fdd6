/**
 * runOperator: wires informers, controllers, the event recorder and leader
 * election. The `warden controller` entry point calls it and calls stop() on
 * SIGTERM.
 *
 * Informers run on every replica (warm caches: a replica that wins the Lease
 * starts reconciling without a cold list); controllers run only on the leader.
 * Leadership changes are serialized so a quick lose/regain never runs two sets
 * of workers.
 */
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AccessPolicy, AgentIdentity, CredentialProvider } from '../core/api/index.js';
import { LEADER_LEASE_NAME } from '../core/constants.js';
import { type Clock, realClock } from '../kube/clock.js';
import type { Controller, ControllerMetrics } from '../kube/controller.js';
import { describeError } from '../kube/errors.js';
import { ApiEventRecorder, type EventRecorder } from '../kube/events.js';
import { type Informer, type InformerLifecycleEvent, resourceInformer } from '../kube/informer.js';
import { type KubeApi, KubeConfigApi, type KubeObject } from '../kube/kube.js';
import { LeaderElector } from '../kube/leader.js';
import {
  ACCESS_POLICIES,
  AGENT_IDENTITIES,
  CREDENTIAL_PROVIDERS,
  SERVICE_ACCOUNTS,
} from '../kube/resources.js';
import { ApiStatusWriter, type StatusWriter } from '../kube/status.js';
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

export function runOperator(opts: OperatorOptions): RunningOperator {
  const clock = opts.clock ?? realClock;
  const identity = opts.identity ?? `${hostname()}-${process.pid}`;
  const log = opts.logger.child({ component: 'operator', identity });
  const api = opts.api ?? new KubeConfigApi(opts.kubeConfig);
  const status = opts.statusWriter ?? new ApiStatusWriter(api);
  const recorder = opts.recorder ?? new ApiEventRecorder({ api, instance: identity, logger: log, clock });
  const ns = opts.namespace;

  const informerOpts = (name: string) => ({
    logger: log,
    clock,
    resyncPeriodMs: opts.resyncPeriodMs,
    onLifecycle: (e: InformerLifecycleEvent) => opts.onInformerLifecycle?.(name, e),
  });
  const agents = resourceInformer<AgentIdentity>(api, AGENT_IDENTITIES, ns, informerOpts('agentidentities'));
  const policies = resourceInformer<AccessPolicy>(api, ACCESS_POLICIES, ns, informerOpts('accesspolicies'));
  const providers = resourceInformer<CredentialProvider>(
    api,
    CREDENTIAL_PROVIDERS,
    ns,
    informerOpts('credentialproviders'),
  );
  const serviceAccounts = resourceInformer<KubeObject>(
    api,
    SERVICE_ACCOUNTS,
    ns,
    informerOpts('serviceaccounts'),
  );
  const informers = [agents, policies, providers, serviceAccounts] as unknown as Informer<KubeObject>[];

  const common = {
    status,
    recorder,
    clock,
    logger: log,
    concurrency: opts.concurrency,
    metrics: opts.metrics,
  };
  const controllers: Controller[] = [
    agentIdentityController({ ...common, agents, serviceAccounts }),
    credentialProviderController({
      ...common,
      providers,
      readSecret: apiSecretReader(api),
      secretRecheckMs: opts.secretRecheckMs,
    }),
    accessPolicyController({ ...common, policies, agents }),
    ...(opts.extraControllers?.({ agents, providers, api, recorder, clock, logger: log }) ?? []),
  ];
  // An extra controller may watch an informer of its own: run it with the others,
  // or that controller would wait for its sync forever.
  for (const c of controllers)
    for (const i of c.watchedInformers()) if (!informers.includes(i)) informers.push(i);

  let leading = false;
  let transitions: Promise<void> = Promise.resolve();
  let startAbort = new AbortController();
  const setLeading = (want: boolean): Promise<void> => {
    if (!want) startAbort.abort(); // a start still waiting for caches gives up at once
    transitions = transitions.then(async () => {
      if (want === leading) return;
      if (want) {
        startAbort = new AbortController();
        leading = true;
        log.info('starting controllers');
        await Promise.all(controllers.map((c) => c.start(startAbort.signal)));
      } else {
        leading = false;
        log.info('stopping controllers');
        await Promise.all(controllers.map((c) => c.stop(10_000)));
      }
      try {
        opts.onLeadershipChange?.(want);
      } catch (err) {
        log.error({ err: describeError(err) }, 'onLeadershipChange threw');
      }
    });
    return transitions;
  };

  for (const i of informers) i.start();

  let elector: LeaderElector | undefined;
  if (opts.leaderElection === false) {
    void setLeading(true);
  } else {
    elector = new LeaderElector({
      api,
      namespace: opts.leaseNamespace ?? ns ?? 'warden-system',
      name: opts.leaseName ?? LEADER_LEASE_NAME,
      identity,
      logger: log,
      clock,
      leaseDurationMs: opts.leaseDurationMs,
      renewPeriodMs: opts.renewPeriodMs,
      retryPeriodMs: opts.retryPeriodMs,
      // Do not await the transition: the elector must keep renewing while caches sync.
      onStartedLeading: () => {
        void setLeading(true);
      },
      onStoppedLeading: () => {
        void setLeading(false);
      },
    });
    elector.start();
  }

  let stopped: Promise<void> | undefined;
  return {
    identity,
    controllers,
    isLeader: () => leading,
    async whenIdle() {
      await transitions;
      await Promise.all(controllers.map((c) => c.whenIdle()));
    },
    stop(deadlineMs = 10_000) {
      stopped ??= (async () => {
        log.info('operator stopping');
        // Controllers first (drain), then give up the Lease so another replica takes over at once.
        startAbort.abort();
        transitions = transitions.then(async () => {
          if (leading) {
            leading = false;
            await Promise.all(controllers.map((c) => c.stop(deadlineMs)));
            opts.onLeadershipChange?.(false);
          }
        });
        await transitions;
        await elector?.stop();
        await Promise.all(informers.map((i) => i.stop()));
        if (recorder instanceof ApiEventRecorder) await recorder.flush();
        log.info('operator stopped');
      })();
      return stopped;
    },
  };
}
