/**
 * Revocation reconciler: the kill switch's active part. When an AgentIdentity is suspended, its
 * outstanding credentials are revoked (authority/revocation.ts does the revoking) and
 * status.revocation reports progress: requestedAt/requestedBy/reason at once, then
 * credentialsRevoked, pending and completedAt. It runs on the leader only (operator controllers)
 * and is idempotent, so a replica taking over mid-revocation finishes it:
 *
 *   - "in progress" is persisted: status.revocation with requestedAt and no completedAt;
 *   - "this suspension is done" follows from status alone: the current suspension began at the
 *     Suspended condition's lastTransitionTime (written by the AgentIdentity reconciler when the
 *     flag flips), and a revocation requested at or after it belongs to it. A new suspension flips
 *     the condition again, so it starts a new revocation. status.revocation keeps the last one,
 *     which the introspection rule needs (tokens issued before it stay revoked after a revive).
 *     No write to the AgentIdentity itself is needed — the controller's RBAC allows /status only;
 *   - the revoker is idempotent (revoking a revoked PostgreSQL role changes nothing and counts the
 *     same role), so running it again after a crash neither duplicates nor misses work.
 *
 * Gather (informer caches) → decide (decideRevocation, pure) → act (revoke, status, annotation,
 * Event, audit entry).
 */
import type { Logger } from 'pino';
import type { AgentIdentity, AuditEntry, CredentialProvider } from '../../core/api/index.js';
import { ANNOTATION_SUSPENDED_BY } from '../../core/constants.js';
import type { ControllerAuditSink } from '../../core/ports/audit.js';
import type { AgentRevoker, RevocationProvider } from '../../core/ports/credentials.js';
import type { Clock } from '../../kube/clock.js';
import { Controller, type ControllerMetrics, type ReconcileFn } from '../../kube/controller.js';
import type { EventRecorder } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import { AGENT_IDENTITIES } from '../../kube/resources.js';
import type { StatusWriter } from '../../kube/status.js';

export const REVOCATION_REASON = {
  RevocationRequested: 'RevocationRequested',
  CredentialsRevoked: 'CredentialsRevoked',
  RevocationFailed: 'RevocationFailed',
} as const;

export interface RevocationStatus {
  requestedAt?: string;
  completedAt?: string;
  requestedBy?: string;
  reason?: string;
  credentialsRevoked?: number;
  pending?: number;
}

/** status.revocation as a merge patch: null removes a member. */
export type RevocationPatch = { [K in keyof RevocationStatus]?: RevocationStatus[K] | null };

/**
 * Pure: the patch that records a new revocation request. A merge patch keeps the members it does
 * not name, so the previous revocation's completedAt and pending are removed explicitly: left in
 * place, a crash before this revocation's outcome is written would make it look complete (and the
 * next leader would not revoke).
 */
export function requestPatch(rev: RevocationStatus): RevocationPatch {
  return { ...rev, completedAt: null, pending: null };
}

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  time?: string;
  subresource?: string;
  fieldsV1?: { 'f:spec'?: Record<string, unknown> };
}

/**
 * Pure: who flipped spec.suspended. The Kubernetes user comes from the warden.dev/suspended-by
 * annotation, which the chart's MutatingAdmissionPolicy writes from the API server's userInfo when
 * the flag is set (and reverts on any other edit); the field manager and time from
 * metadata.managedFields (the newest entry owning f:spec.f:suspended): "alice (kubectl-warden
 * Update at …)". Without the annotation (the policy not installed) only the manager is known.
 */
export function suspendedBy(
  managedFields: readonly ManagedFieldsEntry[] | undefined,
  annotations?: Readonly<Record<string, string>>,
): string {
  const user = annotations?.[ANNOTATION_SUSPENDED_BY];
  let best: ManagedFieldsEntry | undefined;
  for (const m of managedFields ?? []) {
    if (m.subresource) continue; // status writes do not set spec
    if (!m.fieldsV1?.['f:spec'] || !('f:suspended' in m.fieldsV1['f:spec'])) continue;
    if (!best || (m.time ?? '') > (best.time ?? '')) best = m;
  }
  const how = best
    ? `${best.manager ?? 'unknown manager'} (${best.operation ?? 'Update'} at ${best.time ?? 'unknown time'})`
    : undefined;
  if (user) return (how ? `${user} via ${how}` : user).slice(0, 1024);
  if (!how) return 'unknown (no managedFields entry owns spec.suspended)';
  return how.slice(0, 1024);
}

