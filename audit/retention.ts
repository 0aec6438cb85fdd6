/**
 * The `--audit-retention` value of `warden controller`: how long AuditRecords are kept. A Go
 * duration ("720h", "90m") or whole days ("30d", the unit auditors think in); at least one minute,
 * so a typo like "30s" cannot wipe the trail. "0" or "" keeps records forever.
 */
import { parseDuration } from '../core/api/duration.js';

const MIN_RETENTION_MS = 60_000;

/** Milliseconds, or undefined for "keep forever". Throws an Error a person can act on. */
export function parseRetention(text: string): number | undefined {
  const t = text.trim();
  if (t === '' || t === '0') return undefined;
  const days = /^([0-9]{1,5})d$/.exec(t);
  const ms = days ? Number(days[1]) * 86_400_000 : parseDuration(t);
  if (ms === undefined) {
    throw new Error(
      `--audit-retention: "${text}" is not a duration; use e.g. 30d, 720h or 90m (0 keeps records forever)`,
    );
  }
  if (ms < MIN_RETENTION_MS) {
    throw new Error(
      `--audit-retention: ${text} is shorter than one minute; use e.g. 30d (0 keeps records forever)`,
    );
  }
  return ms;
}

/**
 * `--audit-max-records-per-agent` / `--audit-max-records-per-namespace`: a whole number of
 * AuditRecords; 0 sets no limit. Each record holds at most `--audit-batch-size` entries and 256 KiB,
 * so a record limit bounds the bytes in etcd too.
 */
export function parseRecordLimit(flag: string, text: string): number | undefined {
  const t = text.trim();
  if (!/^[0-9]{1,9}$/.test(t)) {
    throw new Error(`${flag}: "${text}" is not a whole number of records; use e.g. 1000 (0 sets no limit)`);
  }
  const n = Number(t);
  return n === 0 ? undefined : n;
}
