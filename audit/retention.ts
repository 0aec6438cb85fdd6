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
