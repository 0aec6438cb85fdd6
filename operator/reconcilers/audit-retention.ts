/**
 * Audit retention: prunes AuditRecords by age, by records per agent and by records per namespace
 * (core/audit/retention.ts decides which). Keyed by namespace (leader only): one pass lists the
 * namespace's records as metadata only (names, labels, creationTimestamp; pages of 500), so a pass
 * over 100,000 records moves kilobytes per record less than listing their entries.
 *
 * Before deleting, each pruned chain's cut — the last pruned sequence and its digest, read from
 * that one record — is written to the AgentIdentity's status.audit.prunedThrough, with why and when
 * in status.audit.pruned, so `kubectl warden audit --verify` tells retention (records before the
 * cut, the first remaining record linking to it) from deletion and says what was pruned. The cut
 * is written first: a crash before the deletes leaves records the verifier still accepts, and the
 * next pass deletes them.
 *
 * Chains of deleted AgentIdentities are not pruned (there is no status to record the cut in); they
 * count against the namespace limit until deleted by hand.
 */
import type { Logger } from 'pino';
import type { AgentIdentity, AuditRecord } from '../../core/api/index.js';
import { formatPrunedThrough, parsePrunedThrough, recordName } from '../../core/audit/chain.js';
import { agentLabelValue } from '../../core/audit/labels.js';
import {
  type ChainPlan,
  describeLimit,
  type PruneChain,
  type PruneRecord,
  planRetention,
  type RetentionPolicy,
} from '../../core/audit/retention.js';
import { GROUP, LABEL_AGENT, PLURAL, VERSION } from '../../core/constants.js';
import type { Clock } from '../../kube/clock.js';
import { Controller, type ControllerMetrics, type ReconcileFn } from '../../kube/controller.js';
import { isNotFound } from '../../kube/errors.js';
import type { Informer } from '../../kube/informer.js';
import { CACHED_LIST_QUERY, type KubeApi, METADATA_LIST_ACCEPT, resourcePath } from '../../kube/kube.js';
import { AGENT_IDENTITIES } from '../../kube/resources.js';
import type { StatusWriter } from '../../kube/status.js';

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

const AUDIT_RECORDS = { group: GROUP, version: VERSION, plural: PLURAL.AuditRecord };
/** Deletes in flight per pass: enough to keep up with 1,000 entries/s, gentle on the API server. */
const DELETE_CONCURRENCY = 8;

interface MetadataItem {
  metadata?: { name?: string; labels?: Record<string, string>; creationTimestamp?: string };
}
interface MetadataList {
  metadata?: { continue?: string };
  items: MetadataItem[];
}

export interface RetentionDeps {
  agents: Informer<AgentIdentity>;
  /** Lists, reads and deletes AuditRecords. */
  api: KubeApi;
  /** The Manager's status writer of RETENTION_FIELD_MANAGER, the one owner of status.audit.prunedThrough and .pruned. */
  status: StatusWriter;
  clock: Clock;
  policy: RetentionPolicy;
  /**
   * How often each namespace is looked at. Default: 30 s when a size limit is set (at 1,000
   * entries/s a namespace grows by ~150 records in that time), else min(max age / 10, 1 h), at
   * least 10 s.
   */
  intervalMs?: number;
}

export function defaultRetentionInterval(p: RetentionPolicy): number {
  if ((p.maxRecordsPerAgent ?? 0) > 0 || (p.maxRecordsPerNamespace ?? 0) > 0) return 30_000;
  return Math.max(10_000, Math.min((p.maxAgeMs ?? 0) / 10, 3_600_000));
}

/** The sequence of a record named `recordName(agent, sequence)`, or undefined for another name. */
export function sequenceOf(agent: string, name: string): number | undefined {
  const m = /-([0-9]{10})$/.exec(name);
  if (!m) return undefined;
  const sequence = Number(m[1]);
  return recordName(agent, sequence) === name ? sequence : undefined;
}

/** Gathers a namespace's chains from a metadata-only list of its AuditRecords. */
export function chainsOf(
  items: readonly MetadataItem[],
  agents: readonly AgentIdentity[],
): { chains: PruneChain[]; unmanaged: number } {
  const byLabel = new Map<string, { agent: AgentIdentity; records: PruneRecord[] }>();
  for (const a of agents) {
    const name = a.metadata?.name;
    if (name && !a.metadata?.deletionTimestamp) byLabel.set(agentLabelValue(name), { agent: a, records: [] });
  }
  let unmanaged = 0;
  for (const item of items) {
    const name = item.metadata?.name ?? '';
    const chain = byLabel.get(item.metadata?.labels?.[LABEL_AGENT] ?? '');
    const agentName = chain?.agent.metadata?.name ?? '';
    const sequence = chain ? sequenceOf(agentName, name) : undefined;
    const createdMs = Date.parse(item.metadata?.creationTimestamp ?? '');
    if (!chain || sequence === undefined || !Number.isFinite(createdMs)) {
      unmanaged++;
      continue;
    }
    chain.records.push({ name, sequence, createdMs });
  }
  const chains: PruneChain[] = [];
  for (const { agent, records } of byLabel.values()) {
    const previousCut = parsePrunedThrough(prunedThroughOf(agent));
    const head = agent.status?.audit?.head?.sequence;
    chains.push({
      agent: agent.metadata?.name ?? '',
      ...(previousCut ? { previousCut } : {}),
      ...(typeof head === 'number' ? { head } : {}),
      records,
    });
  }
  return { chains, unmanaged };
}

