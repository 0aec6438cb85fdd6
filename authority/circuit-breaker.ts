/**
 * The circuit breaker (AgentIdentity spec.circuitBreaker): the authority counts each agent's
 * decisions over the last 60 s, across every broker of the agent that reports to this replica, and
 * when a threshold is exceeded either suspends the agent exactly as the kill switch does (Suspend)
 * or only tells (Alert).
 *
 * The channel is the brokers' audit batches (POST /v1/audit): every broker decision already
 * travels there, at most `flushIntervalMs` (1 s, broker/audit.ts) plus one round trip after it was
 * made, so the breaker costs the brokers nothing. A trip is evaluated as each batch arrives.
 *
 * Suspend = a merge patch of spec.suspended/suspendReason under the field manager
 * `warden-circuit-breaker` — the kill switch's own input: the policy stream denies every call at
 * once, the revocation reconciler revokes outstanding credentials and its requestedBy names this
 * field manager (and the chart's admission policy the controller's service account as the user).
 * The reason reads `CircuitBreakerTripped: <threshold> <limit> exceeded: <observed> … in the last
 * 60 s`. Either action also records status.circuitBreaker (lastTrip, trips), a Warning Event
 * CircuitBreakerTripped, a `CircuitBreaker` audit entry and warden_circuit_breaker_trips_total.
 *
 * Revive resets it: while an agent is suspended nothing is counted and its window is dropped, so a
 * revived agent starts from an empty window. Denials because the agent is suspended never count.
 *
 * Several replicas: each counts the batches it receives (brokers keep one connection to one
 * replica), so with the brokers of one agent spread over R replicas a storm trips after at most
 * R × the threshold in the worst case (docs/killswitch.md).
 *
 * Gather (events, the agent from the informer) → decide (observe/evaluate, pure) → act (patch,
 * status, Event, audit, metric).
 */
import type { Logger } from 'pino';
import type { AgentIdentity, AuditEntry, CircuitBreaker as CircuitBreakerSpec } from '../core/api/index.js';
import { CIRCUIT_BREAKER_FIELD_MANAGER } from '../core/constants.js';
import type { AuditSubject, BrokerEvent, BrokerEventSink, ControllerAuditSink } from '../core/ports/audit.js';
import type { EventRecorder } from '../kube/events.js';
import { type KubeApi, resourcePath } from '../kube/kube.js';
import { AGENT_IDENTITIES } from '../kube/resources.js';
import type { StatusWriter } from '../kube/status.js';

// The breaker's field manager is a constant with the other status owners (core/status-owners.ts).
export { CIRCUIT_BREAKER_FIELD_MANAGER };
/** Reason of the Event, first word of spec.suspendReason, and of the audit entry's message. */
export const CIRCUIT_BREAKER_TRIPPED = 'CircuitBreakerTripped';
/** The window the thresholds are per. */
export const WINDOW_MS = 60_000;
const BUCKET_MS = 1_000;
const BUCKETS = WINDOW_MS / BUCKET_MS;
/** Distinct tools remembered per agent (the CRD caps the threshold at 10 000). */
const MAX_TOOLS = 10_001;

export type Threshold = 'maxDenialsPerMinute' | 'maxCallsPerMinute' | 'maxDistinctToolsPerMinute';
export type BreakerAction = 'Suspend' | 'Alert';

/** One agent's last 60 s: per-second call and denial counts, and when each tool was last called. */
export interface RateWindow {
  /** BUCKETS slots indexed by second % BUCKETS; `second` tells whether a slot is current. */
  readonly buckets: { second: number; calls: number; denials: number }[];
  readonly tools: Map<string, number>;
}

export interface Trip {
  threshold: Threshold;
  limit: number;
  observed: number;
}

export function emptyWindow(): RateWindow {
  return {
    buckets: Array.from({ length: BUCKETS }, () => ({ second: -1, calls: 0, denials: 0 })),
    tools: new Map(),
  };
}

/** What counts: broker decisions, except denials of an agent that is already suspended. */
export function counts(e: BrokerEvent): boolean {
  return e.entry.kind === 'Decision' && e.reason !== 'AgentSuspended';
}

