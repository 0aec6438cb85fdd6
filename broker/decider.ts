/**
 * The broker's decision point: core/policy's decide()/couldAllowTool() over the current policy
 * snapshot, wrapped in the fail-closed checks only the broker can make (no snapshot yet, snapshot
 * stale, snapshot invalid, agent suspended, unknown target). Pure given its two injected sources:
 * the snapshot source and the clock.
 */
import type { AuditReplay } from '../core/api/index.js';
import { type ReplaySource, recordReplay } from '../core/audit/replay.js';
import { couldAllowTool, decide } from '../core/policy/decide.js';
import { decideSessionTraffic } from '../core/policy/session.js';
import type { AgentRefInput, ContextInput, Decision, UserInput } from '../core/policy/types.js';
import { BrokerDenyReason, DEFAULT_STALE_AFTER_MS } from './constants.js';
import {
  type CompiledSnapshot,
  type CompileSnapshotResult,
  compileSnapshot,
  type PolicySnapshot,
  type Provider,
} from './snapshot.js';

/** Where the decider reads the current snapshot from (the authority client, or a test/static source). */
export interface SnapshotSource {
  /** Latest validated snapshot, or null before the first one. */
  readonly snapshot: PolicySnapshot | null;
  /** Clock reading (same clock as the decider's `now`) of the last sign of life from the authority. */
  readonly lastHeard: number | null;
  /** Called after every new snapshot (the broker cuts in-flight work on suspension). Returns unsubscribe. */
  onChange?(listener: () => void): () => void;
}

/** One reason in a denial's JSON-RPC `data.reasons` and in audit entries. */
export interface DecisionReasonEntry {
  readonly policy: string | null;
  readonly rule: number | null;
  readonly condition: string | null;
  readonly message: string;
}

export interface BrokerDecision {
  readonly decision: 'Allow' | 'Deny';
  /** core/policy DecisionReason or a BrokerDenyReason. */
  readonly reason: string;
  readonly message: string;
  readonly reasons: readonly DecisionReasonEntry[];
  /** Deciding policy/rule (Allow: the rule whose credential settings apply). */
  readonly policy: string | null;
  readonly rule: number | null;
  readonly snapshotVersion: string | null;
  /**
   * What the policy engine was given and decided, scrubbed and bounded, for the audit entry's
   * replay data (core/audit/replay.ts). Only decisions the engine made carry it; a later refusal
   * of an allowed call keeps it (keepReplay) so replay compares with the engine's verdict.
   */
  readonly replay?: AuditReplay;
  /** QuotaExceeded: time until the limit's window resets (HTTP Retry-After, MCP error data, PostgreSQL hint). */
  readonly retryAfterMs?: number;
}

export interface DeciderOptions {
  /** Monotonic milliseconds (performance.now by default); the same clock the source stamps lastHeard with. */
  readonly now?: () => number;
  /** Wall clock for request.time. */
  readonly wallClock?: () => Date;
  readonly staleAfterMs?: number;
  /**
   * Providers known from configuration (`--provider`): only for targets the snapshot does not name.
   * The snapshot's CredentialProviders are the source of truth and win by name.
   */
  readonly providers?: readonly Provider[];
}

export type Gate =
  | { readonly ok: true; readonly snapshot: CompiledSnapshot; readonly provider: Provider }
  | { readonly ok: false; readonly decision: BrokerDecision };

export function brokerDeny(
  reason: string,
  message: string,
  snapshotVersion: string | null = null,
): BrokerDecision {
  return {
    decision: 'Deny',
    reason,
    message,
    reasons: [{ policy: null, rule: null, condition: null, message }],
    policy: null,
    rule: null,
    snapshotVersion,
  };
}

export function fromPolicyDecision(d: Decision, version: string): BrokerDecision {
  return {
    decision: d.decision,
    reason: d.reason,
    message: d.message,
    reasons: [{ policy: d.policy, rule: d.rule, condition: d.condition, message: d.message }],
    policy: d.policy,
    rule: d.rule,
    snapshotVersion: version,
  };
}

/** `d` carrying the replay data of the engine decision it replaces (a refusal after an Allow). */
export function keepReplay(d: BrokerDecision, from: BrokerDecision): BrokerDecision {
  return from.replay ? { ...d, replay: from.replay } : d;
}

