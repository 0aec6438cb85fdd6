/**
 * `kubectl warden status`, the pure part: one row per agent from its AgentIdentity and AuditRecords,
 * and an overview per namespace. The command (cli/commands/status.ts) only reads objects.
 */

import { parseDuration } from '../core/api/duration.js';
import type { AccessPolicy, AgentIdentity, AuditRecord, CredentialProvider } from '../core/api/index.js';
import { type PrunedThrough, parsePrunedThrough, verifyChain } from '../core/audit/chain.js';
import { ANNOTATION_SUSPENDED_AT, ANNOTATION_SUSPENDED_BY } from '../core/constants.js';
import { formatColumns } from './globals.js';

export interface AgentStatus {
  namespace: string;
  name: string;
  /** The Ready condition's status and reason ("True", "False (Suspended)"), or "Unknown". */
  ready: string;
  suspended: boolean;
  /** Who set spec.suspended (recorded at admission), when suspended. */
  suspendedBy?: string;
  suspendedAt?: string;
  suspendReason?: string;
  allowed: number;
  denied: number;
  lastSeen?: string;
  lastDenialReason?: string;
  /**
   * Provider credentials that may still be live: issued (per the audit trail's Decision entries)
   * within the agent's maxCredentialTTL — no credential outlives it — and after its last revocation.
   */
  activeCredentials: number;
  revocation: string;
  audit: { healthy: boolean; records: number; entries: number; dropped: number; problems: string[] };
}

export interface NamespaceOverview {
  namespace: string;
  agents: number;
  ready: number;
  suspended: number;
  policies: number;
  policiesReady: number;
  providers: number;
  providersReady: number;
  credentialsIssued: number;
  allowed: number;
  denied: number;
  auditRecords: number;
  auditHealthy: boolean;
}

export interface StatusInput {
  agents: readonly AgentIdentity[];
  policies: readonly AccessPolicy[];
  providers: readonly CredentialProvider[];
  records: readonly AuditRecord[];
}

const ns = (o: { metadata?: { namespace?: string } }) => o.metadata?.namespace ?? '';

function readyOf(
  conditions: readonly { type: string; status: string; reason?: string }[] | undefined,
): string {
  const c = conditions?.find((x) => x.type === 'Ready');
  if (!c) return 'Unknown';
  return c.status === 'True' || !c.reason ? c.status : `${c.status} (${c.reason})`;
}

function revocationText(a: AgentIdentity): string {
  const r = a.status?.revocation;
  if (!r?.requestedAt) return '-';
  if (r.completedAt) return `done: ${r.credentialsRevoked ?? 0} revoked`;
  if (r.pending) return `retrying: ${r.credentialsRevoked ?? 0} revoked, ${r.pending} source(s) failing`;
  return 'in progress';
}

/** Pure: the status of each agent, sorted by namespace and name. */
export function agentStatuses(input: StatusInput, now: number): AgentStatus[] {
  return [...input.agents]
    .sort((a, b) => `${ns(a)}/${a.metadata?.name ?? ''}`.localeCompare(`${ns(b)}/${b.metadata?.name ?? ''}`))
    .map((a) => {
      const namespace = ns(a);
      const name = a.metadata?.name ?? '';
      const records = input.records.filter((r) => ns(r) === namespace && r.spec.agent === name);
      const ttl = parseDuration(a.spec.maxCredentialTTL ?? '1h') ?? 3_600_000;
      const revokedAt = Date.parse(a.status?.revocation?.requestedAt ?? '') || 0;
      const since = Math.max(now - ttl, revokedAt);
      // Distinct ids: the authority's issuing entry and each broker call that used the (cached)
      // credential carry the same credentialId.
      const live = new Set<string>();
      for (const r of records)
        for (const e of r.spec.entries)
          if (
            e.kind === 'Decision' && // Session entries name the broker's own session token
            e.credentialId &&
            e.decision !== 'Deny' &&
            Date.parse(e.time) > since
          )
            live.add(e.credentialId);
      const active = live.size;
      const pruned: Record<string, PrunedThrough> = {};
      const cut = parsePrunedThrough(a.status?.audit?.prunedThrough);
      if (cut) pruned[name] = cut;
      // Links, retention cut and the anchored head only: signatures are checked by
      // `kubectl warden audit --verify`, which reads the published audit keys.
      const head = a.status?.audit?.head;
      const chain = verifyChain(
        records.map((r) => ({ ...(r.metadata?.name ? { name: r.metadata.name } : {}), spec: r.spec })),
        head ? { [name]: { sequence: head.sequence, digest: head.digest } } : {},
        pruned,
      );
      const forged = a.status?.audit?.forged;
      if (forged?.count) {
        chain.problems.push({
          kind: 'forged',
          agent: name,
          sequence: -1,
          message: `the controller skipped ${forged.count} AuditRecord(s) it did not write, the last ${forged.lastRecord ?? '(unknown)'}; run kubectl warden audit --verify`,
        });
        chain.ok = false;
      }
      const dropped = a.status?.audit?.dropped ?? 0;
      const annotations = a.metadata?.annotations ?? {};
      const suspended = a.spec.suspended === true;
      const who = annotations[ANNOTATION_SUSPENDED_BY] ?? a.status?.revocation?.requestedBy;
      // The circuit breaker's suspension: the user the admission policy recorded (the controller's
      // service account) and which threshold tripped.
      const trip = a.status?.circuitBreaker?.lastTrip;
      const byBreaker =
        suspended && trip?.action === 'Suspend' && a.spec.suspendReason?.startsWith('CircuitBreakerTripped');
      const by = byBreaker
        ? `${who ? `${who}, ` : ''}circuit breaker: ${trip.threshold} ${trip.observed} > ${trip.limit}`
        : who;
      return {
        namespace,
        name,
        ready: readyOf(a.status?.conditions),
        suspended,
        ...(suspended && by ? { suspendedBy: by } : {}),
        ...(suspended && annotations[ANNOTATION_SUSPENDED_AT]
          ? { suspendedAt: annotations[ANNOTATION_SUSPENDED_AT] }
          : {}),
        ...(suspended && a.spec.suspendReason ? { suspendReason: a.spec.suspendReason } : {}),
        allowed: a.status?.decisions?.allowed ?? 0,
        denied: a.status?.decisions?.denied ?? 0,
        ...(a.status?.lastSeen ? { lastSeen: a.status.lastSeen } : {}),
        ...(a.status?.decisions?.lastDenialReason
          ? { lastDenialReason: a.status.decisions.lastDenialReason }
          : {}),
        activeCredentials: suspended && a.status?.revocation?.completedAt ? 0 : active,
        revocation: revocationText(a),
        audit: {
          healthy: chain.ok && dropped === 0,
          records: chain.records,
          entries: chain.entries,
          dropped,
          problems: chain.problems.map((p) => `${p.kind}: ${p.message}`),
        },
      };
    });
}

