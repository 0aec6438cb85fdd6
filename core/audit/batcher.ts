/**
 * Decides when an agent's pending audit entries become an AuditRecord: at most
 * `maxEntries` per record, at most `maxBytes` of entries (well under etcd's 1.5 MiB
 * object limit), and no entry waits longer than `maxAgeMs`. Pure state; the writer
 * that creates the objects calls `take` and, on failure, `putBack`.
 */
import type { AuditEntry } from '../api/index.js';

export interface BatchLimits {
  maxEntries: number;
  maxBytes: number;
  maxAgeMs: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxEntries: 200, maxBytes: 256 * 1024, maxAgeMs: 5_000 };

interface Pending {
  entries: AuditEntry[];
  bytes: number;
  firstAt: number;
}

/** Key of a chain: namespace/agent. */
export type ChainKey = string;

export class AuditBatcher {
  private readonly pending = new Map<ChainKey, Pending>();

  constructor(private readonly limits: BatchLimits = DEFAULT_BATCH_LIMITS) {
    if (limits.maxEntries < 1 || limits.maxEntries > 500) {
      throw new Error(
        `audit batch maxEntries must be 1..500 (the AuditRecord schema limit), got ${limits.maxEntries}`,
      );
    }
  }

  /** Adds an entry; returns true when the chain's batch is full and should be flushed now. */
  add(key: ChainKey, entry: AuditEntry, now: number): boolean {
    const size = Buffer.byteLength(JSON.stringify(entry));
    let p = this.pending.get(key);
    if (!p) {
      p = { entries: [], bytes: 0, firstAt: now };
      this.pending.set(key, p);
    }
    p.entries.push(entry);
    p.bytes += size;
    return this.isFull(p);
  }

  private isFull(p: Pending): boolean {
    return p.entries.length >= this.limits.maxEntries || p.bytes >= this.limits.maxBytes;
  }

  /** Chains with a full batch or whose oldest entry has waited maxAgeMs. */
  due(now: number): ChainKey[] {
    const out: ChainKey[] = [];
    for (const [key, p] of this.pending) {
      if (this.isFull(p) || now - p.firstAt >= this.limits.maxAgeMs) out.push(key);
    }
    return out;
  }

  /** Every chain with anything pending (for a final flush on shutdown). */
  keys(): ChainKey[] {
    return [...this.pending.keys()];
  }

  /**
   * Removes and returns the next batch of a chain (oldest first, within the limits);
   * anything beyond stays pending.
   */
  take(key: ChainKey, now: number): AuditEntry[] {
    const p = this.pending.get(key);
    if (!p) return [];
    const batch: AuditEntry[] = [];
    let bytes = 0;
    while (p.entries.length > 0 && batch.length < this.limits.maxEntries) {
      const next = p.entries[0] as AuditEntry;
      const size = Buffer.byteLength(JSON.stringify(next));
      if (batch.length > 0 && bytes + size > this.limits.maxBytes) break;
      batch.push(next);
      bytes += size;
      p.entries.shift();
    }
    p.bytes -= bytes;
    if (p.entries.length === 0) this.pending.delete(key);
    else p.firstAt = now;
    return batch;
  }

  /** Returns a batch that could not be written to the front of its chain, keeping order. */
  putBack(key: ChainKey, batch: AuditEntry[], now: number): void {
    if (batch.length === 0) return;
    const p = this.pending.get(key) ?? { entries: [], bytes: 0, firstAt: now };
    p.entries.unshift(...batch);
    p.bytes += batch.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0);
    p.firstAt = Math.min(p.firstAt, now);
    this.pending.set(key, p);
  }

  /** Entries waiting across all chains. */
  size(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.entries.length;
    return n;
  }

  /**
   * Drops the oldest entries of the largest chains until at most `max` remain; returns
   * how many were dropped (the writer counts and reports them — never silent).
   */
  shed(max: number): number {
    let n = 0;
    for (const c of this.shedByChain(max).values()) n += c;
    return n;
  }

  /**
   * As shed(), saying how many entries each chain lost (so each agent's loss can be reported), and
   * telling `onShed` of each entry dropped.
   */
  shedByChain(max: number, onShed?: (key: ChainKey, entry: AuditEntry) => void): Map<ChainKey, number> {
    const lost = new Map<ChainKey, number>();
    while (this.size() > max) {
      let biggest: [ChainKey, Pending] | undefined;
      for (const e of this.pending)
        if (!biggest || e[1].entries.length > biggest[1].entries.length) biggest = e;
      if (!biggest) break;
      const [key, p] = biggest;
      const removed = p.entries.shift();
      if (removed) {
        p.bytes -= Buffer.byteLength(JSON.stringify(removed));
        onShed?.(key, removed);
      }
      if (p.entries.length === 0) this.pending.delete(key);
      lost.set(key, (lost.get(key) ?? 0) + 1);
    }
    return lost;
  }
}
