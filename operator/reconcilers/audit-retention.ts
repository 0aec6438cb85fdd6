/**
 * Audit retention: deletes an agent's AuditRecords older than the retention period.
 *
 * Only a contiguous oldest prefix of each chain is pruned, never the newest record (the writer's
 * chain head), and never across a gap (a gap is evidence of tampering; pruning past it would hide
 * it). Before deleting, the cut — the last pruned sequence and its digest — is written to the
 * AgentIdentity's status.audit.prunedThrough, so `kubectl warden audit
 * --verify` tells retention (records before the cut, first remaining record linking to it) from
 * deletion. The annotation is written first: a crash before the deletes leaves records the
 * verifier still accepts.
 *
 * Keyed by AgentIdentity (leader only); each agent is looked at again every `intervalMs`.
 * Chains of deleted AgentIdentities are not pruned (their records stay until deleted by hand).
 */
import type { Logger } from 'pino';
import type { AgentIdentity, AuditRecord } from '../../core/api/index.js';
import { formatPrunedThrough, type PrunedThrough, parsePrunedThrough } from '../../core/audit/chain.js';
import { agentLabelValue } from '../../core/audit/labels.js';
import { GROUP, LABEL_AGENT, PLURAL, VERSION } from '../../core/constants.js';
import type { Clock } from '../../kube/clock.js';
import { Controller, type ControllerMetrics, type ReconcileFn } from '../../kube/controller.js';
import { isNotFound } from '../../kube/errors.js';
import type { Informer } from '../../kube/informer.js';
import { type KubeApi, type ObjectList, resourcePath } from '../../kube/kube.js';
import { AGENT_IDENTITIES } from '../../kube/resources.js';

/**
 * `status.audit.prunedThrough` of an AgentIdentity, `<sequence>:<digest>`: records 0..sequence were
 * pruned by retention. It lives in status (written through /status, which the controller's
 * least-privilege role may patch) rather than in an annotation (which would need write access
 * to the platform team's spec).
 */
export function prunedThroughOf(
  agent: { status?: { audit?: { prunedThrough?: string } } } | undefined,
): string | undefined {
  return agent?.status?.audit?.prunedThrough;
}
export const RETENTION_FIELD_MANAGER = 'warden-controller-retention';

const AUDIT_RECORDS = { group: GROUP, version: VERSION, plural: PLURAL.AuditRecord };

export interface PruneRecord {
  name: string;
  sequence: number;
  digest: string;
  endTime: string;
}

export interface PrunePlan {
  /** The new cut, when it moves forward. */
  cut?: PrunedThrough;
  /** Records to delete (oldest first). */
  delete: string[];
}

/**
 * Pure: which records of one agent's chain to prune. A record goes when it ended before
 * `now - retentionMs`, everything before it goes too, the sequence is contiguous from the
 * chain's start (0, or the previous cut + 1), and it is not the newest record.
 */
export function planPrune(
  records: readonly PruneRecord[],
  previousCut: PrunedThrough | undefined,
  now: number,
  retentionMs: number,
): PrunePlan {
  const sorted = [...records].sort((a, b) => a.sequence - b.sequence);
  const cutoff = now - retentionMs;
  const del: string[] = [];
  let cut: PrunedThrough | undefined;
  // Records at or below a previous cut were meant to go already (a crash mid-prune).
  let expect = 0;
  let i = 0;
  for (; i < sorted.length; i++) {
    const r = sorted[i] as PruneRecord;
    if (previousCut && r.sequence <= previousCut.sequence) {
      del.push(r.name);
      continue;
    }
    break;
  }
  expect = previousCut ? previousCut.sequence + 1 : 0;
  for (; i < sorted.length - 1; i++) {
    const r = sorted[i] as PruneRecord;
    if (r.sequence !== expect) break; // a gap: keep the evidence
    const end = Date.parse(r.endTime);
    if (!Number.isFinite(end) || end >= cutoff) break;
    del.push(r.name);
    cut = { sequence: r.sequence, digest: r.digest };
    expect++;
  }
  return { ...(cut ? { cut } : {}), delete: del };
}

export interface RetentionDeps {
  agents: Informer<AgentIdentity>;
  api: KubeApi;
  clock: Clock;
  retentionMs: number;
  /** How often each agent's chain is looked at. Default: min(retention / 10, 1 h), at least 10 s. */
  intervalMs?: number;
}

export function reconcileAuditRetention(deps: RetentionDeps): ReconcileFn {
  const interval = deps.intervalMs ?? Math.max(10_000, Math.min(deps.retentionMs / 10, 3_600_000));
  // Every AgentIdentity update (status counters change every few seconds on a busy agent) wakes
  // this reconciler; the chain is listed at most once per interval per agent.
  const lastRun = new Map<string, number>();
  return async (key, ctx) => {
    // gather
    const agent = deps.agents.get(key.name, key.namespace);
    const k = `${key.namespace}/${key.name}`;
    if (!agent || agent.metadata?.deletionTimestamp) {
      lastRun.delete(k);
      return;
    }
    const since = deps.clock.now() - (lastRun.get(k) ?? Number.NEGATIVE_INFINITY);
    if (since < interval) return { requeueAfter: interval - since };
    lastRun.set(k, deps.clock.now());
    try {
      return await prune(key, agent, ctx);
    } catch (err) {
      lastRun.delete(k); // let the queue's backoff retry instead of waiting a whole interval
      throw err;
    }
  };

  async function prune(
    key: { namespace: string; name: string },
    agent: AgentIdentity,
    ctx: { signal: AbortSignal; logger: Logger },
  ): Promise<{ requeueAfter: number }> {
    const list = await deps.api.request<ObjectList<AuditRecord>>(
      'GET',
      resourcePath(AUDIT_RECORDS, key.namespace),
      { query: { labelSelector: `${LABEL_AGENT}=${agentLabelValue(key.name)}` }, signal: ctx.signal },
    );
    const records = list.items
      .filter((r) => r.spec?.agent === key.name)
      .map((r) => ({
        name: r.metadata?.name ?? '',
        sequence: r.spec.sequence,
        digest: r.spec.digest,
        endTime: r.spec.endTime,
      }));
    const previous = parsePrunedThrough(prunedThroughOf(agent));
    // decide
    const plan = planPrune(records, previous, deps.clock.now(), deps.retentionMs);
    // act
    if (plan.cut) {
      await deps.api.request('PATCH', resourcePath(AGENT_IDENTITIES, key.namespace, key.name, 'status'), {
        body: { status: { audit: { prunedThrough: formatPrunedThrough(plan.cut) } } },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: RETENTION_FIELD_MANAGER },
        signal: ctx.signal,
      });
    }
    for (const name of plan.delete) {
      try {
        await deps.api.request('DELETE', resourcePath(AUDIT_RECORDS, key.namespace, name), {
          signal: ctx.signal,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (plan.delete.length > 0) {
      ctx.logger.info({ pruned: plan.delete.length, through: plan.cut?.sequence }, 'audit records pruned');
    }
    return { requeueAfter: interval };
  }
}

export function auditRetentionController(
  deps: RetentionDeps & { logger: Logger; metrics?: ControllerMetrics },
): Controller {
  return new Controller({
    name: 'audit-retention',
    reconcile: reconcileAuditRetention(deps),
    logger: deps.logger,
    clock: deps.clock,
    concurrency: 1,
    metrics: deps.metrics,
  }).watchPrimary(deps.agents);
}
