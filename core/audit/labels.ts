/**
 * The labels of AuditRecords, written by the writer and read by selectors (the retention pass, the
 * writer's own lookups, `kubectl warden audit`). Every value has bounded cardinality per record and
 * is derived from the record's spec. Labels are not signed: a record whose labels were edited is at
 * worst left out of a filtered listing. `--verify` selects by agent only, and every record it
 * reads is checked against its signed spec. Every reader re-derives the labels of the records it
 * lists from their signed spec (labelMismatches) and names a relabelled one, so a relabel that
 * hides a record from one query shows in any query or verification that lists it.
 */
import { createHash } from 'node:crypto';
import type { AuditRecordSpec } from '../api/index.js';
import { LABEL_AGENT, LABEL_AUDIT_DENIED, LABEL_AUDIT_HOUR } from '../constants.js';

/** Label values are at most 63 characters; long agent names are hashed. */
export function agentLabelValue(agent: string): string {
  return agent.length <= 63 ? agent : `h-${createHash('sha256').update(agent).digest('hex').slice(0, 40)}`;
}

const HOUR_MS = 3_600_000;

/** `YYYY-MM-DDTHH` (UTC) of a time in ms: a valid label value. */
export function hourLabelValue(ms: number): string {
  return new Date(Math.floor(ms / HOUR_MS) * HOUR_MS).toISOString().slice(0, 13);
}

/** The labels of a record. */
export function auditRecordLabels(
  spec: Pick<AuditRecordSpec, 'agent' | 'endTime' | 'entries'>,
): Record<string, string> {
  const end = Date.parse(spec.endTime);
  return {
    [LABEL_AGENT]: agentLabelValue(spec.agent),
    ...(Number.isFinite(end) ? { [LABEL_AUDIT_HOUR]: hourLabelValue(end) } : {}),
    [LABEL_AUDIT_DENIED]: String(spec.entries.some((e) => e.decision === 'Deny')),
  };
}

/** At most this many hour values in one selector; a longer range lists without a time selector. */
export const MAX_SELECTED_HOURS = 24 * 14;
/**
 * Entry times come from brokers' clocks, and a record may span a while (entries held back while
 * the API server was down): hours after the range's end are listed too, so a record whose
 * endTime is up to a day past it is still found.
 */
const LATE_MARGIN_HOURS = 24;

/**
 * Label selectors that together list every record that can hold an entry at or after `sinceMs`
 * (and, with the margin, up to `untilMs`), or undefined when the range is too long to select by
 * label. Records written before these labels existed carry none: the second selector lists them.
 */
export function timeSelectors(sinceMs: number, untilMs: number): string[] | undefined {
  const from = Math.floor(sinceMs / HOUR_MS);
  const to = Math.floor(untilMs / HOUR_MS) + LATE_MARGIN_HOURS;
  if (!Number.isFinite(from) || !Number.isFinite(to) || to - from + 1 > MAX_SELECTED_HOURS) return undefined;
  const hours: string[] = [];
  for (let h = from; h <= to; h++) hours.push(hourLabelValue(h * HOUR_MS));
  return [`${LABEL_AUDIT_HOUR} in (${hours.join(',')})`, `!${LABEL_AUDIT_HOUR}`];
}

/**
 * The labels of a listed record that disagree with the ones its (signed) spec derives: the record
 * was relabelled after the writer created it. A label the record lacks is not a mismatch (records
 * written before a label existed carry only the agent label). Empty when they agree.
 */
export function labelMismatches(record: {
  readonly metadata?: { readonly labels?: Readonly<Record<string, string>> | undefined } | undefined;
  readonly spec: Pick<AuditRecordSpec, 'agent' | 'endTime' | 'entries'>;
}): Array<{ label: string; found: string; derived: string }> {
  const found = record.metadata?.labels ?? {};
  const derived = auditRecordLabels(record.spec);
  const out: Array<{ label: string; found: string; derived: string }> = [];
  for (const [label, value] of Object.entries(derived)) {
    const has = found[label];
    if (has !== undefined && has !== value) out.push({ label, found: has, derived: value });
  }
  return out;
}
