/**
 * Leader election on a coordination.k8s.io/v1 Lease.
 *
 * The decision (acquire / renew / wait / lost) is a pure function of the Lease
 * as last read, when this replica first saw that version of it, the time and our
 * identity; LeaderElector does the reads and writes around it.
 *
 * Expiry is judged on the local clock from when we first observed the current
 * holder+renewTime (as client-go does), not from the renewTime written by another
 * machine, so clock skew between replicas does not cause early takeovers.
 * Writes carry the Lease's resourceVersion, so two replicas racing for a free
 * Lease cannot both win: the loser gets a 409 and waits.
 */
import type { Logger } from 'pino';
import { type Clock, microTime, realClock, sleep } from './clock.js';

export { microTime };

import { describeError, isConflict, isNotFound } from './errors.js';
import type { KubeApi } from './kube.js';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** What we know about the Lease record as another replica last wrote it. */
export interface Observation {
  holder: string;
  renewTime: string;
  /** Local time (ms) at which we first saw this holder+renewTime. */
  observedAt: number;
}

export type LeaderDecision =
  | { kind: 'acquire'; create: boolean; spec: LeaseSpec }
  | { kind: 'renew'; spec: LeaseSpec }
  | { kind: 'wait'; holder: string; expiresAt: number }
  | { kind: 'lost'; holder: string };

export interface ElectionTiming {
  /** How long a Lease is valid without renewal. */
  leaseDurationMs: number;
}

/** Update the observation: a new holder or renewTime restarts the local expiry clock. */
export function observe(
  prev: Observation | undefined,
  lease: Lease | undefined,
  now: number,
): Observation | undefined {
  if (!lease?.spec) return undefined;
  const holder = lease.spec.holderIdentity ?? '';
  const renewTime = lease.spec.renewTime ?? '';
  if (prev && prev.holder === holder && prev.renewTime === renewTime) return prev;
  return { holder, renewTime, observedAt: now };
}

/**
 * Decide what to do with the Lease. Pure.
 * - no Lease → create it as ours;
 * - ours → renew (even if we were not yet marked leader: a restart with the same identity);
 * - free (released, holder "") or expired → take it over;
 * - held by another, unexpired → wait, or `lost` if we believed we were the leader.
 */
export function decide(input: {
  lease: Lease | undefined;
  observation: Observation | undefined;
  now: number;
  identity: string;
  isLeader: boolean;
  timing: ElectionTiming;
}): LeaderDecision {
  const { lease, observation, now, identity, isLeader, timing } = input;
  const durationSeconds = Math.ceil(timing.leaseDurationMs / 1000);
  const fresh: LeaseSpec = {
    holderIdentity: identity,
    leaseDurationSeconds: durationSeconds,
    acquireTime: microTime(now),
    renewTime: microTime(now),
  };
  if (!lease?.spec)
    return { kind: 'acquire', create: lease === undefined, spec: { ...fresh, leaseTransitions: 0 } };
  const spec = lease.spec;
  const holder = spec.holderIdentity ?? '';
  if (holder === identity) {
    return {
      kind: 'renew',
      spec: { ...spec, leaseDurationSeconds: durationSeconds, renewTime: microTime(now) },
    };
  }
  const transitions = (spec.leaseTransitions ?? 0) + 1;
  if (holder === '')
    return { kind: 'acquire', create: false, spec: { ...fresh, leaseTransitions: transitions } };
  const durationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
  const observedAt = observation && observation.holder === holder ? observation.observedAt : now;
  const expiresAt = observedAt + durationMs;
  if (now >= expiresAt)
    return { kind: 'acquire', create: false, spec: { ...fresh, leaseTransitions: transitions } };
  if (isLeader) return { kind: 'lost', holder };
  return { kind: 'wait', holder, expiresAt };
}

/** A leader whose renewals keep failing must step down before its Lease can expire for others. */
export function renewDeadlinePassed(lastRenewedAt: number, now: number, renewDeadlineMs: number): boolean {
  return now - lastRenewedAt >= renewDeadlineMs;
}

/** The Lease released on graceful stop: no holder, so the next candidate takes it on its next try. */
export function releasedSpec(spec: LeaseSpec, now: number): LeaseSpec {
  return { ...spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(now) };
}

/**
 * Default timings. A crashed leader is replaced after at most leaseDuration +
 * retryPeriod (≈14 s); a gracefully stopped one after at most retryPeriod (it
 * releases the Lease). A leader that cannot renew for renewDeadline steps down,
 * leaving leaseDuration − renewDeadline (4 s) between its stop and anyone's start.
 */
export const LEADER_DEFAULTS = {
  leaseDurationMs: 12_000,
  renewPeriodMs: 2_000,
  retryPeriodMs: 2_000,
  renewDeadlineMs: 8_000,
} as const;

export interface LeaderElectorOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  clock?: Clock;
  /** Default 12 s. */
  leaseDurationMs?: number;
  /** How often the leader renews. Default 2 s. */
  renewPeriodMs?: number;
  /** How often a follower retries. Default 2 s. */
  retryPeriodMs?: number;
  /** A leader that has not renewed for this long steps down. Default 8 s (< lease duration). */
  renewDeadlineMs?: number;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
}

