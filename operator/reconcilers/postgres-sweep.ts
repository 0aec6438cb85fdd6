/**
 * PostgreSQL role sweep: drops the temporary login roles the authority created for a PostgreSQL
 * CredentialProvider once they are past VALID UNTIL, ending their sessions first (revoked roles
 * stay NOLOGIN until then, so a re-run revocation still counts them). VALID UNTIL alone stops new
 * logins but leaves the role — and any open session — in place; this is what makes a temporary
 * role actually disappear after its TTL.
 *
 * Keyed by CredentialProvider (leader only, so two replicas never sweep the same database at
 * once); each PostgreSQL provider is swept every `intervalMs`. An unreachable database is a
 * Warning Event and a retry after `retryMs` — roles past VALID UNTIL cannot log in meanwhile.
 */
import type { Logger } from 'pino';
import type { CredentialProvider } from '../../core/api/index.js';
import type { MintProvider, SecretsReader, SweepResult } from '../../core/ports/credentials.js';
import type { Clock } from '../../kube/clock.js';
import {
  Controller,
  type ControllerMetrics,
  type ObjectKey,
  type ReconcileFn,
} from '../../kube/controller.js';
import type { EventRecorder } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';

export const SWEEP_REASON = {
  RolesDropped: 'ExpiredRolesDropped',
  SweepFailed: 'RoleSweepFailed',
} as const;

export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

export interface RoleSweeper {
  sweepExpired(provider: MintProvider, secrets: SecretsReader): Promise<SweepResult>;
}

export interface PostgresSweepDeps {
  providers: Informer<CredentialProvider>;
  sweeper: RoleSweeper;
  secrets: SecretsReader;
  recorder: EventRecorder;
  /** How often each PostgreSQL provider is swept. */
  intervalMs?: number;
  /** Retry delay after a failed sweep (database or Secret unavailable). */
  retryMs?: number;
}

/** Pure: the Event (if any) a sweep result deserves. Role names are not secrets; passwords never reach here. */
export function sweepEvent(
  result: SweepResult,
): { type: 'Normal' | 'Warning'; reason: string; note: string } | null {
  if (result.failed.length > 0) {
    const first = result.failed[0]!;
    return {
      type: 'Warning',
      reason: SWEEP_REASON.SweepFailed,
      note: `could not drop ${result.failed.length} expired role(s), e.g. ${first.role}: ${first.message}`.slice(
        0,
        1024,
      ),
    };
  }
  if (result.dropped.length > 0) {
    return {
      type: 'Normal',
      reason: SWEEP_REASON.RolesDropped,
      note: `dropped ${result.dropped.length} expired temporary role(s)`,
    };
  }
  return null;
}

export function reconcilePostgresSweep(deps: PostgresSweepDeps): ReconcileFn {
  const interval = deps.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  const retry = deps.retryMs ?? Math.min(interval, 15_000);
  return async (key: ObjectKey, ctx) => {
    const cp = deps.providers.get(key.name, key.namespace);
    if (cp?.spec.type !== 'PostgreSQL' || !cp.spec.postgresql) return;
    const provider: MintProvider = { name: key.name, namespace: key.namespace, spec: cp.spec };
    let result: SweepResult;
    try {
      result = await deps.sweeper.sweepExpired(provider, deps.secrets);
    } catch (err) {
      // MintError messages name the provider, host and admin user — never the password.
      const message = err instanceof Error ? err.message : String(err);
      ctx.logger.warn({ provider: `${key.namespace}/${key.name}`, error: message }, 'role sweep failed');
      deps.recorder.record(cp, {
        type: 'Warning',
        reason: SWEEP_REASON.SweepFailed,
        action: 'Sweep',
        note: `role sweep failed, retrying: ${message}`.slice(0, 1024),
      });
      return { requeueAfter: retry };
    }
    const event = sweepEvent(result);
    if (event) {
      ctx.logger.info(
        {
          provider: `${key.namespace}/${key.name}`,
          dropped: result.dropped.length,
          failed: result.failed.length,
        },
        'expired postgresql roles swept',
      );
      deps.recorder.record(cp, { ...event, action: 'Sweep' });
    }
    return { requeueAfter: interval };
  };
}

export function postgresSweepController(
  deps: PostgresSweepDeps & { logger: Logger; clock?: Clock; metrics?: ControllerMetrics },
): Controller {
  return new Controller({
    name: 'postgres-sweep',
    reconcile: reconcilePostgresSweep(deps),
    logger: deps.logger,
    clock: deps.clock,
    // One database at a time: the sweep holds an admin connection for its duration.
    concurrency: 1,
    metrics: deps.metrics,
  }).watchPrimary(deps.providers);
}
