/**
 * The broker's one registry of in-flight work — MCP exchanges, proxied HTTP requests and relayed
 * PostgreSQL sessions alike — so the kill switch (composeBroker's snapshot watch) ends all of
 * them in one place. Each adapter registers how to end its own piece of work in its protocol's
 * terms (a JSON-RPC error, a 403 or a cut stream, a closed socket); the registry knows none of
 * those protocols.
 */
import type { BrokerDecision } from './decider.js';

/** Ends one piece of in-flight work because the agent may no longer act (`why`). */
export type AbortInFlight = (why: BrokerDecision) => void;

export class InFlightRegistry {
  private readonly entries = new Set<{ readonly abort: AbortInFlight }>();

  /** Work currently registered (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Registers work until the returned release is called (idempotent: an adapter may release
   * both when the agent goes away and when the upstream call settles).
   */
  add(abort: AbortInFlight): () => void {
    const entry = { abort };
    this.entries.add(entry);
    return () => {
      this.entries.delete(entry);
    };
  }

  /**
   * Suspension / policy loss: ends every registered piece of work with `why` and forgets it.
   * One adapter's failure to end its work must not spare the rest: each failure goes to
   * `onError` and the loop goes on. Returns how many were ended.
   */
  abortAll(why: BrokerDecision, onError: (err: unknown) => void = () => {}): number {
    const all = [...this.entries];
    this.entries.clear();
    for (const e of all) {
      try {
        e.abort(why);
      } catch (err) {
        onError(err);
      }
    }
    return all.length;
  }
}
