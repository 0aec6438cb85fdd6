/**
 * The tamper-evident audit chain: each AuditRecord of an agent carries the sha256 of
 * the previous record's canonical spec, and its own digest. Deleting, reordering or
 * editing a record breaks a link that `verifyChain` reports.
 *
 * Pure: no I/O. The authority seals records (sealRecord); `kubectl warden audit
 * --verify` checks them (verifyChain).
 */
import { createHash } from 'node:crypto';
import type { AuditEntry, AuditRecordSpec } from '../api/index.js';

/** JSON with object keys sorted at every level, so the same value always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** sha256 (hex) of a record's canonical spec without its `digest` field. */
export function digestOf(spec: Omit<AuditRecordSpec, 'digest'> | AuditRecordSpec): string {
  const { digest: _ignored, ...rest } = spec as AuditRecordSpec;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

export interface UnsealedRecord {
  agent: string;
  sequence: number;
  previousDigest: string;
  entries: AuditEntry[];
}

/** Completes a record: start/end times from its entries and its digest. */
export function sealRecord(r: UnsealedRecord): AuditRecordSpec {
  if (r.entries.length === 0) throw new Error(`audit record ${r.agent}#${r.sequence}: no entries to seal`);
  const times = r.entries.map((e) => e.time).sort();
  const spec = {
    agent: r.agent,
    sequence: r.sequence,
    previousDigest: r.previousDigest,
    startTime: times[0] as string,
    endTime: times[times.length - 1] as string,
    entries: r.entries,
  };
  return { ...spec, digest: digestOf(spec) };
}

/** The object name of an agent's record at a sequence: sortable, unique per agent. */
export function recordName(agent: string, sequence: number): string {
  // Agent names may be up to 253 chars; keep the suffix and stay within the name limit.
  const suffix = `-${String(sequence).padStart(10, '0')}`;
  return `${agent.slice(0, 253 - suffix.length)}${suffix}`;
}

export type ChainProblemKind = 'altered' | 'gap' | 'broken-link' | 'duplicate' | 'missing-start';

/**
 * Where retention pruned an agent's chain: records 0..sequence were deleted on purpose and the
 * last pruned record had this digest. The retention reconciler writes it (as the
 * AgentIdentity status.audit.prunedThrough, see formatPrunedThrough) BEFORE deleting, so the
 * verifier can tell retention from tampering: the first remaining record must be sequence+1 and
 * link to `digest`.
 */
export interface PrunedThrough {
  sequence: number;
  digest: string;
}

/** `<sequence>:<sha256 hex>`, the annotation value of a PrunedThrough. */
export function formatPrunedThrough(p: PrunedThrough): string {
  return `${p.sequence}:${p.digest}`;
}

/** Parses formatPrunedThrough's output; undefined for anything else (a bad value proves nothing). */
export function parsePrunedThrough(value: string | undefined): PrunedThrough | undefined {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(value ?? '');
  return m ? { sequence: Number(m[1]), digest: m[2] as string } : undefined;
}

export interface ChainProblem {
  kind: ChainProblemKind;
  agent: string;
  sequence: number;
  /** Object name, where known. */
  name?: string;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Records checked, per agent. */
  records: number;
  entries: number;
  problems: ChainProblem[];
}

export interface NamedRecord {
  name?: string;
  spec: AuditRecordSpec;
}

/**
 * Checks every agent's chain: each record's digest matches its content, sequences run
 * from 0 without gaps or duplicates, and each previousDigest equals the digest of the
 * record before it. `anchors` (agent → last sequence known elsewhere, e.g. from the
 * AgentIdentity status) also catch deletion of the newest records.
 */
export function verifyChain(
  records: NamedRecord[],
  anchors: Record<string, number> = {},
  pruned: Record<string, PrunedThrough> = {},
): VerifyResult {
  const problems: ChainProblem[] = [];
  const byAgent = new Map<string, NamedRecord[]>();
  let entries = 0;
  for (const r of records) {
    entries += r.spec.entries.length;
    const list = byAgent.get(r.spec.agent) ?? [];
    list.push(r);
    byAgent.set(r.spec.agent, list);
  }
  for (const [agent, list] of byAgent) {
    list.sort((a, b) => a.spec.sequence - b.spec.sequence);
    let prev: NamedRecord | undefined;
    for (const r of list) {
      const { sequence } = r.spec;
      const at = { agent, sequence, ...(r.name ? { name: r.name } : {}) };
      if (digestOf(r.spec) !== r.spec.digest) {
        problems.push({
          ...at,
          kind: 'altered',
          message: `record ${label(r)} was altered: its digest does not match its content`,
        });
      }
      const cut = pruned[agent];
      if (!prev && cut && sequence <= cut.sequence + 1) {
        // Retention pruned 0..cut.sequence. Records at or below the cut may still exist (the
        // pruner writes the cut before deleting); the first record after it must link to it.
        if (sequence === cut.sequence + 1 && r.spec.previousDigest !== cut.digest) {
          problems.push({
            ...at,
            kind: 'broken-link',
            message: `record ${label(r)} does not follow the pruned record ${agent}#${cut.sequence}: previousDigest differs from the retention anchor`,
          });
        }
      } else if (!prev) {
        if (sequence !== 0) {
          problems.push({
            ...at,
            kind: 'missing-start',
            message: cut
              ? `records ${cut.sequence + 1}..${sequence - 1} of agent ${agent} are missing (retention pruned only 0..${cut.sequence})`
              : `records 0..${sequence - 1} of agent ${agent} are missing`,
          });
        }
      } else if (sequence === prev.spec.sequence) {
        problems.push({
          ...at,
          kind: 'duplicate',
          message: `two records of agent ${agent} have sequence ${sequence}`,
        });
      } else if (sequence !== prev.spec.sequence + 1) {
        problems.push({
          ...at,
          kind: 'gap',
          message: `records ${prev.spec.sequence + 1}..${sequence - 1} of agent ${agent} are missing (deleted?)`,
        });
      } else if (r.spec.previousDigest !== prev.spec.digest) {
        problems.push({
          ...at,
          kind: 'broken-link',
          message: `record ${label(r)} does not follow ${label(prev)}: previousDigest differs`,
        });
      }
      prev = r;
    }
    const anchor = anchors[agent];
    if (prev && anchor !== undefined && prev.spec.sequence < anchor) {
      problems.push({
        agent,
        sequence: anchor,
        kind: 'gap',
        message: `records ${prev.spec.sequence + 1}..${anchor} of agent ${agent} are missing (the newest were deleted?)`,
      });
    }
  }
  for (const [agent, anchor] of Object.entries(anchors)) {
    if (!byAgent.has(agent) && anchor >= 0 && anchor > (pruned[agent]?.sequence ?? -1)) {
      problems.push({
        agent,
        sequence: 0,
        kind: 'missing-start',
        message: `all ${anchor + 1} records of agent ${agent} are missing`,
      });
    }
  }
  return { ok: problems.length === 0, records: records.length, entries, problems };
}

function label(r: NamedRecord): string {
  return r.name ?? `${r.spec.agent}#${r.spec.sequence}`;
}
