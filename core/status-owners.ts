/**
 * Who writes which status field (docs/conventions.md §5): every status field of every Warden kind
 * has exactly one owner, named by the field manager its writes carry. The Manager's status writers
 * (kube/status.ts) refuse a field their field manager does not own here, and
 * core/status-owners.test.ts holds this table against the one in docs/conventions.md §5, the CRDs'
 * status schemas and the field-manager constants, so none of the four can change alone.
 */
import {
  AUDIT_FIELD_MANAGER,
  CIRCUIT_BREAKER_FIELD_MANAGER,
  FIELD_MANAGER,
  RETENTION_FIELD_MANAGER,
  REVOCATION_FIELD_MANAGER,
  STATS_FIELD_MANAGER,
  USAGE_FIELD_MANAGER,
} from './constants.js';

export type StatusKind = 'AgentIdentity' | 'AccessPolicy' | 'CredentialProvider';

export interface StatusOwner {
  readonly kind: StatusKind;
  /** Status fields, relative to `status` and dotted below it (`audit.head`). */
  readonly fields: readonly string[];
  readonly fieldManager: string;
  /** The code that writes them. */
  readonly writer: string;
}

export const STATUS_OWNERS: readonly StatusOwner[] = [
  {
    kind: 'AgentIdentity',
    fields: ['conditions', 'observedGeneration'],
    fieldManager: FIELD_MANAGER,
    writer: 'operator/reconcilers/agentidentity.ts',
  },
  {
    kind: 'AgentIdentity',
    fields: ['revocation'],
    fieldManager: REVOCATION_FIELD_MANAGER,
    writer: 'operator/reconcilers/revocation.ts',
  },
  {
    kind: 'AgentIdentity',
    fields: ['decisions', 'lastSeen', 'lastAttestation', 'audit.dropped'],
    fieldManager: STATS_FIELD_MANAGER,
    writer: 'authority/decision-stats.ts',
  },
  {
    kind: 'AgentIdentity',
    fields: ['usage'],
    fieldManager: USAGE_FIELD_MANAGER,
    writer: 'authority/tool-usage-stats.ts',
  },
  {
    kind: 'AgentIdentity',
    fields: ['audit.prunedThrough', 'audit.pruned'],
    fieldManager: RETENTION_FIELD_MANAGER,
    writer: 'operator/reconcilers/audit-retention.ts',
  },
  {
    kind: 'AgentIdentity',
    fields: ['audit.head', 'audit.forged'],
    fieldManager: AUDIT_FIELD_MANAGER,
    writer: 'audit/writer.ts, audit/forged-status.ts',
  },
  {
    kind: 'AgentIdentity',
    fields: ['circuitBreaker'],
    fieldManager: CIRCUIT_BREAKER_FIELD_MANAGER,
    writer: 'authority/circuit-breaker.ts',
  },
  {
    kind: 'AccessPolicy',
    fields: ['conditions', 'matchedAgents', 'matchedAgentCount', 'observedGeneration'],
    fieldManager: FIELD_MANAGER,
    writer: 'operator/reconcilers/accesspolicy.ts',
  },
  {
    kind: 'CredentialProvider',
    fields: ['conditions', 'observedGeneration', 'standingSecret'],
    fieldManager: FIELD_MANAGER,
    writer: 'operator/reconcilers/credentialprovider.ts',
  },
  {
    kind: 'CredentialProvider',
    fields: ['issuedCount'],
    fieldManager: STATS_FIELD_MANAGER,
    writer: 'authority/issuance-stats.ts',
  },
];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The fields of a status merge patch (`status`, as sent) that `fieldManager` does not own on
 * `kind`, dotted; empty when the write is allowed. An object is looked into only where the table
 * splits it among owners (`audit`); a field owned whole is not.
 */
export function unownedStatusFields(
  kind: string,
  fieldManager: string,
  status: Record<string, unknown>,
): string[] {
  const owned = STATUS_OWNERS.filter((o) => o.kind === kind && o.fieldManager === fieldManager).flatMap(
    (o) => o.fields,
  );
  const out: string[] = [];
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      if (v === undefined) continue;
      const path = `${prefix}${k}`;
      if (owned.includes(path)) continue;
      if (isPlainObject(v) && owned.some((f) => f.startsWith(`${path}.`))) walk(v, `${path}.`);
      else out.push(path);
    }
  };
  walk(status, '');
  return out;
}