export type RevocationAction =
  | { kind: 'none' }
  /** Record the request (status), then revoke. */
  | { kind: 'start'; revocation: RevocationStatus }
  /** A revocation is in progress (ours or a previous leader's): (re)run the revoker. */
  | { kind: 'revoke'; revocation: RevocationStatus };

const ms = (t: string | undefined) => (t ? Date.parse(t) : Number.NaN);

/**
 * Pure: when the current suspension began — the Suspended condition's last flip to True — or
 * undefined while the AgentIdentity reconciler has not yet reported this generation's suspension
 * (its status write wakes this reconciler again).
 */
export function suspendedSince(agent: AgentIdentity): string | undefined {
  if (agent.spec?.suspended !== true) return undefined;
  const c = agent.status?.conditions?.find((x) => x.type === 'Suspended');
  const gen = agent.metadata?.generation;
  if (c?.status !== 'True') return undefined;
  if (gen !== undefined && c.observedGeneration !== undefined && c.observedGeneration < gen) return undefined;
  return c.lastTransitionTime;
}

/** Pure: whether a kill has taken full effect — the revocation for the current suspension is complete. */
export function revocationDone(agent: AgentIdentity): boolean {
  const since = suspendedSince(agent);
  const rev = agent.status?.revocation as RevocationStatus | undefined;
  return since !== undefined && Boolean(rev?.completedAt) && ms(rev?.requestedAt) >= ms(since);
}

/** Pure: what to do for an agent now. */
export function decideRevocation(agent: AgentIdentity, now: Date): RevocationAction {
  const rev = agent.status?.revocation as RevocationStatus | undefined;
  if (rev?.requestedAt && !rev.completedAt) return { kind: 'revoke', revocation: rev };
  const since = suspendedSince(agent);
  if (since !== undefined) {
    // Compared as instants: condition times have second resolution, requestedAt milliseconds.
    if (rev?.requestedAt && ms(rev.requestedAt) >= ms(since)) return { kind: 'none' };
    const meta = agent.metadata as
      | { managedFields?: ManagedFieldsEntry[]; annotations?: Record<string, string> }
      | undefined;
    return {
      kind: 'start',
      revocation: {
        // Never before the suspension began (another replica's clock may lag): it would look
        // like an older revocation and be started again.
        requestedAt: new Date(Math.max(now.getTime(), ms(since) || 0)).toISOString(),
        requestedBy: suspendedBy(meta?.managedFields, meta?.annotations),
        reason: (agent.spec?.suspendReason?.trim() || 'no reason given').slice(0, 1024),
        credentialsRevoked: 0,
      },
    };
  }
  return { kind: 'none' };
}

export interface RevocationDeps {
  agents: Informer<AgentIdentity>;
  providers: Informer<CredentialProvider>;
  /** The Manager's status writer of REVOCATION_FIELD_MANAGER, the one owner of status.revocation. */
  status: StatusWriter;
  revoker: AgentRevoker;
  recorder: EventRecorder;
  audit?: ControllerAuditSink;
  clock: Clock;
}

function entry(kind: AuditEntry['kind'], time: string, rev: RevocationStatus, message: string): AuditEntry {
  return {
    time,
    kind,
    decision: 'Deny',
    user: (rev.requestedBy ?? 'unknown').slice(0, 512),
    message: message.slice(0, 1024),
  };
}