/**
 * What a "tool" is for maxDistinctToolsPerMinute: an MCP tool as `target/tool`; an HTTP or
 * PostgreSQL request as its target.
 */
export function toolKey(e: BrokerEvent): string | undefined {
  const { target, tool } = e.entry;
  if (tool) return `${target ?? ''}/${tool}`;
  return target;
}

/** How long after a revive decisions timed before it are still taken for pre-revive ones. */
export const REVIVE_GRACE_MS = 10_000;

/**
 * Pure: when spec.suspended last changed (metadata.managedFields, second resolution), or
 * undefined. For a revived agent that is the revive.
 */
export function suspendedChangedAt(agent: AgentIdentity): number | undefined {
  const fields = (agent.metadata as { managedFields?: ManagedField[] } | undefined)?.managedFields ?? [];
  let at: number | undefined;
  for (const m of fields) {
    if (m.subresource || !m.time || !m.fieldsV1?.['f:spec'] || !('f:suspended' in m.fieldsV1['f:spec']))
      continue;
    const t = Date.parse(m.time);
    if (Number.isFinite(t) && (at === undefined || t > at)) at = t;
  }
  return at;
}

interface ManagedField {
  time?: string;
  subresource?: string;
  fieldsV1?: { 'f:spec'?: Record<string, unknown> };
}

/**
 * Pure: the events that count for an agent revived at `revivedAt`: brokers ship up to a second
 * late, so a batch made before the suspension can arrive after the revive — those decisions must
 * not trip the fresh window. Only for REVIVE_GRACE_MS after the revive (a broker's clock orders its
 * events but is not trusted beyond that).
 */
export function sinceRevive(
  events: readonly BrokerEvent[],
  revivedAt: number | undefined,
  nowMs: number,
): readonly BrokerEvent[] {
  if (revivedAt === undefined || nowMs - revivedAt >= REVIVE_GRACE_MS) return events;
  // managedFields times are whole seconds: anything in the revive's second counts.
  return events.filter((e) => !(Date.parse(e.entry.time) < revivedAt));
}

/** Pure (mutates `w`): adds events received at `nowMs`. */
export function observe(w: RateWindow, events: readonly BrokerEvent[], nowMs: number): void {
  const second = Math.floor(nowMs / BUCKET_MS);
  const slot = w.buckets[second % BUCKETS] as RateWindow['buckets'][number];
  if (slot.second !== second) {
    slot.second = second;
    slot.calls = 0;
    slot.denials = 0;
  }
  for (const e of events) {
    if (!counts(e)) continue;
    slot.calls++;
    if (e.entry.decision === 'Deny') slot.denials++;
    const key = toolKey(e);
    if (key === undefined) continue;
    // Re-inserted so the map is ordered by last use: the oldest go first when it is full.
    w.tools.delete(key);
    w.tools.set(key, nowMs);
    if (w.tools.size > MAX_TOOLS) w.tools.delete(w.tools.keys().next().value as string);
  }
}

/** Pure: calls, denials and distinct tools in the 60 s up to `nowMs`. */
export function rates(w: RateWindow, nowMs: number): { calls: number; denials: number; tools: number } {
  const second = Math.floor(nowMs / BUCKET_MS);
  let calls = 0;
  let denials = 0;
  for (const b of w.buckets) {
    if (b.second <= second - BUCKETS || b.second > second) continue;
    calls += b.calls;
    denials += b.denials;
  }
  for (const [k, at] of w.tools) {
    if (at > nowMs - WINDOW_MS) break; // ordered by last use: the rest are newer
    w.tools.delete(k);
  }
  return { calls, denials, tools: w.tools.size };
}

/** Pure: the first threshold the window exceeds (denials, then calls, then tools), or null. */
export function evaluate(cb: CircuitBreakerSpec, w: RateWindow, nowMs: number): Trip | null {
  const r = rates(w, nowMs);
  const checks: [Threshold, number | undefined, number][] = [
    ['maxDenialsPerMinute', cb.maxDenialsPerMinute, r.denials],
    ['maxCallsPerMinute', cb.maxCallsPerMinute, r.calls],
    ['maxDistinctToolsPerMinute', cb.maxDistinctToolsPerMinute, r.tools],
  ];
  for (const [threshold, limit, observed] of checks)
    if (limit !== undefined && observed > limit) return { threshold, limit, observed };
  return null;
}

