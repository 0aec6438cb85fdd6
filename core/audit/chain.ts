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

/**
 * sha256 (hex) of a record's canonical spec without its `digest` and `signature` fields (the
 * signature signs the digest, core/audit/signature.ts; records written before signing have none,
 * so their digests are unchanged).
 */
export function digestOf(spec: Omit<AuditRecordSpec, 'digest'> | AuditRecordSpec): string {
  const { digest: _ignored, signature: _signature, ...rest } = spec as AuditRecordSpec;
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

/**
 * What can be wrong with a trail. Each kind belongs to one of the four classes `kubectl warden
 * audit --verify` names with its own exit bit (core/audit/verify.ts, PROBLEM_CLASS).
 */
export type ChainProblemKind =
  | 'forged'
  | 'altered'
  | 'gap'
  | 'broken-link'
  | 'duplicate'
  | 'missing-start'
  | 'truncated';

/**
 * previousDigest of a first record written at a sequence above 0 because forged records took
 * every earlier slot (the schema needs a non-empty previousDigest above sequence 0, and there is
 * no genuine record to link to).
 */
export const GENESIS_DIGEST = '0'.repeat(64);

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

/** Something a reader should know that is not a problem (e.g. records from before signing). */
export interface ChainNote {
  kind: 'legacy' | 'unanchored' | 'pruned';
  agent: string;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Records checked, per agent. */
  records: number;
  entries: number;
  problems: ChainProblem[];
  notes: ChainNote[];
}

/**
 * How a record's signature stands (decided by core/audit/verify.ts): signed by a published audit
 * key; legacy (unsigned, created before audit signing began); or forged (anything else).
 */
export type RecordStanding = 'signed' | 'legacy' | 'forged';

export interface NamedRecord {
  name?: string;
  spec: AuditRecordSpec;
  /** Absent: the record is taken as the controller's and only digests and links are checked. */
  standing?: RecordStanding;
  /** Why a forged record is not the controller's. */
  why?: string;
  /**
   * Whether the digest matched the content, when checked already (a streaming reader checks each
   * record as it arrives and keeps `spec` without its entries); absent: checked here.
   */
  digestOk?: boolean;
  /** The number of entries, when `spec.entries` was dropped after checking. */
  entryCount?: number;
}

/**
 * The newest record known elsewhere (the AgentIdentity's signed status.audit.head): a chain
 * ending before it lost its newest records. A number is a sequence without digest.
 */
export type ChainAnchor = number | { sequence: number; digest: string };

/**
 * Checks every agent's chain: each record's digest matches its content, sequences run from 0
 * (or from after the retention cut) without gaps or duplicates, each previousDigest equals the
 * digest of the record before it, and the chain reaches its anchored head.
 *
 * Forged records are reported and left out of the chain: the controller never chains onto a
 * record it did not sign, it skips the slot, so the next genuine record links to the genuine
 * one before the forged slots (a skip that is not a gap).
 */
export function verifyChain(
  records: NamedRecord[],
  anchors: Record<string, ChainAnchor> = {},
  pruned: Record<string, PrunedThrough> = {},
): VerifyResult {
  const problems: ChainProblem[] = [];
  const notes: ChainNote[] = [];
  const byAgent = new Map<string, NamedRecord[]>();
  let entries = 0;
  for (const r of records) {
    entries += r.entryCount ?? r.spec.entries.length;
    const list = byAgent.get(r.spec.agent) ?? [];
    list.push(r);
    byAgent.set(r.spec.agent, list);
  }
  const agents = new Set([...byAgent.keys(), ...Object.keys(anchors)]);
  for (const agent of agents) {
    const list = (byAgent.get(agent) ?? []).sort(
      (a, b) => a.spec.sequence - b.spec.sequence || (a.name ?? '').localeCompare(b.name ?? ''),
    );
    const forgedAt = new Set<number>();
    for (const r of list) {
      if (r.standing !== 'forged') continue;
      forgedAt.add(r.spec.sequence);
      problems.push({
        ...at(r),
        kind: 'forged',
        message: `record ${label(r)} was not written by the Warden controller: ${r.why ?? 'no valid signature'}`,
      });
    }
    /** Every sequence in from..to is held by a forged record (the controller skipped them). */
    const skipped = (from: number, to: number) => {
      for (let s = from; s <= to; s++) if (!forgedAt.has(s)) return false;
      return true;
    };
    const chain = list.filter((r) => r.standing !== 'forged');
    const cut = pruned[agent];
    let prev: NamedRecord | undefined;
    for (const r of chain) {
      const { sequence } = r.spec;
      if (!(r.digestOk ?? digestOf(r.spec) === r.spec.digest)) {
        problems.push({
          ...at(r),
          kind: 'altered',
          message: `record ${label(r)} was altered: its digest does not match its content`,
        });
      }
      if (!prev && cut && sequence <= cut.sequence + 1) {
        // Retention pruned 0..cut.sequence. Records at or below the cut may still exist (the
        // pruner writes the cut before deleting); the first record after it must link to it.
        if (sequence === cut.sequence + 1 && r.spec.previousDigest !== cut.digest) {
          problems.push({
            ...at(r),
            kind: 'broken-link',
            message: `record ${label(r)} does not follow the pruned record ${agent}#${cut.sequence}: previousDigest differs from the retention anchor`,
          });
        }
      } else if (!prev) {
        const from = cut ? cut.sequence + 1 : 0;
        const linksToStart = r.spec.previousDigest === (cut ? cut.digest : GENESIS_DIGEST);
        if (sequence !== from && !(skipped(from, sequence - 1) && linksToStart)) {
          problems.push({
            ...at(r),
            kind: 'missing-start',
            message: cut
              ? `records ${from}..${sequence - 1} of agent ${agent} are missing (retention pruned only 0..${cut.sequence})`
              : `records 0..${sequence - 1} of agent ${agent} are missing`,
          });
        }
      } else if (sequence === prev.spec.sequence) {
        problems.push({
          ...at(r),
          kind: 'duplicate',
          message: `two records of agent ${agent} have sequence ${sequence} (${label(prev)} and ${label(r)})`,
        });
        continue;
      } else if (sequence !== prev.spec.sequence + 1) {
        const from = prev.spec.sequence + 1;
        if (!skipped(from, sequence - 1)) {
          problems.push({
            ...at(r),
            kind: 'gap',
            message: `records ${from}..${sequence - 1} of agent ${agent} are missing (deleted?)`,
          });
        } else if (r.spec.previousDigest !== prev.spec.digest) {
          problems.push({
            ...at(r),
            kind: 'gap',
            message: `the record ${label(r)} follows is missing: forged records hold sequences ${from}..${sequence - 1} in its place`,
          });
        }
      } else if (r.spec.previousDigest !== prev.spec.digest) {
        problems.push({
          ...at(r),
          kind: 'broken-link',
          message: `record ${label(r)} does not follow ${label(prev)}: previousDigest differs`,
        });
      }
      prev = r;
    }
    const legacy = chain.filter((r) => r.standing === 'legacy');
    if (legacy.length > 0) {
      const last = legacy[legacy.length - 1] as NamedRecord;
      const voucher = chain.find((r) => r.standing === 'signed' && r.spec.sequence > last.spec.sequence);
      notes.push({
        kind: 'legacy',
        agent,
        message:
          `records ${legacy[0]?.spec.sequence}..${last.spec.sequence} of agent ${agent} are unsigned: written before audit signing began` +
          (voucher
            ? `; the signed record ${label(voucher)} chains onto them, so they cannot have changed since`
            : '; no signed record follows them, so they prove nothing against forgery'),
      });
    }
    const raw = anchors[agent];
    if (raw === undefined) continue;
    const anchor = typeof raw === 'number' ? { sequence: raw } : raw;
    if (!prev) {
      if (anchor.sequence > (cut?.sequence ?? -1)) {
        const from = (cut?.sequence ?? -1) + 1;
        problems.push({
          agent,
          sequence: anchor.sequence,
          kind: 'truncated',
          message: `records ${from}..${anchor.sequence} of agent ${agent} are missing: the anchored head is #${anchor.sequence} and no record is left`,
        });
      }
    } else if (prev.spec.sequence < anchor.sequence) {
      problems.push({
        agent,
        sequence: anchor.sequence,
        kind: 'truncated',
        message: `records ${prev.spec.sequence + 1}..${anchor.sequence} of agent ${agent} are missing: the anchored head is #${anchor.sequence} but the newest record is ${label(prev)} (the newest were deleted?)`,
      });
    } else if ('digest' in anchor) {
      const atHead = chain.find((r) => r.spec.sequence === anchor.sequence);
      if (atHead && atHead.spec.digest !== anchor.digest) {
        problems.push({
          ...at(atHead),
          kind: 'altered',
          message: `record ${label(atHead)} is not the record the controller anchored as head #${anchor.sequence}: digests differ`,
        });
      }
    }
  }
  return { ok: problems.length === 0, records: records.length, entries, problems, notes };
}

function at(r: NamedRecord): { agent: string; sequence: number; name?: string } {
  return { agent: r.spec.agent, sequence: r.spec.sequence, ...(r.name ? { name: r.name } : {}) };
}

function label(r: NamedRecord): string {
  return r.name ?? `${r.spec.agent}#${r.spec.sequence}`;
}
