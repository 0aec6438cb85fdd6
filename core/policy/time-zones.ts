/**
 * Fast time-zone conversion for the CEL timestamp methods that take a zone
 * (`request.time.getHours('Europe/Berlin')`).
 *
 * @marcbachmann/cel-js implements them as `new Date(d.toLocaleString('en-US', {timeZone}))`
 * followed by local getters. Each toLocaleString builds an ICU formatter, which
 * costs hundreds of microseconds on the machines we measured (docs/adr/0002) —
 * far over the decision budget, and a cheap way for a caller to burn CPU. The
 * timestamps Warden hands to CEL therefore carry their own toLocaleString that
 * answers that exact call from a cached UTC offset per zone and 15-minute
 * bucket (every real zone transition falls on a quarter hour), in the same
 * wall-clock form the library parses back. Any other toLocaleString call takes
 * the normal path, and if the library changes its implementation results stay
 * correct (just slower); the time-zone tests pin the behaviour.
 *
 * The library parses the wall-clock string as local time, so the process should
 * run with TZ=UTC (the container default); in a zone with DST, the one
 * skipped local hour per year would shift by an hour.
 */

const BUCKET_MS = 15 * 60 * 1000;
const MAX_ZONES = 64;
const MAX_BUCKETS_PER_ZONE = 4096;

interface ZoneCache {
  readonly format: Intl.DateTimeFormat;
  readonly offsets: Map<number, number>;
  /** The most recent bucket and its offset: requests arrive in time order. */
  lastBucket: number;
  lastOffset: number;
}

const zones = new Map<string, ZoneCache>();

function zone(timeZone: string): ZoneCache {
  let z = zones.get(timeZone);
  if (!z) {
    // Throws RangeError for an unknown zone, like toLocaleString would.
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    // Zone names may come from request data: keep the cache bounded.
    if (zones.size >= MAX_ZONES) zones.clear();
    z = { format, offsets: new Map(), lastBucket: Number.NaN, lastOffset: 0 };
    zones.set(timeZone, z);
  }
  return z;
}

/** UTC offset in ms of `timeZone` at the instant `ms` (cached per 15-minute bucket). */
export function zoneOffsetMs(timeZone: string, ms: number): number {
  const z = zone(timeZone);
  const bucket = Math.floor(ms / BUCKET_MS);
  if (bucket === z.lastBucket) return z.lastOffset;
  let offset = z.offsets.get(bucket);
  if (offset === undefined) {
    const at = bucket * BUCKET_MS;
    const parts: Record<string, number> = {};
    for (const p of z.format.formatToParts(at)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
    const wall = Date.UTC(
      parts.year ?? 1970,
      (parts.month ?? 1) - 1,
      parts.day ?? 1,
      parts.hour ?? 0,
      parts.minute ?? 0,
      parts.second ?? 0,
    );
    offset = wall - at;
    if (z.offsets.size >= MAX_BUCKETS_PER_ZONE) z.offsets.clear();
    z.offsets.set(bucket, offset);
  }
  z.lastBucket = bucket;
  z.lastOffset = offset;
  return offset;
}

/**
 * Wall-clock time in `timeZone` as a local ISO string ("2026-01-05T11:00:00"),
 * whole seconds like the native en-US string the library parses.
 */
export function wallClock(ms: number, timeZone: string): string {
  return new Date(ms + zoneOffsetMs(timeZone, ms)).toISOString().slice(0, 19);
}

const nativeToLocaleString = Date.prototype.toLocaleString;

const LAST_ZONE = Symbol('lastZone');
const LAST_VALUE = Symbol('lastValue');

interface ZonedDate extends Date {
  [LAST_ZONE]?: string;
  [LAST_VALUE]?: string;
}

/**
 * Whether this process runs in UTC. Then the wall-clock time can be handed to
 * the library's `new Date(…)` as a number (wall-clock fields read back by its
 * local getters unchanged), which skips parsing a string on every getter call.
 */
const PROCESS_IS_UTC = ['UTC', 'Etc/UTC', 'Etc/GMT', 'GMT', 'Etc/Universal', 'Universal'].includes(
  Intl.DateTimeFormat().resolvedOptions().timeZone,
);

/** True when `timeZone` is the only option (checked without allocating, on every zone getter call). */
function onlyTimeZone(options: Intl.DateTimeFormatOptions): boolean {
  for (const key in options) if (key !== 'timeZone') return false;
  return true;
}

/**
 * toLocaleString for Warden's timestamps: answers the library's zone-conversion
 * call from the offset cache. In a UTC process it returns the wall-clock time
 * as a number — the library only passes the value to `new Date()`, which
 * accepts both — and otherwise a local-time ISO string, memoised per zone.
 */
function zonedToLocaleString(
  this: ZonedDate,
  locales?: Intl.LocalesArgument,
  options?: Intl.DateTimeFormatOptions,
): string {
  if (locales === 'en-US' && options && typeof options.timeZone === 'string' && onlyTimeZone(options)) {
    if (PROCESS_IS_UTC) {
      const ms = this.getTime();
      // Whole seconds, like the native en-US string the library expects.
      const wall = Math.floor((ms + zoneOffsetMs(options.timeZone, ms)) / 1000) * 1000;
      // A number where a string is declared: see the function comment; `new Date(wall)` in the library.
      return wall as unknown as string;
    }
    if (this[LAST_ZONE] !== options.timeZone) {
      this[LAST_VALUE] = wallClock(this.getTime(), options.timeZone);
      this[LAST_ZONE] = options.timeZone;
    }
    return this[LAST_VALUE] as string;
  }
  return nativeToLocaleString.call(this, locales, options);
}

/**
 * A Date whose zone conversions are fast. Its prototype has no own
 * `constructor`, so `value.constructor` is still `Date` — which is how the CEL
 * library recognises timestamps — while toLocaleString comes from the prototype
 * (no per-instance property, no hidden-class transition per request).
 */
class ZonedTimestamp extends Date {}
Object.defineProperty(ZonedTimestamp.prototype, 'toLocaleString', {
  value: zonedToLocaleString,
  writable: true,
  configurable: true,
});
Reflect.deleteProperty(ZonedTimestamp.prototype, 'constructor');

/** A copy of `time` whose zone conversions are fast; still a timestamp to CEL. */
export function celTimestamp(time: Date): Date {
  return new ZonedTimestamp(time.getTime());
}