const NOUN: Record<Threshold, string> = {
  maxDenialsPerMinute: 'denied calls',
  maxCallsPerMinute: 'calls',
  maxDistinctToolsPerMinute: 'distinct tools',
};

/** Pure: the reason written to spec.suspendReason, the Event and the audit entry. */
export function tripReason(t: Trip, action: BreakerAction): string {
  const what = `${CIRCUIT_BREAKER_TRIPPED}: ${t.threshold} ${t.limit} exceeded: ${t.observed} ${NOUN[t.threshold]} in the last 60 s`;
  return action === 'Suspend'
    ? `${what}; agent suspended by the Warden circuit breaker (revive: kubectl warden revive)`
    : `${what} (action Alert: the agent was not suspended)`;
}

export interface CircuitBreakerOptions {
  /** The agent as the shared cache has it (spec.circuitBreaker, spec.suspended). */
  agent(namespace: string, name: string): AgentIdentity | undefined;
  /** The spec.suspended patch of a Suspend trip. */
  api: KubeApi;
  /** status.circuitBreaker's writer: field manager CIRCUIT_BREAKER_FIELD_MANAGER, its owner. */
  status: StatusWriter;
  log: Logger;
  recorder?: EventRecorder | undefined;
  audit?: ControllerAuditSink | undefined;
  /** warden_circuit_breaker_trips_total; absent = no metric. */
  onTrip?: ((threshold: Threshold, action: BreakerAction) => void) | undefined;
  now?: () => number;
}

interface AgentState {
  window: RateWindow;
  /** A Suspend patch in flight or done: not again until the agent is seen suspended (or it failed). */
  suspending: boolean;
  /** metadata.generation our suspension produced: a newer one (a revive) starts a fresh window. */
  suspendedGeneration?: number | undefined;
  /** Alert: no new alert for the same threshold before this time. */
  quietUntil: Map<Threshold, number>;
  lastEvent: number;
}

export class CircuitBreaker implements BrokerEventSink {
  private readonly agents = new Map<string, AgentState>();
  private readonly now: () => number;
  private lastSweep = 0;
  /** Trips acted on and failed suspensions (tests, logs). */
  readonly counters = { trips: 0, failures: 0 };
  /**
   * When this process saw each agent revived (spec.suspended true → false in the shared cache), in
   * ms. managedFields times are whole seconds: a revive in the same second as the suspension would
   * otherwise let the denials the brokers made before they learned of the suspension count again.
   */
  private readonly revivedSeen = new Map<string, number>();