/** The broker decision of an engine decision, with the replay data of what the engine saw. */
function engineDecision(d: Decision, version: string, source: ReplaySource): BrokerDecision {
  return {
    ...fromPolicyDecision(d, version),
    replay: recordReplay(source, { decision: d.decision, reason: d.reason }),
  };
}

function wrongProtocol(target: string, has: Provider['protocol'], wanted: Provider['protocol']): string {
  const hint =
    has === 'PostgreSQL'
      ? "connect through the broker's PostgreSQL endpoint instead"
      : `use the /${has === 'MCP' ? 'mcp' : 'http'}/ endpoint`;
  return `CredentialProvider '${target}' speaks ${has}, not ${wanted}; ${hint}`;
}

export class Decider {
  private readonly now: () => number;
  private readonly wallClock: () => Date;
  private readonly staleAfterMs: number;
  private readonly providers: readonly Provider[];
  private compiledFor: PolicySnapshot | null = null;
  private compiled: CompileSnapshotResult | null = null;

  constructor(
    private readonly source: SnapshotSource,
    opts: DeciderOptions = {},
  ) {
    this.now = opts.now ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? (() => new Date());
    this.staleAfterMs = opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.providers = opts.providers ?? [];
  }

  /** The compiled current snapshot (memoised per snapshot object), or why there is none usable. */
  /**
   * The agent's spec.audit.mode in the newest snapshot (also a stale one: the mode is what the
   * agent's owner asked for, whatever the freshness of the policies); BestEffort before any.
   */
  auditMode(): 'Required' | 'BestEffort' {
    return this.source.snapshot?.agent?.auditMode ?? 'BestEffort';
  }

  current(): { ok: true; snapshot: CompiledSnapshot } | { ok: false; decision: BrokerDecision } {
    const raw = this.source.snapshot;
    if (!raw) {
      return {
        ok: false,
        decision: brokerDeny(
          BrokerDenyReason.PolicySnapshotMissing,
          'no policy snapshot from the Warden authority yet; the broker denies everything until it has one',
        ),
      };
    }
    if (raw !== this.compiledFor) {
      this.compiled = compileSnapshot(raw, this.providers);
      this.compiledFor = raw;
    }
    const c = this.compiled!;
    if (!c.ok) {
      const reason = raw.agent
        ? BrokerDenyReason.PolicySnapshotInvalid
        : BrokerDenyReason.AgentIdentityMissing;
      return { ok: false, decision: brokerDeny(reason, c.message, raw.version) };
    }
    const heard = this.source.lastHeard;
    const age = heard === null ? Number.POSITIVE_INFINITY : this.now() - heard;
    if (age > this.staleAfterMs) {
      return {
        ok: false,
        decision: brokerDeny(
          BrokerDenyReason.PolicySnapshotStale,
          `policy snapshot ${raw.version} is stale: nothing heard from the Warden authority for ${Math.round(age / 1000)} s (limit ${Math.round(this.staleAfterMs / 1000)} s); check that the authority is reachable`,
          raw.version,
        ),
      };
    }
    return { ok: true, snapshot: c.snapshot };
  }

  /** Why the agent may not act at all right now (no/stale/invalid snapshot, suspension), or null. */
  blocked(): BrokerDecision | null {
    const cur = this.current();
    if (!cur.ok) return cur.decision;
    const snap = cur.snapshot;
    if (!snap.agent.suspended) return null;
    const why = snap.agent.suspendReason ? `: ${snap.agent.suspendReason}` : '';
    return brokerDeny(
      BrokerDenyReason.AgentSuspended,
      `agent ${snap.namespace}/${snap.agent.name} is suspended${why}`,
      snap.version,
    );
  }