export function reconcileRevocation(deps: RevocationDeps): ReconcileFn {
  // The request is written with the resourceVersion read (another replica may have started
  // meanwhile: 409 → re-read); progress and the outcome without it, as they must land after the
  // revoking whatever else changed on the object (status.revocation has no other writer).
  const patchStatus = async (agent: AgentIdentity, rev: RevocationPatch, precondition: boolean) => {
    const desired = { revocation: rev };
    const written = precondition
      ? await deps.status.write(AGENT_IDENTITIES, agent, desired)
      : await deps.status.overwrite(AGENT_IDENTITIES, agent, desired);
    return written !== 'gone';
  };
  // requestedAt of revocations this process completed, per agent: the informer may still show
  // "in progress" for a moment after our own completion write, and that is not work to redo.
  const completedHere = new Map<string, string>();

  return async (key, ctx) => {
    // gather
    const agent = deps.agents.get(key.name, key.namespace);
    if (!agent || agent.metadata?.deletionTimestamp) return;
    const providers: RevocationProvider[] = deps.providers.list(key.namespace).map((p) => ({
      namespace: p.metadata?.namespace ?? '',
      name: p.metadata?.name ?? '',
      spec: p.spec,
    }));
    // decide
    const now = new Date(deps.clock.now());
    const action = decideRevocation(agent, now);
    // act
    if (action.kind === 'none') return;
    const k = `${key.namespace}/${key.name}`;
    if (action.kind === 'revoke' && completedHere.get(k) === action.revocation.requestedAt) return;
    let rev = action.revocation;
    if (action.kind === 'start') {
      // With the resourceVersion we read: if another replica started meanwhile, 409 → re-read.
      if (!(await patchStatus(agent, requestPatch(rev), true))) return;
      deps.recorder.record(agent, {
        type: 'Warning',
        reason: REVOCATION_REASON.RevocationRequested,
        action: 'Revoke',
        note: `suspended by ${rev.requestedBy}: ${rev.reason}; revoking outstanding credentials`,
      });
      deps.audit?.recordEntry(
        key.namespace,
        key.name,
        entry('Suspension', now.toISOString(), rev, `agent suspended: ${rev.reason}`),
      );
      ctx.logger.info({ requestedBy: rev.requestedBy }, 'revocation requested');
    }
    const outcome = await deps.revoker.revokeAgent(key.namespace, key.name, providers);
    const at = new Date(deps.clock.now()).toISOString();
    if (outcome.failures.length > 0) {
      rev = {
        ...rev,
        credentialsRevoked: Math.max(rev.credentialsRevoked ?? 0, outcome.revoked),
        pending: outcome.failures.length,
      };
      await patchStatus(agent, rev, false);
      const what = outcome.failures.map((f) => `${f.what}: ${f.message}`).join('; ');
      deps.recorder.record(agent, {
        type: 'Warning',
        reason: REVOCATION_REASON.RevocationFailed,
        action: 'Revoke',
        note: `could not revoke ${outcome.failures.length} credential source(s), retrying: ${what}`.slice(
          0,
          1024,
        ),
      });
      deps.audit?.recordEntry(
        key.namespace,
        key.name,
        entry('Revocation', at, rev, `revocation incomplete, will retry: ${what}`),
      );
      // Thrown so the work queue retries with backoff (1 s → 5 min).
      throw new Error(`revocation of AgentIdentity ${key.namespace}/${key.name} incomplete: ${what}`);
    }
    rev = { ...rev, credentialsRevoked: outcome.revoked, pending: 0, completedAt: at };
    if (!(await patchStatus(agent, rev, false))) return;
    if (rev.requestedAt) completedHere.set(k, rev.requestedAt);
    if (completedHere.size > 10_000) completedHere.delete(completedHere.keys().next().value as string);
    deps.recorder.record(agent, {
      type: 'Normal',
      reason: REVOCATION_REASON.CredentialsRevoked,
      action: 'Revoke',
      note: `revocation complete: ${outcome.revoked} credential(s) revoked`,
    });
    deps.audit?.recordEntry(
      key.namespace,
      key.name,
      entry('Revocation', at, rev, `revocation complete: ${outcome.revoked} credential(s) revoked`),
    );
    ctx.logger.info({ revoked: outcome.revoked }, 'revocation complete');
  };
}

export function revocationController(
  deps: RevocationDeps & { logger: Logger; concurrency?: number; metrics?: ControllerMetrics },
): Controller {
  return new Controller({
    name: 'revocation',
    reconcile: reconcileRevocation(deps),
    logger: deps.logger,
    clock: deps.clock,
    concurrency: deps.concurrency,
    metrics: deps.metrics,
  }).watchPrimary(deps.agents);
}
