/**
 * AgentIdentity decision counters (status.decisions, status.lastSeen, status.lastAttestation), the
 * count of audit entries the audit writer had to drop (status.audit.dropped) and denial Events, fed
 * by the brokers' audit events (POST /v1/audit) and the audit writer. It is the one writer of these
 * status fields, under its own field manager (docs/conventions.md §5).
 *
 * Bounded write rate (rate-bounded-status.ts): counts accumulate in memory and each agent's
 * status is written at most once per `minIntervalMs` (default 2 s), however many decisions arrive. A write reads the agent's
 * current counters and merge-patches /status with the sums, WITHOUT a resourceVersion
 * precondition, so it never fights the reconcilers over the object (they own other status
 * fields). Across several authority replicas two writes may interleave and lose an increment:
 * the counters are a dashboard; the AuditRecords are the exact record.
 *
 * Denials also become Warning Events on the AgentIdentity, one series per denial reason, through
 * the rate-limited, aggregating recorder, so a denial storm costs a few API writes.
 */
import type { Logger } from 'pino';
import type { AgentIdentity } from '../core/api/index.js';
import { API_VERSION, GROUP, PLURAL, VERSION } from '../core/constants.js';
import type { EventRecorder } from '../kube/events.js';
import { type KubeApi, resourcePath } from '../kube/kube.js';
import type { StatusWriter } from '../kube/status.js';
import type { AuditSubject, BrokerEvent, BrokerEventSink } from './audit-endpoint.js';
import { RateBoundedStatus } from './rate-bounded-status.js';

const AGENT_REF = { group: GROUP, version: VERSION, plural: PLURAL.AgentIdentity };

/** What one agent accumulated since its last write. */
export interface PendingStats {
  allowed: number;
  denied: number;
  lastDecision?: 'Allow' | 'Deny';
  lastDecisionTime?: string;
  lastDenialReason?: string;
  lastSeen?: string;
  lastAttestation?: LastAttestation;
  /** Audit entries of this agent the audit writer dropped (buffer full). */
  dropped?: number;
}

/** AgentIdentity status.lastAttestation. */
export interface LastAttestation {
  pod: string;
  podUID: string;
  time: string;
}

export interface DecisionsStatus {
  allowed?: number;
  denied?: number;
  lastDecision?: 'Allow' | 'Deny';
  lastDecisionTime?: string;
  lastDenialReason?: string;
}

/** Pure: folds events into an agent's pending stats. */
export function accumulate(p: PendingStats, events: readonly BrokerEvent[]): PendingStats {
  const out = { ...p };
  for (const { entry, reason } of events) {
    if (!out.lastSeen || entry.time > out.lastSeen) out.lastSeen = entry.time;
    if (entry.kind !== 'Decision') continue;
    if (entry.decision === 'Allow') out.allowed++;
    else out.denied++;
    if (!out.lastDecisionTime || entry.time >= out.lastDecisionTime) {
      out.lastDecisionTime = entry.time;
      out.lastDecision = entry.decision;
    }
    if (entry.decision === 'Deny') {
      const why = reason ?? entry.reasons?.[0]?.condition ?? 'Denied';
      const msg = entry.message ?? entry.reasons?.[0]?.message;
      out.lastDenialReason = (msg ? (msg.startsWith(why) ? msg : `${why}: ${msg}`) : why).slice(0, 1024);
    }
  }
  return out;
}

/** Pure: the status patch from the current counters plus what accumulated. */
export function statusPatch(
  current: DecisionsStatus | undefined,
  p: PendingStats,
  currentDropped = 0,
): {
  decisions?: DecisionsStatus;
  lastSeen?: string;
  lastAttestation?: LastAttestation;
  audit?: { dropped: number };
} {
  const dropped = p.dropped ? { audit: { dropped: currentDropped + p.dropped } } : {};
  // Only a drop to report: leave the decision counters as they are (absent stays absent).
  if (p.dropped && onlyDropped(p)) return dropped;
  const decisions: DecisionsStatus = {
    allowed: (current?.allowed ?? 0) + p.allowed,
    denied: (current?.denied ?? 0) + p.denied,
  };
  const last =
    p.lastDecisionTime && (!current?.lastDecisionTime || p.lastDecisionTime >= current.lastDecisionTime);
  if (last) {
    decisions.lastDecision = p.lastDecision;
    decisions.lastDecisionTime = p.lastDecisionTime;
  }
  if (p.lastDenialReason) decisions.lastDenialReason = p.lastDenialReason;
  return {
    decisions,
    ...(p.lastSeen ? { lastSeen: p.lastSeen } : {}),
    ...(p.lastAttestation ? { lastAttestation: p.lastAttestation } : {}),
    ...dropped,
  };
}