/** Pure: one overview per namespace that holds any Warden object. */
export function namespaceOverviews(input: StatusInput, agents: readonly AgentStatus[]): NamespaceOverview[] {
  const names = new Set([...input.agents, ...input.policies, ...input.providers, ...input.records].map(ns));
  return [...names].sort().map((namespace) => {
    const mine = agents.filter((a) => a.namespace === namespace);
    const policies = input.policies.filter((p) => ns(p) === namespace);
    const providers = input.providers.filter((p) => ns(p) === namespace);
    return {
      namespace,
      agents: mine.length,
      ready: mine.filter((a) => a.ready === 'True').length,
      suspended: mine.filter((a) => a.suspended).length,
      policies: policies.length,
      policiesReady: policies.filter((p) => readyOf(p.status?.conditions) === 'True').length,
      providers: providers.length,
      providersReady: providers.filter((p) => readyOf(p.status?.conditions) === 'True').length,
      credentialsIssued: providers.reduce((n, p) => n + (p.status?.issuedCount ?? 0), 0),
      allowed: mine.reduce((n, a) => n + a.allowed, 0),
      denied: mine.reduce((n, a) => n + a.denied, 0),
      auditRecords: input.records.filter((r) => ns(r) === namespace).length,
      auditHealthy: mine.every((a) => a.audit.healthy),
    };
  });
}

/** "5s", "3m", "2h", "4d" since `time`, as kubectl prints ages; "<never>" without one. */
export function age(time: string | undefined, now: number): string {
  const t = time ? Date.parse(time) : Number.NaN;
  if (!Number.isFinite(t)) return '<never>';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

function suspendedText(a: AgentStatus): string {
  if (!a.suspended) return 'no';
  return a.suspendedBy ? `yes, by ${a.suspendedBy}` : 'yes';
}

function auditText(a: AgentStatus): string {
  if (a.audit.problems.length > 0) return `BROKEN (${a.audit.problems.length} problem(s))`;
  if (a.audit.dropped > 0) return `${a.audit.dropped} dropped`;
  return `ok (${a.audit.entries} entries)`;
}

/** The agents table (-o table / wide), with a NAMESPACE column under -A. */
export function formatAgents(
  agents: readonly AgentStatus[],
  opts: { namespaces: boolean; wide: boolean },
  now: number,
): string {
  if (agents.length === 0) return 'No AgentIdentities found.';
  const header = [
    ...(opts.namespaces ? ['NAMESPACE'] : []),
    'AGENT',
    'READY',
    'SUSPENDED',
    'ALLOWED',
    'DENIED',
    'LAST SEEN',
    'CREDENTIALS',
    'REVOCATION',
    'AUDIT',
    ...(opts.wide ? ['SUSPENDED AT', 'REASON', 'LAST DENIAL'] : []),
  ];
  const rows = agents.map((a) => [
    ...(opts.namespaces ? [a.namespace] : []),
    a.name,
    a.ready,
    suspendedText(a),
    String(a.allowed),
    String(a.denied),
    age(a.lastSeen, now),
    String(a.activeCredentials),
    a.revocation,
    auditText(a),
    ...(opts.wide ? [a.suspendedAt ?? '-', a.suspendReason ?? '-', a.lastDenialReason ?? '-'] : []),
  ]);
  return formatColumns(header, rows);
}

/** The overview table: one line per namespace. */
export function formatOverview(overviews: readonly NamespaceOverview[]): string {
  if (overviews.length === 0) return 'No Warden objects found.';
  return formatColumns(
    [
      'NAMESPACE',
      'AGENTS',
      'READY',
      'SUSPENDED',
      'POLICIES',
      'PROVIDERS',
      'ISSUED',
      'ALLOWED',
      'DENIED',
      'AUDIT',
    ],
    overviews.map((o) => [
      o.namespace,
      String(o.agents),
      String(o.ready),
      String(o.suspended),
      `${o.policiesReady}/${o.policies} ready`,
      `${o.providersReady}/${o.providers} ready`,
      String(o.credentialsIssued),
      String(o.allowed),
      String(o.denied),
      o.auditHealthy ? `ok (${o.auditRecords} records)` : 'PROBLEMS',
    ]),
  );
}
