/**
 * CredentialProvider status.issuedCount: how many credentials the authority issued for a provider,
 * fed by the issuance path (/v1/credentials, after a credential is minted or handed out).
 *
 * Bounded write rate (rate-bounded-status.ts, shared with the AgentIdentity decision counters):
 * counts accumulate in memory and each provider's status is written at most once per
 * `minIntervalMs` (default 2 s) with the current count plus what accumulated, merge-patched WITHOUT a
 * resourceVersion precondition so it never fights the CredentialProvider reconciler (which owns
 * the conditions). Two replicas may interleave and lose an increment: the count is a dashboard;
 * the AuditRecords (credentialId on each Allow) are the exact record.
 *
 * There is deliberately no "active credentials" count: no replica knows what the others issued,
 * Warden JWTs are stateless (revoked by rule, not by list) and upstream tokens expire on their
 * own, so a number would be a guess shown as a fact. `kubectl warden status` bounds what may be
 * live per agent from the audit trail instead.
 */
import type { Logger } from 'pino';
import type { CredentialProvider } from '../core/api/index.js';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import { type KubeApi, resourcePath } from '../kube/kube.js';
import type { StatusWriter } from '../kube/status.js';
import { RateBoundedStatus } from './rate-bounded-status.js';

const PROVIDER_REF = { group: GROUP, version: VERSION, plural: PLURAL.CredentialProvider };

/** One credential issued for a CredentialProvider. */
export interface Issued {
  namespace: string;
  provider: string;
}

export interface IssuanceStatsOptions {
  /** Reads the provider the count adds to. */
  api: KubeApi;
  /** status.issuedCount's writer (field manager STATS_FIELD_MANAGER, its owner). */
  status: StatusWriter;
  log: Logger;
  /** Minimum time between two status writes of one provider. Default 2 s. */
  minIntervalMs?: number;
  now?: () => number;
}

/** Pure: the status patch from the current count plus what accumulated. */
export function issuedPatch(current: number | undefined, pending: number): { issuedCount: number } {
  return { issuedCount: (current ?? 0) + pending };
}

export class IssuanceStats {
  private readonly bound: RateBoundedStatus<number>;

  constructor(opts: IssuanceStatsOptions) {
    this.bound = new RateBoundedStatus<number>({
      empty: () => 0,
      isEmpty: (n) => n === 0,
      merge: (failed, arrived) => failed + arrived,
      write: async (namespace, name, pending) => {
        const obj = await opts.api.request<CredentialProvider>(
          'GET',
          resourcePath(PROVIDER_REF, namespace, name),
        );
        // Added to what was read, without a resourceVersion precondition (as before the owner check:
        // a 409 would only delay the counts); the field has no other writer (core/status-owners.ts).
        await opts.status.overwrite(PROVIDER_REF, obj, issuedPatch(obj.status?.issuedCount, pending));
      },
      log: opts.log,
      what: 'issued-credential counter',
      keyField: 'provider',
      minIntervalMs: opts.minIntervalMs,
      now: opts.now,
    });
  }

  /** Status writes done and failed (tests, metrics). */
  get counters(): { writes: number; failures: number } {
    return this.bound.counters;
  }

  issued(i: Issued): void {
    this.bound.update(i.namespace, i.provider, (n) => n + 1);
  }

  start(intervalMs = 500): void {
    this.bound.start(intervalMs);
  }

  /** Stops the timer and writes what is pending (ignoring the rate bound). */
  stop(): Promise<void> {
    return this.bound.stop();
  }

  /** Writes every provider with a pending count whose interval has passed. */
  flush(force = false): Promise<void> {
    return this.bound.flush(force);
  }
}
