/**
 * CredentialProvider status.issuedCount: how many credentials the authority issued for a provider,
 * fed by the issuance path (/v1/credentials, after a credential is minted or handed out).
 *
 * Bounded write rate, as the AgentIdentity decision counters (decision-stats.ts): counts
 * accumulate in memory and each provider's status is written at most once per `minIntervalMs`
 * (default 2 s) with the current count plus what accumulated, merge-patched WITHOUT a
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
import { ApiError, type KubeApi, resourcePath } from '../kube/kube.js';
import { STATS_FIELD_MANAGER } from './decision-stats.js';

const PROVIDER_REF = { group: GROUP, version: VERSION, plural: PLURAL.CredentialProvider };

/** One credential issued for a CredentialProvider. */
export interface Issued {
  namespace: string;
  provider: string;
}

export interface IssuanceStatsOptions {
  api: KubeApi;
  log: Logger;
  /** Minimum time between two status writes of one provider. Default 2 s. */
  minIntervalMs?: number;
  now?: () => number;
}

interface ProviderState {
  pending: number;
  lastWrite: number;
  writing: boolean;
}

/** Pure: the status patch from the current count plus what accumulated. */
export function issuedPatch(current: number | undefined, pending: number): { issuedCount: number } {
  return { issuedCount: (current ?? 0) + pending };
}

export class IssuanceStats {
  private readonly providers = new Map<string, ProviderState>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly minInterval: number;
  /** Status writes done and failed (tests, metrics). */
  readonly counters = { writes: 0, failures: 0 };

  constructor(private readonly opts: IssuanceStatsOptions) {
    this.now = opts.now ?? Date.now;
    this.minInterval = opts.minIntervalMs ?? 2_000;
  }

  issued(i: Issued): void {
    const key = `${i.namespace}/${i.provider}`;
    const st = this.providers.get(key) ?? { pending: 0, lastWrite: Number.NEGATIVE_INFINITY, writing: false };
    st.pending++;
    this.providers.set(key, st);
  }

  start(intervalMs = 500): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is pending (ignoring the rate bound). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush(true);
  }

  /** Writes every provider with a pending count whose interval has passed. */
  async flush(force = false): Promise<void> {
    const now = this.now();
    // Forget providers idle for a whole interval (the next credential may then be written at once).
    for (const [key, st] of this.providers)
      if (st.pending === 0 && !st.writing && now - st.lastWrite >= this.minInterval)
        this.providers.delete(key);
    const due = [...this.providers.entries()].filter(
      ([, st]) => st.pending > 0 && !st.writing && (force || now - st.lastWrite >= this.minInterval),
    );
    await Promise.all(due.map(([key, st]) => this.write(key, st)));
  }

  private async write(key: string, st: ProviderState): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const pending = st.pending;
    st.pending = 0;
    st.writing = true;
    st.lastWrite = this.now();
    try {
      const obj = await this.opts.api.request<CredentialProvider>(
        'GET',
        resourcePath(PROVIDER_REF, namespace, name),
      );
      await this.opts.api.request('PATCH', resourcePath(PROVIDER_REF, namespace, name, 'status'), {
        body: { status: issuedPatch(obj.status?.issuedCount, pending) },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: STATS_FIELD_MANAGER },
      });
      this.counters.writes++;
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) {
        this.providers.delete(key); // the provider is gone
        return;
      }
      this.counters.failures++;
      st.pending += pending; // kept for the next attempt
      this.opts.log.warn(
        { provider: key, err: err instanceof Error ? err.message : String(err) },
        'issued-credential counter: status write failed; will retry',
      );
    } finally {
      st.writing = false;
    }
  }
}
