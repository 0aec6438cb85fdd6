/**
 * The broker's audit spool: every decision is appended to a local file, and fsynced, before the
 * agent sees the answer; entries leave the spool only once the authority says they are persisted
 * in AuditRecords (docs/faults.md "Audit: nothing answered is lost"). A broker restarted on the
 * same spool (the kubelet restarts the sidecar; the emptyDir outlives it) ships what it held.
 *
 * Layout: segment files `<n>.spool` in one directory (an emptyDir mounted into the broker container
 * only), each a sequence of JSON lines, one entry per line. Appends go to the newest segment; a
 * segment past `segmentBytes` is closed and a new one begun; a closed segment whose entries are all
 * acknowledged is deleted. A new process never appends to an old segment (a torn last line of a
 * crash stays where it is, ignored): it starts a new one.
 *
 * Group commit: appends that arrive while a write is running wait for the next one, so under load
 * one sync covers many decisions and the cost per call stays a fraction of a disk sync. Segments
 * are opened O_DSYNC, so a group is one positioned writev that returns once the data is on disk
 * (as write + fdatasync would, for the range written): one trip to the thread pool per group, not
 * two. No batch window: at the rates a broker sees (hundreds of calls/s, a sync well under a
 * millisecond) a window would only add its length to every call; the groups form by themselves
 * when calls arrive faster than a sync.
 *
 * Bounded: past `maxBytes` of live segments, appends fail with SpoolFullError (the caller decides:
 * a Required agent's call is denied, a BestEffort one is answered and the entry counted as lost).
 * Files are created 0600 in a directory the broker alone mounts; entries hold what audit entries
 * hold (no credential, only its id; header names, never values — broker/access.ts builds them).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type AuditQueue, AuditUnavailableError, type SpooledEvent } from './audit.js';

/** File mode of segments: the broker's user only. */
const SEGMENT_MODE = 0o600;
const SEGMENT = /^(\d{1,15})\.spool$/;
/** New segments: created (never reused), written only, each write durable when it returns. */
const SEGMENT_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC;

export const SPOOL_DEFAULTS = {
  /** Live segment bytes before appends are refused (chart audit.spoolMaxBytes, --audit-spool-max-bytes). */
  maxBytes: 16 * 1024 * 1024,
  /** A segment is closed past this size (and deleted once all its entries are acknowledged). */
  segmentBytes: 1024 * 1024,
} as const;

/** The spool cannot take the entry: full, or the disk refused the write. */
export class SpoolUnavailableError extends AuditUnavailableError {
  constructor(
    readonly why: 'full' | 'io',
    message: string,
  ) {
    super(message);
    this.name = 'SpoolUnavailableError';
  }
}

interface Segment {
  readonly index: number;
  readonly path: string;
  bytes: number;
  /** Entries in it not yet acknowledged. */
  live: number;
}

interface Held {
  readonly segment: Segment;
  readonly offset: number;
  readonly length: number;
}

interface PendingWrite {
  readonly line: Buffer;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export interface AuditSpoolOptions {
  readonly dir: string;
  readonly log: Logger;
  readonly maxBytes?: number;
  readonly segmentBytes?: number;
}

export class AuditSpool implements AuditQueue {
  private readonly segments: Segment[] = [];
  /** Unacknowledged entries, oldest first: where each one is. */
  private readonly held: Held[] = [];
  private active: { segment: Segment; file: FileHandle } | undefined;
  private pending: PendingWrite[] = [];
  private writing: Promise<void> | undefined;
  private closed = false;
  /** Bytes of live segments plus pending lines, kept as they change (not summed per append). */
  private liveBytes = 0;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  /** Synchronous (O_DSYNC) writes, each covering a group of appends. */
  syncs = 0;

  private constructor(private readonly o: AuditSpoolOptions) {
    this.maxBytes = o.maxBytes ?? SPOOL_DEFAULTS.maxBytes;
    this.segmentBytes = o.segmentBytes ?? SPOOL_DEFAULTS.segmentBytes;
  }

  /** Why every append fails (the directory could not be opened at start), or undefined. */
  private broken: string | undefined;

