/**
 * Shared by `kubectl warden kill` and `revive`: the spec patch, and reading progress from the
 * AgentIdentity status (pure, tested) while waiting.
 */
import type { AgentIdentity, Condition } from '../core/api/index.js';
import { resourcePath } from '../kube/kube.js';
import { CliError } from './command.js';
import { AGENTS, type CliKube } from './kube.js';

/** The field manager the kill switch's spec patches carry: the revocation's requestedBy names it. */
export const KILL_FIELD_MANAGER = 'kubectl-warden';

/** A milestone a person watching the kill sees once. */
export interface Milestone {
  key: string;
  text: string;
}

function condition(obj: AgentIdentity, type: string): Condition | undefined {
  return obj.status?.conditions?.find((c) => c.type === type);
}

/**
 * Pure: where a kill stands. `previousRequestedAt` is status.revocation.requestedAt before the
 * patch, so an older, completed revocation is not mistaken for this one.
 */
export function killProgress(
  obj: AgentIdentity,
  previousRequestedAt: string | undefined,
): { milestones: Milestone[]; done: boolean } {
  const ms: Milestone[] = [];
  const gen = obj.metadata?.generation ?? 0;
  const sus = condition(obj, 'Suspended');
  if (sus?.status === 'True' && (sus.observedGeneration ?? gen) >= gen) {
    ms.push({ key: 'suspended', text: `Suspended=True: ${sus.message}` });
  }
  const rev = obj.status?.revocation;
  const current = rev?.requestedAt && rev.requestedAt !== previousRequestedAt;
  if (rev && current) {
    ms.push({
      key: `requested:${rev.requestedAt}`,
      text: `revocation requested at ${rev.requestedAt} by ${rev.requestedBy ?? 'unknown'}`,
    });
    if (!rev.completedAt && rev.pending) {
      ms.push({
        key: `pending:${rev.pending}:${rev.credentialsRevoked ?? 0}`,
        text: `revoked ${rev.credentialsRevoked ?? 0} credential(s), ${rev.pending} source(s) failing — retrying (see Events)`,
      });
    }
    if (rev.completedAt) {
      ms.push({
        key: `completed:${rev.completedAt}`,
        text: `revocation completed at ${rev.completedAt}: ${rev.credentialsRevoked ?? 0} credential(s) revoked`,
      });
    }
  }
  return { milestones: ms, done: Boolean(current && rev?.completedAt && sus?.status === 'True') };
}

/** Pure: whether a revive has taken effect (Suspended=False for the current generation). */
export function reviveProgress(obj: AgentIdentity): { milestones: Milestone[]; done: boolean } {
  const gen = obj.metadata?.generation ?? 0;
  const sus = condition(obj, 'Suspended');
  const done = sus?.status === 'False' && (sus.observedGeneration ?? 0) >= gen;
  return {
    milestones: done ? [{ key: 'active', text: `Suspended=False: ${sus?.message ?? ''}` }] : [],
    done,
  };
}

/**
 * Pure: what `revive` tells when the suspension was the circuit breaker's (spec.suspendReason
 * starts with CircuitBreakerTripped): the breaker is reset, since the authority drops an agent's
 * window while it is suspended and counts afresh from the revive.
 */
export function breakerResetNote(before: AgentIdentity): string | undefined {
  const reason = before.spec?.suspendReason ?? '';
  if (before.spec?.suspended !== true || !reason.startsWith('CircuitBreakerTripped')) return undefined;
  const trip = before.status?.circuitBreaker?.lastTrip;
  const when = trip ? ` at ${trip.time}` : '';
  return `circuit breaker reset: it tripped${when} (${reason.split(';')[0]}); it counts again from now`;
}

/** Go-style or plain-seconds timeout for --timeout ("60s", "2m", "90"). */
export function parseTimeout(value: string): number {
  const m = /^([0-9]+)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new CliError(`--timeout: "${value}" is not a duration; use e.g. 60s or 2m`, 2);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export class AgentClient {
  constructor(private readonly kube: CliKube) {}

  async get(namespace: string, name: string): Promise<AgentIdentity> {
    return this.kube.request<AgentIdentity>(
      'GET',
      resourcePath(AGENTS, namespace, name),
      `AgentIdentity ${namespace}/${name}`,
      'get and patch',
    );
  }

  async patchSpec(namespace: string, name: string, spec: Record<string, unknown>): Promise<AgentIdentity> {
    return this.kube.request<AgentIdentity>(
      'PATCH',
      resourcePath(AGENTS, namespace, name),
      `AgentIdentity ${namespace}/${name}`,
      'get and patch',
      {
        body: { spec },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: KILL_FIELD_MANAGER },
      },
    );
  }
}

/** Polls until `progress` says done, printing each milestone once; throws on timeout. */
export async function waitFor(
  read: () => Promise<AgentIdentity>,
  progress: (obj: AgentIdentity) => { milestones: Milestone[]; done: boolean },
  print: (line: string) => void,
  timeoutMs: number,
  what: string,
): Promise<AgentIdentity> {
  const seen = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const obj = await read();
    const p = progress(obj);
    for (const m of p.milestones) {
      if (seen.has(m.key)) continue;
      seen.add(m.key);
      print(`  ${m.text}`);
    }
    if (p.done) return obj;
    if (Date.now() >= deadline) {
      throw new CliError(
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; is the warden controller running? Check: kubectl describe agentidentity`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
