/**
 * Entry ids: what makes a broker's audit shipping idempotent (docs/faults.md "Audit: nothing
 * answered is lost"). The broker gives every decision an id when it spools it,
 * `<source>-<sequence>`: `source` is 16 hex digits drawn once per broker process, `sequence`
 * counts from 1 in that process. A broker ships its entries in sequence order with one request in
 * flight, and ships again from its oldest unacknowledged entry, so for one source the trail only
 * ever needs the entries above the highest sequence it already holds: `dedupe` keeps exactly
 * those. Pure; the writer keeps the watermarks (audit/writer.ts).
 */
import type { AuditEntry } from '../api/index.js';
import { AUDIT_ENTRY_ID } from '../api/patterns.js';

/** The id format (the AuditRecord schema's pattern of spec.entries[].id). */
export const ENTRY_ID_PATTERN = AUDIT_ENTRY_ID.re;
const ID_PARTS = /^([0-9a-f]{16})-([1-9][0-9]{0,14})$/;

export interface EntryId {
  source: string;
  sequence: number;
}

export function parseEntryId(id: string): EntryId | undefined {
  const m = ID_PARTS.exec(id);
  if (!m) return undefined;
  return { source: m[1] as string, sequence: Number(m[2]) };
}

export function formatEntryId(source: string, sequence: number): string {
  return `${source}-${sequence}`;
}

/**
 * The watermark key of an entry's source: the pod (stamped by the authority from the session,
 * never from the body) and the broker process. A broker can only ever shadow its own pod's entries.
 */
export function sourceKey(entry: AuditEntry): string | undefined {
  if (entry.id === undefined) return undefined;
  const id = parseEntryId(entry.id);
  return id ? `${entry.pod ?? ''}/${id.source}` : undefined;
}

/** Highest sequence held in the trail, per source key. */
export type Watermarks = Map<string, number>;

/** Raises the watermarks by entries now in the trail. */
export function noteEntries(marks: Watermarks, entries: readonly AuditEntry[]): void {
  for (const e of entries) {
    const key = sourceKey(e);
    if (key === undefined) continue;
    const seq = parseEntryId(e.id as string)?.sequence ?? 0;
    if (seq > (marks.get(key) ?? 0)) marks.set(key, seq);
  }
}

/**
 * Splits a batch into the entries to write and the duplicates of entries the trail already holds
 * (at or below the source's watermark, or repeated earlier in the same batch). Entries without an
 * id are always written. Does not change `marks`.
 */
export function dedupe(
  marks: Watermarks,
  batch: readonly AuditEntry[],
): { fresh: AuditEntry[]; duplicates: AuditEntry[] } {
  const running = new Map<string, number>();
  const fresh: AuditEntry[] = [];
  const duplicates: AuditEntry[] = [];
  for (const e of batch) {
    const key = sourceKey(e);
    if (key === undefined) {
      fresh.push(e);
      continue;
    }
    const seq = parseEntryId(e.id as string)?.sequence ?? 0;
    const high = running.get(key) ?? marks.get(key) ?? 0;
    if (seq <= high) {
      duplicates.push(e);
      continue;
    }
    running.set(key, seq);
    fresh.push(e);
  }
  return { fresh, duplicates };
}