export function reconcileAuditRetention(deps: RetentionDeps): ReconcileFn {
  const interval = deps.intervalMs ?? defaultRetentionInterval(deps.policy);
  // Every AgentIdentity update (status counters change every few seconds on a busy agent) wakes
  // this reconciler; a namespace is listed at most once per interval.
  const lastRun = new Map<string, number>();
  return async (key, ctx) => {
    const namespace = key.namespace;
    const since = deps.clock.now() - (lastRun.get(namespace) ?? Number.NEGATIVE_INFINITY);
    if (since < interval) return { requeueAfter: interval - since };
    lastRun.set(namespace, deps.clock.now());
    try {
      await pass(namespace, ctx);
    } catch (err) {
      lastRun.delete(namespace); // let the queue's backoff retry instead of waiting a whole interval
      throw err;
    }
    return { requeueAfter: interval };
  };

  async function pass(namespace: string, ctx: { signal: AbortSignal; logger: Logger }): Promise<void> {
    // gather
    const agents = deps.agents.list(namespace);
    if (agents.length === 0) return;
    const items: MetadataItem[] = [];
    let cont: string | undefined;
    do {
      const page: MetadataList = await deps.api.request<MetadataList>(
        'GET',
        resourcePath(AUDIT_RECORDS, namespace),
        {
          query: { limit: '500', ...(cont ? { continue: cont } : CACHED_LIST_QUERY) },
          accept: METADATA_LIST_ACCEPT,
          // A pass over thousands of records on a busy API server may take a while per page.
          timeoutMs: 120_000,
          signal: ctx.signal,
        },
      );
      // An empty metadata-only list has "items": null.
      items.push(...(page.items ?? []));
      cont = page.metadata?.continue || undefined;
    } while (cont);
    const { chains, unmanaged } = chainsOf(items, agents);
    // decide
    const plans = planRetention(chains, deps.policy, deps.clock.now(), unmanaged);
    // act: each chain's cut first, then its deletes
    for (const plan of plans) {
      if (plan.cutSequence !== undefined && !(await writeCut(namespace, plan, ctx.signal))) continue;
      if (plan.delete.length === 0) continue;
      await deleteAll(namespace, plan.delete, ctx.signal);
      ctx.logger.info(
        {
          agent: plan.agent,
          pruned: plan.delete.length,
          through: plan.cutSequence,
          ...(plan.reason ? { reason: plan.reason } : {}),
        },
        'audit records pruned',
      );
    }
  }

  /**
   * Reads the digest of the record at the cut and records the cut in the AgentIdentity status;
   * false when the AgentIdentity is gone (no status to record the cut in: nothing is pruned).
   */
  async function writeCut(namespace: string, plan: ChainPlan, signal: AbortSignal): Promise<boolean> {
    const sequence = plan.cutSequence as number;
    const record = await deps.api.request<AuditRecord>(
      'GET',
      resourcePath(AUDIT_RECORDS, namespace, recordName(plan.agent, sequence)),
      { signal },
    );
    if (record.spec?.agent !== plan.agent || record.spec?.sequence !== sequence) {
      // Named for this slot but not claiming it: evidence, not something to prune through.
      throw new Error(
        `AuditRecord ${namespace}/${recordName(plan.agent, sequence)} claims agent ${record.spec?.agent} sequence ${record.spec?.sequence}: not pruned`,
      );
    }
    const reason = plan.reason ?? 'MaxAge';
    // Without a resourceVersion: this leader-only reconciler is the fields' one writer and the cut
    // only moves forward (it is planned from the live list of records), while the counters and the
    // audit head change the object every few seconds on a busy agent.
    const agent = deps.agents.get(plan.agent, namespace) ?? { metadata: { namespace, name: plan.agent } };
    const written = await deps.status.overwrite(
      AGENT_IDENTITIES,
      agent,
      {
        audit: {
          prunedThrough: formatPrunedThrough({ sequence, digest: record.spec.digest }),
          pruned: {
            time: new Date(deps.clock.now()).toISOString(),
            reason,
            limit: describeLimit(deps.policy, reason),
          },
        },
      },
      signal,
    );
    return written !== 'gone';
  }

  async function deleteAll(namespace: string, names: readonly string[], signal: AbortSignal): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++] as string;
        try {
          await deps.api.request('DELETE', resourcePath(AUDIT_RECORDS, namespace, name), { signal });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, names.length) }, worker));
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
  }).watchRelated(deps.agents, (a) => [`${a.metadata?.namespace ?? ''}/`]);
}
