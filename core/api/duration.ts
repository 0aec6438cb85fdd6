/**
 * Go-style durations as used in the CRDs ("5m", "1h30m", "250ms"), the format
 * `metav1.Duration` and kubectl users know.
 */
import { DURATION } from './patterns.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration into milliseconds. Returns undefined for anything the CRD pattern
 * would reject, so callers decide how to report it.
 */
export function parseDuration(text: string): number | undefined {
  // Durations come from a handful of CRD fields and every mint parses three of them: remember
  // the answers (bounded, so hostile input cannot grow it).
  if (parsed.has(text)) return parsed.get(text);
  const ms = parseUncached(text);
  if (parsed.size >= PARSED_MAX) parsed.clear();
  parsed.set(text, ms);
  return ms;
}

const PARSED_MAX = 256;
const parsed = new Map<string, number | undefined>();

function parseUncached(text: string): number | undefined {
  if (!DURATION.re.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? Number.NaN);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Formats milliseconds the way Go does for whole units ("1h30m", "5m", "90s" → "1m30s", "250ms"). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0)
    throw new RangeError(`duration must be a finite, non-negative number of ms, got ${ms}`);
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  let rest = Math.round(ms);
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  if (rest > 0) out += `${rest / 1000}s`;
  return out;
}
