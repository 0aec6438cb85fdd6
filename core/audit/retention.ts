/**
 * Audit retention, the pure part: which AuditRecords of a namespace's chains go, by age, by the
 * number of records per agent, and by the number of records per namespace (docs/runbook.md,
 * "Audit retention"). The reconciler (operator/reconcilers/audit-retention.ts) gathers records
 * and acts on the plan.
 *
 * Whatever the limit, only a contiguous oldest prefix of a chain is pruned (from 0, or from the
 * previous cut + 1), never across a gap (a gap is evidence of tampering; pruning past it would
 * hide it) and never the chain's newest record (the writer's head). So a limit is a target the
 * trail stays at or near, not a hard cap: a chain with a gap near its start keeps what follows.
 */
import type { PrunedThrough } from './chain.js';

/** The retention limits; an absent limit does not apply. */
export interface RetentionPolicy {
  /** Records created longer ago than this (ms) go. */
  maxAgeMs?: number;
  /** Each agent keeps at most this many records (its oldest go first). */
  maxRecordsPerAgent?: number;
  /** Each namespace keeps at most this many records (the oldest of any of its agents go first). */
  maxRecordsPerNamespace?: number;
}

/** Why a chain was pruned: the limit that moved its cut furthest. */
export type PruneReason = 'MaxAge' | 'MaxRecordsPerAgent' | 'MaxRecordsPerNamespace';

export interface PruneRecord {
  name: string;
  sequence: number;
  /** metadata.creationTimestamp (ms): set by the API server, so no client chooses a record's age. */
  createdMs: number;
}

export interface PruneChain {
  agent: string;
  /** status.audit.prunedThrough of the agent, parsed. */
  previousCut?: PrunedThrough;
  /**
   * The sequence of the chain's newest record as anchored in status.audit.head (read fresh), when
   * known: a list from the API server's cache can lag behind, and the newest records it lacks still
   * count against the limits (and make every listed record older than the newest).
   */
  head?: number;
  records: readonly PruneRecord[];
}

export interface ChainPlan {
  agent: string;
  /** The new last pruned sequence, when the cut moves forward. */
  cutSequence?: number;
  /** The limit that moved the cut last (absent when the cut does not move). */
  reason?: PruneReason;
  /** Records to delete, oldest first: the newly pruned ones and leftovers at or below the old cut. */
  delete: string[];
}

/** Whether any limit is set. */
export function retentionEnabled(p: RetentionPolicy): boolean {
  return (p.maxAgeMs ?? 0) > 0 || (p.maxRecordsPerAgent ?? 0) > 0 || (p.maxRecordsPerNamespace ?? 0) > 0;
}

/** The limit behind a reason, in words for status and logs ("720h", "1000 records per agent"). */
export function describeLimit(p: RetentionPolicy, reason: PruneReason): string {
  switch (reason) {
    case 'MaxAge':
      return `older than ${formatAge(p.maxAgeMs ?? 0)}`;
    case 'MaxRecordsPerAgent':
      return `more than ${p.maxRecordsPerAgent} records per agent`;
    case 'MaxRecordsPerNamespace':
      return `more than ${p.maxRecordsPerNamespace} records in the namespace`;
  }
}

function formatAge(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

interface ChainState {
  plan: ChainPlan;
  /** Records after the old cut, by sequence. */
  live: PruneRecord[];
  /** How many records the chain holds after the old cut: listed, or up to the anchored head. */
  count: number;
  /** How many of `live` are pruned (a prefix). */
  pruned: number;
  /** How many of `live` may be pruned at most: the contiguous prefix, less the newest record. */
  prunable: number;
}

/**
 * Plans one retention pass over a namespace's chains. `unmanaged` counts the namespace's records
 * that belong to no chain given (chains of deleted AgentIdentities, records of unknown agents):
 * they count against the namespace limit but are never pruned here.
 */
export function planRetention(
  chains: readonly PruneChain[],
  policy: RetentionPolicy,
  now: number,
  unmanaged = 0,
): ChainPlan[] {
  const states: ChainState[] = chains.map((c) => {
    const sorted = [...c.records].sort((a, b) => a.sequence - b.sequence);
    const cut = c.previousCut?.sequence ?? -1;
    // Records at or below a previous cut were meant to go already (a crash mid-prune).
    const leftovers = sorted.filter((r) => r.sequence <= cut).map((r) => r.name);
    const live = sorted.filter((r) => r.sequence > cut);
    let contiguous = 0;
    while (contiguous < live.length && live[contiguous]?.sequence === cut + 1 + contiguous) contiguous++;
    const listedNewest = live[live.length - 1]?.sequence ?? cut;
    // Newer records than the list shows exist when the anchored head is ahead: then even the last
    // listed record is not the newest.
    const ahead = c.head !== undefined && c.head > listedNewest;
    return {
      plan: { agent: c.agent, delete: leftovers },
      live,
      count: ahead ? live.length + ((c.head as number) - listedNewest) : live.length,
      pruned: 0,
      prunable: ahead ? contiguous : Math.min(contiguous, live.length - 1),
    };
  });
  const prune = (s: ChainState, reason: PruneReason) => {
    s.pruned++;
    s.plan.reason = reason;
  };

  if ((policy.maxAgeMs ?? 0) > 0) {
    const cutoff = now - (policy.maxAgeMs ?? 0);
    for (const s of states) {
      while (s.pruned < s.prunable && (s.live[s.pruned]?.createdMs ?? Number.POSITIVE_INFINITY) < cutoff) {
        prune(s, 'MaxAge');
      }
    }
  }
  const perAgent = policy.maxRecordsPerAgent ?? 0;
  if (perAgent > 0) {
    for (const s of states) {
      while (s.pruned < s.prunable && s.count - s.pruned > perAgent) prune(s, 'MaxRecordsPerAgent');
    }
  }
  const perNamespace = policy.maxRecordsPerNamespace ?? 0;
  if (perNamespace > 0) {
    let total = unmanaged + states.reduce((n, s) => n + s.count - s.pruned, 0);
    if (total > perNamespace) {
      // The oldest prunable records of all chains, oldest first. creationTimestamp grows with the
      // sequence within a chain (a record is created after the one it links to), so this order
      // takes each chain's records as a prefix; ties go by sequence.
      const candidates: { s: ChainState; i: number; at: number }[] = [];
      for (const s of states) {
        for (let i = s.pruned; i < s.prunable; i++) {
          candidates.push({ s, i, at: s.live[i]?.createdMs ?? 0 });
        }
      }
      candidates.sort((a, b) => a.at - b.at || a.i - b.i);
      for (const c of candidates) {
        if (total <= perNamespace) break;
        // Out of order within its chain (a clock went back): take it only as the next of its prefix.
        if (c.i !== c.s.pruned) continue;
        prune(c.s, 'MaxRecordsPerNamespace');
        total--;
      }
    }
  }

  return states.map((s) => {
    if (s.pruned === 0) return { agent: s.plan.agent, delete: s.plan.delete };
    const last = s.live[s.pruned - 1] as PruneRecord;
    return {
      ...s.plan,
      cutSequence: last.sequence,
      delete: [...s.plan.delete, ...s.live.slice(0, s.pruned).map((r) => r.name)],
    };
  });
}