  /** Snapshot present, fresh and valid; agent not suspended; target known with the expected protocol. */
  gate(target: string, protocol: Provider['protocol']): Gate {
    const blocked = this.blocked();
    if (blocked) return { ok: false, decision: blocked };
    const cur = this.current();
    if (!cur.ok) return cur;
    const snap = cur.snapshot;
    const provider = snap.providers.get(target);
    if (!provider || provider.protocol !== protocol) {
      return {
        ok: false,
        decision: brokerDeny(
          BrokerDenyReason.UnknownTarget,
          provider
            ? wrongProtocol(target, provider.protocol, protocol)
            : `no CredentialProvider '${target.slice(0, 64)}' in namespace ${snap.namespace} is known to this broker`,
          snap.version,
        ),
      };
    }
    return { ok: true, snapshot: snap, provider };
  }

  decideTool(
    target: string,
    tool: string,
    args: unknown,
    user: UserInput | null,
    context: ContextInput | null,
    chain?: readonly AgentRefInput[],
  ): BrokerDecision {
    const g = this.gate(target, 'MCP');
    if (!g.ok) return g.decision;
    const d = decide(g.snapshot.set, {
      user,
      request: {
        kind: 'mcp',
        target,
        tool,
        args: args ?? {},
        time: this.wallClock(),
        ...(chain ? { chain } : {}),
      },
      context,
    });
    return engineDecision(d, g.snapshot.version, { kind: 'mcp', args: args ?? {}, user, context });
  }

  decideHttp(
    target: string,
    method: string,
    path: string,
    user: UserInput | null,
    context: ContextInput | null,
    chain?: readonly AgentRefInput[],
  ): BrokerDecision {
    const g = this.gate(target, 'HTTP');
    if (!g.ok) return g.decision;
    const d = decide(g.snapshot.set, {
      user,
      request: { kind: 'http', target, method, path, time: this.wallClock(), ...(chain ? { chain } : {}) },
      context,
    });
    return engineDecision(d, g.snapshot.version, { kind: 'http', user, context });
  }

  /** A PostgreSQL session (CEL request.kind "postgresql"): rules with neither tools nor http apply. */
  decidePostgres(
    target: string,
    user: UserInput | null,
    context: ContextInput | null,
    chain?: readonly AgentRefInput[],
  ): BrokerDecision {
    const g = this.gate(target, 'PostgreSQL');
    if (!g.ok) return g.decision;
    const d = decide(g.snapshot.set, {
      user,
      request: { kind: 'postgresql', target, time: this.wallClock(), ...(chain ? { chain } : {}) },
      context,
    });
    return engineDecision(d, g.snapshot.version, { kind: 'postgresql', user, context });
  }

  /**
   * For MCP traffic that is not a tool call (initialize, tools/list, resources, prompts, ping, a GET
   * stream or DELETE): decided by core/policy decideSessionTraffic with the same user, context and
   * chain a tool call would carry — the allowing rule is the one whose credential the session gets,
   * so only a rule whose `when` holds for this caller may allow it. Policy has no resource/prompt
   * rules yet, so reaching the server at all is what policy must grant.
   */
  decideSession(
    target: string,
    user: UserInput | null,
    context: ContextInput | null,
    chain?: readonly AgentRefInput[],
  ): BrokerDecision {
    const g = this.gate(target, 'MCP');
    if (!g.ok) return g.decision;
    const d = decideSessionTraffic(g.snapshot.set, {
      user,
      request: { kind: 'mcp', target, time: this.wallClock(), ...(chain ? { chain } : {}) },
      context,
    });
    return engineDecision(d, g.snapshot.version, { kind: 'session', user, context });
  }

  /** tools/list filtering: could some rule allow `tool` for this agent and user? */
  couldAllowTool(target: string, tool: string, user: UserInput | null): boolean {
    const g = this.gate(target, 'MCP');
    if (!g.ok) return false;
    return couldAllowTool(g.snapshot.set, target, tool, user);
  }
}

/** A SnapshotSource whose snapshot is set directly: tests, and a shared gateway fed by other means. */
export class StaticSnapshotSource implements SnapshotSource {
  snapshot: PolicySnapshot | null = null;
  lastHeard: number | null = null;
  private readonly listeners = new Set<() => void>();
  constructor(private readonly now: () => number = () => performance.now()) {}
  set(snapshot: PolicySnapshot): void {
    this.snapshot = snapshot;
    this.lastHeard = this.now();
    for (const l of [...this.listeners]) l();
  }
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  heartbeat(): void {
    this.lastHeard = this.now();
  }
}