  /**
   * Opens (creating) the spool in `dir` and loads what an earlier process left unacknowledged. A
   * directory that cannot be used does not stop the broker: every append then fails with the reason
   * (audit mode Required agents' calls are denied, BestEffort ones answered and counted).
   */
  static async open(o: AuditSpoolOptions): Promise<AuditSpool> {
    const spool = new AuditSpool(o);
    try {
      await mkdir(o.dir, { recursive: true, mode: 0o700 });
      await spool.load();
    } catch (err) {
      spool.broken = `the audit spool directory ${o.dir} cannot be used: ${err instanceof Error ? err.message : String(err)}`;
      o.log.error({ err: spool.broken }, 'audit spool unavailable');
    }
    return spool;
  }

  /** Entries spooled and not yet acknowledged. */
  get length(): number {
    return this.held.length;
  }

  /** Bytes of live segments (what maxBytes bounds). */
  get bytes(): number {
    return this.liveBytes;
  }

  private async load(): Promise<void> {
    const names = (await readdir(this.o.dir))
      .map((n) => ({ n, m: SEGMENT.exec(n) }))
      .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
      .sort((a, b) => Number(a.m[1]) - Number(b.m[1]));
    let skipped = 0;
    for (const { n, m } of names) {
      const path = join(this.o.dir, n);
      const data = await readFile(path);
      const segment: Segment = { index: Number(m[1]), path, bytes: data.length, live: 0 };
      let offset = 0;
      while (offset < data.length) {
        const end = data.indexOf(0x0a, offset);
        // A line without its newline was being written when the process died: never fsynced,
        // never answered. It is left where it is and not shipped.
        if (end === -1) break;
        const length = end + 1 - offset;
        if (parseLine(data.subarray(offset, end))) {
          this.held.push({ segment, offset, length });
          segment.live++;
        } else {
          skipped++;
        }
        offset = end + 1;
      }
      if (segment.live === 0) await unlink(path).catch(() => {});
      else {
        this.segments.push(segment);
        this.liveBytes += segment.bytes;
      }
    }
    if (this.held.length > 0 || skipped > 0) {
      this.o.log.info(
        { entries: this.held.length, skipped, segments: this.segments.length },
        'audit spool: shipping what an earlier broker process left',
      );
    }
  }

  private async openSegment(): Promise<{ segment: Segment; file: FileHandle }> {
    const last = this.segments.at(-1)?.index ?? -1;
    const seen = (await readdir(this.o.dir)).map((n) => Number(SEGMENT.exec(n)?.[1] ?? -1));
    const index = Math.max(last, ...seen) + 1;
    const path = join(this.o.dir, `${index}.spool`);
    const file = await open(path, SEGMENT_FLAGS, SEGMENT_MODE);
    const segment: Segment = { index, path, bytes: 0, live: 0 };
    this.segments.push(segment);
    return { segment, file };
  }

