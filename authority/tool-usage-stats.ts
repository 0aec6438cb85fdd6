/**
 * AgentIdentity status.usage: MCP tool calls per tool, fed by the brokers' audit events (POST
 * /v1/audit). The one writer of that field, under its own field manager (docs/conventions.md §5).
 *
 * Bounded write rate (rate-bounded-status.ts): counts accumulate in memory and each agent's status
 * is written at most once per `minIntervalMs` (default 2 s), as a merge patch of status.usage
 * without a resourceVersion (the counters are a dashboard; the AuditRecords are the exact record).
 *
 * Bounded cardinality: tool names come from agents. The status keeps the TOP_TOOLS busiest tools
 * by calls and sums every other tool into otherTools; in memory, at most MAX_PENDING_TOOLS names
 * are kept per agent between writes, the rest counted as other at once. A tool that falls out of
 * the top is folded into otherTools and starts again from zero if it climbs back.
 */
import type { Logger } from 'pino';
import type { AgentIdentity } from '../core/api/index.js';
import { GROUP, PLURAL, USAGE_FIELD_MANAGER, VERSION } from '../core/constants.js';
import { type KubeApi, resourcePath } from '../kube/kube.js';
import type { StatusWriter } from '../kube/status.js';
import type { ToolCallMetrics } from '../observability/tool-call-metrics.js';
import type { AuditSubject, BrokerEvent, BrokerEventSink } from './audit-endpoint.js';
import { RateBoundedStatus } from './rate-bounded-status.js';

const AGENT_REF = { group: GROUP, version: VERSION, plural: PLURAL.AgentIdentity };

export { USAGE_FIELD_MANAGER };
/** Tools named in status.usage.tools (the CRD's maxItems). */
export const TOP_TOOLS = 10;
/** Distinct tool names kept in memory per agent between two writes. */
export const MAX_PENDING_TOOLS = 256;

export interface Counts {
  calls: number;
  denied: number;
}

/** What one agent accumulated since its last write. */
export interface PendingUsage {
  readonly tools: Map<string, Counts>;
  other: Counts;
}

/** AgentIdentity status.usage. */
export interface ToolUsageStatus {
  since?: string;
  tools?: Array<{ name: string; calls: number; denied?: number }>;
  otherTools?: { calls?: number; denied?: number };
}

const emptyPending = (): PendingUsage => ({ tools: new Map(), other: { calls: 0, denied: 0 } });

function add(into: Counts, calls: number, denied: number): void {
  into.calls += calls;
  into.denied += denied;
}

/** Pure: folds broker events into an agent's pending counts (tool calls only). */
export function accumulateUsage(p: PendingUsage, events: readonly BrokerEvent[]): PendingUsage {
  for (const { entry } of events) {
    if (entry.kind !== 'Decision' || !entry.tool) continue;
    const denied = entry.decision === 'Deny' ? 1 : 0;
    const counts = p.tools.get(entry.tool);
    if (counts) add(counts, 1, denied);
    else if (p.tools.size < MAX_PENDING_TOOLS) p.tools.set(entry.tool, { calls: 1, denied });
    else add(p.other, 1, denied);
  }
  return p;
}

/** Pure: the current status.usage plus what accumulated → the new status.usage (top N + other). */
export function usagePatch(
  current: ToolUsageStatus | undefined,
  p: PendingUsage,
  now: string,
  top = TOP_TOOLS,
): ToolUsageStatus {
  const all = new Map<string, Counts>();
  for (const t of current?.tools ?? []) all.set(t.name, { calls: t.calls, denied: t.denied ?? 0 });
  for (const [name, c] of p.tools) {
    const sum = all.get(name);
    if (sum) add(sum, c.calls, c.denied);
    else all.set(name, { ...c });
  }
  const other: Counts = {
    calls: (current?.otherTools?.calls ?? 0) + p.other.calls,
    denied: (current?.otherTools?.denied ?? 0) + p.other.denied,
  };
  const ranked = [...all.entries()].sort((a, b) => b[1].calls - a[1].calls || (a[0] < b[0] ? -1 : 1));
  for (const [, c] of ranked.slice(top)) add(other, c.calls, c.denied);
  return {
    since: current?.since ?? now,
    tools: ranked.slice(0, top).map(([name, c]) => ({ name, calls: c.calls, denied: c.denied })),
    ...(other.calls > 0 ? { otherTools: other } : {}),
  };
}

export interface ToolUsageStatsOptions {
  /** Reads the agent the counters add to. */
  api: KubeApi;
  /** status.usage's writer (field manager USAGE_FIELD_MANAGER, its owner). */
  status: StatusWriter;
  log: Logger;
  /** Also count each tool call in warden_tool_calls_total (opt-in: --metrics-tool-calls). */
  metrics?: ToolCallMetrics;
  /** Minimum time between two status writes of one agent. Default 2 s. */
  minIntervalMs?: number;
  now?: () => number;
}

export class ToolUsageStats implements BrokerEventSink {
  private readonly bound: RateBoundedStatus<PendingUsage>;
  private readonly metrics: ToolCallMetrics | undefined;

  constructor(opts: ToolUsageStatsOptions) {
    this.metrics = opts.metrics;
    const now = opts.now ?? Date.now;
    this.bound = new RateBoundedStatus<PendingUsage>({
      empty: emptyPending,
      isEmpty: (p) => p.tools.size === 0 && p.other.calls === 0,
      merge: (failed, arrived) => {
        for (const [name, c] of arrived.tools) {
          const f = failed.tools.get(name);
          if (f) add(f, c.calls, c.denied);
          else if (failed.tools.size < MAX_PENDING_TOOLS) failed.tools.set(name, { ...c });
          else add(failed.other, c.calls, c.denied);
        }
        add(failed.other, arrived.other.calls, arrived.other.denied);
        return failed;
      },
      write: async (namespace, name, pending) => {
        const obj = await opts.api.request<AgentIdentity>('GET', resourcePath(AGENT_REF, namespace, name));
        const usage = usagePatch(
          obj.status?.usage as ToolUsageStatus | undefined,
          pending,
          new Date(now()).toISOString(),
        );
        // Added to what was read, without a resourceVersion precondition (as before the owner check:
        // a 409 would only delay the counts); the field has no other writer (core/status-owners.ts).
        await opts.status.overwrite(AGENT_REF, obj, { usage });
      },
      log: opts.log,
      what: 'tool usage counters',
      keyField: 'agent',
      minIntervalMs: opts.minIntervalMs,
      now,
    });
  }

  get counters(): { writes: number; failures: number } {
    return this.bound.counters;
  }

  recordBrokerEvents(who: AuditSubject, events: readonly BrokerEvent[]): void {
    if (!events.some((e) => e.entry.kind === 'Decision' && e.entry.tool)) return;
    this.bound.update(who.namespace, who.agent, (p) => accumulateUsage(p, events));
    if (!this.metrics) return;
    for (const { entry } of events) {
      if (entry.kind === 'Decision' && entry.tool && entry.decision)
        this.metrics.toolCall(who.namespace, who.agent, entry.tool, entry.decision);
    }
  }

  start(intervalMs = 500): void {
    this.bound.start(intervalMs);
  }

  stop(): Promise<void> {
    return this.bound.stop();
  }

  flush(force = false): Promise<void> {
    return this.bound.flush(force);
  }
}
