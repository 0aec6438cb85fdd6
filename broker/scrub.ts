/**
 * Response scrubbing: an upstream that echoes the injected credential (in a debug endpoint, an
 * error page, a reflected header) must not hand it to the agent. The exact credential values are
 * replaced with REDACTED, also when an occurrence straddles two chunks of a streamed body.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { REDACTED } from './constants.js';

const REDACTED_BYTES = Buffer.from(REDACTED);

/**
 * Incremental scrubber (pure state machine; the Transform below is its stream adapter).
 * Holds back, between chunks, only a trailing run of bytes that is a prefix of some secret (at most
 * longest secret − 1 bytes), so an occurrence split across a chunk boundary is still found and
 * everything else streams through at once.
 */
export class Scrubber {
  private readonly secrets: readonly Buffer[];
  private readonly keep: number;
  private tail: Buffer = Buffer.alloc(0);
  /** How many occurrences were replaced (for audit/logs; never the values). */
  replaced = 0;

  constructor(secrets: readonly string[]) {
    // Longest first so, at the same position, "Bearer <token>" wins over "<token>".
    this.secrets = [...new Set(secrets.filter((s) => s.length > 0))]
      .map((s) => Buffer.from(s))
      .sort((a, b) => b.length - a.length);
    this.keep = Math.max(0, ...this.secrets.map((s) => s.length - 1));
  }

  /** Feed a chunk; returns what can be emitted now. */
  push(chunk: Buffer): Buffer {
    return this.run(this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk, false);
  }

  /** End of input: returns the rest. */
  end(): Buffer {
    const out = this.run(this.tail, true);
    this.tail = Buffer.alloc(0);
    return out;
  }

  /**
   * How many trailing bytes (after `pos`) could be the start of a secret: only those wait for the
   * next chunk, so a streamed event is not delayed unless it really ends in a possible secret prefix.
   */
  private heldBack(buf: Buffer, pos: number): number {
    const max = Math.min(this.keep, buf.length - pos);
    for (let k = max; k > 0; k--) {
      const tail = buf.subarray(buf.length - k);
      for (const s of this.secrets) if (s.length > k && s.subarray(0, k).equals(tail)) return k;
    }
    return 0;
  }

  private run(buf: Buffer, final: boolean): Buffer {
    if (this.secrets.length === 0) return buf;
    const out: Buffer[] = [];
    let pos = 0;
    for (;;) {
      let at = -1;
      let hit: Buffer | null = null;
      for (const s of this.secrets) {
        const i = buf.indexOf(s, pos);
        if (i >= 0 && (at < 0 || i < at)) {
          at = i;
          hit = s;
        }
      }
      if (hit === null) break;
      out.push(buf.subarray(pos, at), REDACTED_BYTES);
      this.replaced++;
      pos = at + hit.length;
    }
    const keepFrom = final ? buf.length : buf.length - this.heldBack(buf, pos);
    out.push(buf.subarray(pos, keepFrom));
    this.tail = Buffer.from(buf.subarray(keepFrom));
    return Buffer.concat(out);
  }
}

/** Stream adapter for Scrubber. */
export class ScrubTransform extends Transform {
  readonly scrubber: Scrubber;
  constructor(secrets: readonly string[]) {
    super();
    this.scrubber = new Scrubber(secrets);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.scrubber.push(chunk);
    cb(null, out.length ? out : undefined);
  }
  override _flush(cb: TransformCallback): void {
    const out = this.scrubber.end();
    cb(null, out.length ? out : undefined);
  }
}