function onlyDropped(p: PendingStats): boolean {
  return (
    p.allowed === 0 &&
    p.denied === 0 &&
    !p.lastDecisionTime &&
    !p.lastDenialReason &&
    !p.lastSeen &&
    !p.lastAttestation
  );
}

export interface DecisionStatsOptions {
  /** Reads the agent the counters add to. */
  api: KubeApi;
  /** status.decisions' writer (field manager STATS_FIELD_MANAGER, its owner). */
  status: StatusWriter;
  log: Logger;
  recorder?: EventRecorder;
  /** Minimum time between two status writes of one agent. Default 2 s. */
  minIntervalMs?: number;
  now?: () => number;
}

const empty = (): PendingStats => ({ allowed: 0, denied: 0 });

export class DecisionStats implements BrokerEventSink {
  private readonly bound: RateBoundedStatus<PendingStats>;

  constructor(private readonly opts: DecisionStatsOptions) {
    this.bound = new RateBoundedStatus<PendingStats>({
      empty,
      isEmpty: (p) => p.allowed === 0 && p.denied === 0 && !p.lastSeen && !p.lastAttestation && !p.dropped,
      // What failed, merged with what arrived meanwhile: counts add up, the newer "last" wins.
      merge: (failed, arrived) => ({
        ...arrived,
        allowed: arrived.allowed + failed.allowed,
        denied: arrived.denied + failed.denied,
        lastDecision: arrived.lastDecision ?? failed.lastDecision,
        lastDecisionTime: arrived.lastDecisionTime ?? failed.lastDecisionTime,
        lastDenialReason: arrived.lastDenialReason ?? failed.lastDenialReason,
        lastSeen: arrived.lastSeen ?? failed.lastSeen,
        lastAttestation: arrived.lastAttestation ?? failed.lastAttestation,
        dropped: (arrived.dropped ?? 0) + (failed.dropped ?? 0),
      }),
      write: async (namespace, name, pending) => {
        const obj = await opts.api.request<AgentIdentity>('GET', resourcePath(AGENT_REF, namespace, name));
        // Added to what was read, without a resourceVersion precondition (as before the owner check:
        // a 409 would only delay the counts); the field has no other writer (core/status-owners.ts).
        await opts.status.overwrite(
          AGENT_REF,
          obj,
          statusPatch(
            obj.status?.decisions as DecisionsStatus | undefined,
            pending,
            obj.status?.audit?.dropped ?? 0,
          ),
        );
      },
      log: opts.log,
      what: 'decision counters',
      keyField: 'agent',
      minIntervalMs: opts.minIntervalMs,
      now: opts.now,
    });
  }

  /** Status writes done and failed (for tests, metrics and the benchmark). */
  get counters(): { writes: number; failures: number } {
    return this.bound.counters;
  }

  recordBrokerEvents(who: AuditSubject, events: readonly BrokerEvent[]): void {
    this.bound.update(who.namespace, who.agent, (p) => accumulate(p, events));
    if (!this.opts.recorder) return;
    const regarding = {
      apiVersion: API_VERSION,
      kind: 'AgentIdentity',
      metadata: { name: who.agent, namespace: who.namespace },
    };
    for (const { entry, reason } of events) {
      if (entry.kind !== 'Decision' || entry.decision !== 'Deny') continue;
      const why = reason ?? 'Denied';
      // A stable note per reason, so the recorder aggregates the storm into one series.
      this.opts.recorder.record(regarding, {
        type: 'Warning',
        reason:
          why === 'AgentSuspended'
            ? 'SuspendedAgentCall'
            : why === 'AuditUnavailable'
              ? 'AuditUnavailable'
              : 'CallDenied',
        action: 'Authorize',
        note: `calls denied (${why}); see: kubectl warden audit -n ${who.namespace} --agent ${who.agent} --decision Deny`,
      });
    }
  }

  /** A pod of this agent attested: written as status.lastAttestation with the next status write. */
  attested(a: { namespace: string; agent: string; pod: string; podUID: string; time: string }): void {
    this.bound.update(a.namespace, a.agent, (p) => ({
      ...p,
      lastAttestation: { pod: a.pod, podUID: a.podUID, time: a.time },
    }));
  }

  start(intervalMs = 500): void {
    this.bound.start(intervalMs);
  }

  /**
   * The audit writer dropped `count` entries of this agent: added to status.audit.dropped with the
   * next status write (the Warning Event is the writer's, sent at once).
   */
  dropped(namespace: string, agent: string, count: number): void {
    if (count <= 0) return;
    this.bound.update(namespace, agent, (p) => ({ ...p, dropped: (p.dropped ?? 0) + count }));
  }

  /** Stops the timer and writes what is pending (ignoring the rate bound). */
  stop(): Promise<void> {
    return this.bound.stop();
  }

  /** Writes every agent that has something pending and whose interval has passed. */
  flush(force = false): Promise<void> {
    return this.bound.flush(force);
  }
}