  constructor(private readonly o: CircuitBreakerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** An AgentIdentity update as the shared cache delivers it: notes a revive when it is seen. */
  agentUpdated(old: AgentIdentity, agent: AgentIdentity): void {
    if (old.spec?.suspended === true && agent.spec?.suspended !== true) {
      this.revivedSeen.set(`${agent.metadata?.namespace ?? ''}/${agent.metadata?.name ?? ''}`, this.now());
    }
  }

  recordBrokerEvents(who: AuditSubject, events: readonly BrokerEvent[]): void {
    const key = `${who.namespace}/${who.agent}`;
    const now = this.now();
    this.sweep(now);
    const agent = this.o.agent(who.namespace, who.agent);
    const cb = agent?.spec?.circuitBreaker;
    // No breaker, or suspended (revive starts from an empty window): nothing to count.
    if (!agent || !cb || agent.spec.suspended === true) {
      this.agents.delete(key);
      return;
    }
    let s = this.agents.get(key);
    // Suspended by us and revived before any decision reached us: a fresh window all the same.
    const gen = agent.metadata?.generation;
    if (s?.suspendedGeneration !== undefined && gen !== undefined && gen > s.suspendedGeneration)
      s = undefined;
    if (!s) {
      s = { window: emptyWindow(), suspending: false, quietUntil: new Map(), lastEvent: now };
      this.agents.set(key, s);
    }
    s.lastEvent = now;
    // The later of the two: the API server's record (whole seconds) and when this process saw it.
    const fromFields = suspendedChangedAt(agent);
    const seen = this.revivedSeen.get(key);
    const revivedAt =
      fromFields === undefined ? seen : seen === undefined ? fromFields : Math.max(fromFields, seen);
    observe(s.window, sinceRevive(events, revivedAt, now), now);
    const trip = evaluate(cb, s.window, now);
    if (!trip) return;
    const action: BreakerAction = cb.action ?? 'Suspend';
    if (action === 'Suspend') {
      if (s.suspending) return;
      s.suspending = true;
    } else {
      if ((s.quietUntil.get(trip.threshold) ?? 0) > now) return;
      s.quietUntil.set(trip.threshold, now + WINDOW_MS);
    }
    void this.act(agent, s, trip, action, now);
  }

  private async act(
    agent: AgentIdentity,
    s: AgentState,
    trip: Trip,
    action: BreakerAction,
    now: number,
  ): Promise<void> {
    const ns = agent.metadata?.namespace ?? '';
    const name = agent.metadata?.name ?? '';
    const reason = tripReason(trip, action);
    const time = new Date(now).toISOString();
    const log = this.o.log.child({ namespace: ns, agent: name, threshold: trip.threshold });
    if (action === 'Suspend') {
      try {
        const patched = await this.o.api.request<AgentIdentity>(
          'PATCH',
          resourcePath(AGENT_IDENTITIES, ns, name),
          {
            body: { spec: { suspended: true, suspendReason: reason.slice(0, 1024) } },
            contentType: 'application/merge-patch+json',
            query: { fieldManager: CIRCUIT_BREAKER_FIELD_MANAGER },
          },
        );
        s.suspendedGeneration = patched.metadata?.generation;
      } catch (err) {
        // Tried again with the next batch that still exceeds the threshold.
        s.suspending = false;
        this.counters.failures++;
        log.error(
          { err: err instanceof Error ? err.message : String(err) },
          'circuit breaker tripped but could not suspend the agent; will retry with the next decisions',
        );
        return;
      }
    }
    this.counters.trips++;
    this.o.onTrip?.(trip.threshold, action);
    log.warn({ limit: trip.limit, observed: trip.observed, action }, 'circuit breaker tripped');
    this.o.recorder?.record(agent, {
      type: 'Warning',
      reason: CIRCUIT_BREAKER_TRIPPED,
      action,
      note: reason.slice(0, 1024),
    });
    const entry: AuditEntry = {
      time,
      kind: 'CircuitBreaker',
      decision: action === 'Suspend' ? 'Deny' : 'Allow',
      user: CIRCUIT_BREAKER_FIELD_MANAGER,
      message: reason.slice(0, 1024),
    };
    this.o.audit?.recordEntry(ns, name, entry);
    const trips = (agent.status?.circuitBreaker?.trips ?? 0) + 1;
    try {
      // Without a resourceVersion precondition: the trip must land whatever else changed on the
      // agent meanwhile (our own suspension above, for one), and status.circuitBreaker has no other
      // writer (core/status-owners.ts) whose write this could lose.
      await this.o.status.overwrite(AGENT_IDENTITIES, agent, {
        circuitBreaker: { trips, lastTrip: { time, ...trip, action } },
      });
    } catch (err) {
      // The Event, the audit entry and (for Suspend) spec.suspendReason already tell the trip.
      log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'could not record the trip in status.circuitBreaker',
      );
    }
  }

  /** Forgets agents that reported nothing for a whole window (keeps the map to active agents). */
  private sweep(now: number): void {
    if (now - this.lastSweep < WINDOW_MS) return;
    this.lastSweep = now;
    for (const [k, s] of this.agents) if (now - s.lastEvent >= WINDOW_MS) this.agents.delete(k);
    for (const [k, at] of this.revivedSeen) if (now - at >= REVIVE_GRACE_MS) this.revivedSeen.delete(k);
  }
}