const LEASE_API = '/apis/coordination.k8s.io/v1';

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectorOptions, 'clock'>> & { clock: Clock };
  private leader = false;
  private observation: Observation | undefined;
  private lastRenewedAt = 0;
  private lastLease: Lease | undefined;
  private stopController = new AbortController();
  private loopDone: Promise<void> = Promise.resolve();
  private running = false;

  constructor(opts: LeaderElectorOptions) {
    // `??` per field, not a spread: callers pass `undefined` through for "default".
    this.o = {
      ...opts,
      clock: opts.clock ?? realClock,
      leaseDurationMs: opts.leaseDurationMs ?? LEADER_DEFAULTS.leaseDurationMs,
      renewPeriodMs: opts.renewPeriodMs ?? LEADER_DEFAULTS.renewPeriodMs,
      retryPeriodMs: opts.retryPeriodMs ?? LEADER_DEFAULTS.retryPeriodMs,
      renewDeadlineMs: opts.renewDeadlineMs ?? LEADER_DEFAULTS.renewDeadlineMs,
    };
  }

  isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopController = new AbortController();
    this.loopDone = this.loop(this.stopController.signal);
  }

  /** Stop campaigning; if leading, stop the controllers and release the Lease so another replica takes over at once. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopController.abort();
    await this.loopDone;
    if (this.leader) {
      await this.setLeader(false);
      await this.release();
    }
  }

  private get leasePath(): string {
    return `${LEASE_API}/namespaces/${encodeURIComponent(this.o.namespace)}/leases/${encodeURIComponent(this.o.name)}`;
  }

  private async loop(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      await this.tick();
      if (stop.aborted) break;
      await sleep(this.o.clock, this.leader ? this.o.renewPeriodMs : this.o.retryPeriodMs, stop);
    }
  }

  /** One round: read, decide, write. Errors never escape (the loop must keep going). */
  async tick(): Promise<void> {
    const now = this.o.clock.now();
    try {
      let lease: Lease | undefined;
      try {
        lease = await this.o.api.request<Lease>('GET', this.leasePath, { timeoutMs: 5_000 });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      this.lastLease = lease;
      this.observation = observe(this.observation, lease, now);
      const d = decide({
        lease,
        observation: this.observation,
        now,
        identity: this.o.identity,
        isLeader: this.leader,
        timing: { leaseDurationMs: this.o.leaseDurationMs },
      });
      switch (d.kind) {
        case 'acquire':
        case 'renew': {
          const body: Lease = {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: {
              name: this.o.name,
              namespace: this.o.namespace,
              ...(lease?.metadata?.resourceVersion
                ? { resourceVersion: lease.metadata.resourceVersion }
                : {}),
            },
            spec: d.spec,
          };
          const written =
            d.kind === 'acquire' && d.create
              ? await this.o.api.request<Lease>(
                  'POST',
                  `${LEASE_API}/namespaces/${this.o.namespace}/leases`,
                  {
                    body,
                    timeoutMs: 5_000,
                  },
                )
              : await this.o.api.request<Lease>('PUT', this.leasePath, { body, timeoutMs: 5_000 });
          this.lastLease = written;
          this.lastRenewedAt = now;
          if (!this.leader) {
            this.o.logger.info({ lease: this.o.name, identity: this.o.identity }, 'acquired leadership');
            await this.setLeader(true);
          }
          return;
        }
        case 'wait':
          return;
        case 'lost':
          this.o.logger.warn({ lease: this.o.name, holder: d.holder }, 'leadership lost to another replica');
          await this.setLeader(false);
          return;
      }
    } catch (err) {
      if (isConflict(err)) {
        // Someone else wrote the Lease between our read and write: they won this round.
        this.o.logger.debug({ lease: this.o.name }, 'lease write conflicted, will re-read');
      } else {
        this.o.logger.warn({ lease: this.o.name, err: describeError(err) }, 'lease read/write failed');
      }
      if (
        this.leader &&
        renewDeadlinePassed(this.lastRenewedAt, this.o.clock.now(), this.o.renewDeadlineMs)
      ) {
        this.o.logger.warn(
          { lease: this.o.name, renewDeadlineMs: this.o.renewDeadlineMs },
          'could not renew the lease in time, stepping down',
        );
        await this.setLeader(false);
      }
    }
  }

  private async setLeader(value: boolean): Promise<void> {
    if (this.leader === value) return;
    this.leader = value;
    try {
      if (value) await this.o.onStartedLeading();
      else await this.o.onStoppedLeading();
    } catch (err) {
      this.o.logger.error({ err: describeError(err) }, 'leadership callback failed');
    }
  }

  private async release(): Promise<void> {
    const lease = this.lastLease;
    if (!lease?.spec || lease.spec.holderIdentity !== this.o.identity) return;
    try {
      await this.o.api.request<Lease>('PUT', this.leasePath, {
        body: { ...lease, spec: releasedSpec(lease.spec, this.o.clock.now()) },
        timeoutMs: 5_000,
      });
      this.o.logger.info({ lease: this.o.name }, 'released leadership');
    } catch (err) {
      // Not fatal: the Lease then expires after its duration and another replica takes over.
      this.o.logger.warn({ lease: this.o.name, err: describeError(err) }, 'could not release the lease');
    }
  }
}