  /**
   * Appends one entry; resolves once it is on disk (a synchronous write). Rejects with
   * SpoolUnavailableError when the spool is full or the write fails. `json`: the entry already
   * serialized by the caller (the shipper measures it), so it is not serialized twice.
   */
  append(event: SpooledEvent, json?: string): Promise<void> {
    if (this.closed) return Promise.reject(new SpoolUnavailableError('io', 'the audit spool is closed'));
    if (this.broken) return Promise.reject(new SpoolUnavailableError('io', this.broken));
    const line = Buffer.from(`${json ?? JSON.stringify(event)}\n`);
    if (this.liveBytes + line.length > this.maxBytes) {
      return Promise.reject(
        new SpoolUnavailableError(
          'full',
          `the audit spool holds ${this.held.length} entries the authority has not acknowledged (limit ${this.maxBytes} bytes, --audit-spool-max-bytes)`,
        ),
      );
    }
    this.liveBytes += line.length;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      if (!this.writing) this.writing = this.writeLoop();
    });
  }

  /** Writes the pending group, syncs, answers it; again while appends arrived meanwhile. */
  private async writeLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const group = this.pending;
        this.pending = [];
        try {
          if (!this.active || this.active.segment.bytes >= this.segmentBytes) await this.rotate();
          const a = this.active as { segment: Segment; file: FileHandle };
          let length = 0;
          const lines: Buffer[] = new Array(group.length);
          for (let i = 0; i < group.length; i++) {
            const line = (group[i] as PendingWrite).line;
            lines[i] = line;
            length += line.length;
          }
          // One writev (O_DSYNC: on disk when it returns); a short write (rare) goes on from there.
          const first = (await a.file.writev(lines, a.segment.bytes)).bytesWritten;
          if (first < length) {
            const rest = Buffer.concat(lines).subarray(first);
            for (let done = 0; done < rest.length; ) {
              const r = await a.file.write(rest, done, rest.length - done, a.segment.bytes + first + done);
              done += r.bytesWritten;
            }
          }
          this.syncs++;
          let offset = a.segment.bytes;
          for (const g of group) {
            this.held.push({ segment: a.segment, offset, length: g.line.length });
            offset += g.line.length;
          }
          a.segment.bytes += length;
          a.segment.live += group.length;
          for (const g of group) g.resolve();
        } catch (err) {
          // Not kept: their bytes no longer count against the bound.
          for (const g of group) this.liveBytes -= g.line.length;
          // The segment may now end in a partial line: the next group goes to a new one.
          await this.active?.file.close().catch(() => {});
          this.active = undefined;
          const e = new SpoolUnavailableError(
            'io',
            `could not write the audit spool in ${this.o.dir}: ${err instanceof Error ? err.message : String(err)}`,
          );
          this.o.log.error({ err: e.message, entries: group.length }, 'audit spool write failed');
          for (const g of group) g.reject(e);
        }
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async rotate(): Promise<void> {
    const old = this.active;
    this.active = undefined;
    if (old) {
      await old.file.close();
      if (old.segment.live === 0) await this.remove(old.segment);
    }
    this.active = await this.openSegment();
  }

  /**
   * The oldest unacknowledged entries: at most `maxEvents`, and `maxBytes` of lines (at least one).
   * Read back from the segments (the page cache, in practice), so the broker's memory does not
   * grow with the spool.
   */
  async peek(maxEvents: number, maxBytes: number): Promise<{ events: SpooledEvent[]; count: number }> {
    const take: Held[] = [];
    let bytes = 0;
    for (const h of this.held) {
      if (take.length >= maxEvents || (take.length > 0 && bytes + h.length > maxBytes)) break;
      take.push(h);
      bytes += h.length;
    }
    const out: SpooledEvent[] = [];
    let i = 0;
    while (i < take.length) {
      // One read per run of entries in the same segment.
      const first = take[i] as Held;
      let j = i;
      while (j + 1 < take.length && (take[j + 1] as Held).segment === first.segment) j++;
      const last = take[j] as Held;
      const f = await open(first.segment.path, 'r');
      try {
        const length = last.offset + last.length - first.offset;
        const buf = Buffer.alloc(length);
        await f.read(buf, 0, length, first.offset);
        for (let k = i; k <= j; k++) {
          const h = take[k] as Held;
          const e = parseLine(buf.subarray(h.offset - first.offset, h.offset - first.offset + h.length - 1));
          if (e) out.push(e);
        }
      } finally {
        await f.close();
      }
      i = j + 1;
    }
    return { events: out, count: take.length };
  }

  /** The authority persisted the `n` oldest entries: they leave the spool. */
  async ack(n: number): Promise<void> {
    const gone = this.held.splice(0, n);
    const emptied = new Set<Segment>();
    for (const h of gone) {
      h.segment.live--;
      if (h.segment.live === 0) emptied.add(h.segment);
    }
    for (const s of emptied) {
      if (s !== this.active?.segment) await this.remove(s);
    }
  }

  private async remove(s: Segment): Promise<void> {
    const i = this.segments.indexOf(s);
    if (i !== -1) {
      this.segments.splice(i, 1);
      this.liveBytes -= s.bytes;
    }
    await unlink(s.path).catch((err: unknown) =>
      this.o.log.warn(
        { err: String(err), path: s.path },
        'could not delete an acknowledged audit spool segment',
      ),
    );
  }

  /** Waits for the writes under way and closes the active segment. Entries stay for the next process. */
  async close(): Promise<void> {
    this.closed = true;
    await this.writing;
    await this.active?.file.close().catch(() => {});
    this.active = undefined;
  }
}

function parseLine(buf: Buffer): SpooledEvent | undefined {
  try {
    const v: unknown = JSON.parse(buf.toString('utf8'));
    if (v === null || typeof v !== 'object' || typeof (v as { id?: unknown }).id !== 'string')
      return undefined;
    return v as SpooledEvent;
  } catch {
    return undefined;
  }
}

/** A new id source for this process: 16 hex digits (core/audit/entry-id.ts). */
export function newEntrySource(): string {
  return randomBytes(8).toString('hex');
}
