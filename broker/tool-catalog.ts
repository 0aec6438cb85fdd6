/**
 * The tools each upstream advertised (issue 15, item 5): a `tools/call` must name a tool the
 * upstream listed in `tools/list`, exactly (case included), or it is refused as an unknown tool.
 * Policy globs are written against the names a server advertises; a name the server never listed
 * (`jira.DELETE_ISSUE` next to `jira.delete_issue`) is one no policy author reviewed, and an
 * upstream that resolves names case-insensitively would run it anyway.
 *
 * Kept per (target, MCP session, user): servers may list different tools per session or per
 * caller. Filled from the upstream's own answer to the agent's complete `tools/list` (no cursor
 * in, no nextCursor out), or fetched by the broker when a call comes first. Dropped on
 * `notifications/tools/list_changed`, on session DELETE and after `maxAgeMs`. A name missing from
 * a list older than `refetchMissAfterMs` triggers one refetch (a tool added without a
 * notification), at most once per that interval per key so a probing agent cannot make the broker
 * hammer the upstream. Pure apart from the injected clock; the fetch is passed in.
 */

export interface ToolCatalogOptions {
  /** Monotonic milliseconds. */
  readonly now?: () => number;
  /** A list older than this is fetched again before use. */
  readonly maxAgeMs?: number;
  /** A name missing from a list at least this old makes the broker fetch the list once more. */
  readonly refetchMissAfterMs?: number;
  /** Most (target, session, user) lists kept; the oldest is dropped beyond it. */
  readonly maxEntries?: number;
}

export interface CatalogKey {
  readonly target: string;
  /** The agent's Mcp-Session-Id ('' for a stateless server). */
  readonly session: string;
  /** A digest of the user token ('-' for the agent acting alone): never the token itself. */
  readonly user: string;
}

export type Lookup =
  | { readonly ok: true; readonly advertised: boolean }
  | { readonly ok: false; readonly message: string };

interface Entry {
  readonly names: ReadonlySet<string>;
  readonly fetchedAt: number;
}

export const DEFAULT_CATALOG_MAX_AGE_MS = 300_000;
export const DEFAULT_CATALOG_REFETCH_MISS_AFTER_MS = 5_000;
export const DEFAULT_CATALOG_MAX_ENTRIES = 1024;

const keyOf = (k: CatalogKey): string => `${k.target}\u0000${k.session}\u0000${k.user}`;
const sessionPrefix = (target: string, session: string): string => `${target}\u0000${session}\u0000`;

export class ToolCatalog {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly now: () => number;
  private readonly maxAgeMs: number;
  private readonly refetchMissAfterMs: number;
  private readonly maxEntries: number;

  constructor(opts: ToolCatalogOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_CATALOG_MAX_AGE_MS;
    this.refetchMissAfterMs = opts.refetchMissAfterMs ?? DEFAULT_CATALOG_REFETCH_MISS_AFTER_MS;
    this.maxEntries = opts.maxEntries ?? DEFAULT_CATALOG_MAX_ENTRIES;
  }

  /** Number of lists held (tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Did the upstream advertise `tool`? Fetches the list when none is known or it is too old, and
   * once more when the name is missing from a list older than refetchMissAfterMs. A failed fetch
   * is reported, never guessed (the caller denies).
   */
  async lookup(key: CatalogKey, tool: string, fetch: () => Promise<readonly string[]>): Promise<Lookup> {
    const k = keyOf(key);
    let entry = this.entries.get(k);
    const now = this.now();
    const fresh = entry !== undefined && now - entry.fetchedAt <= this.maxAgeMs;
    if (fresh && entry?.names.has(tool)) return { ok: true, advertised: true };
    if (fresh && entry && now - entry.fetchedAt < this.refetchMissAfterMs)
      return { ok: true, advertised: false };
    try {
      entry = await this.load(k, fetch);
    } catch (err) {
      return { ok: false, message: err instanceof Error ? err.message : 'the tool list could not be read' };
    }
    return { ok: true, advertised: entry.names.has(tool) };
  }

  /** A complete list the upstream gave the agent (relayed tools/list): use it until it changes. */
  record(key: CatalogKey, names: readonly string[]): void {
    const k = keyOf(key);
    this.loading.delete(k);
    this.store(k, { names: new Set(names), fetchedAt: this.now() });
  }

  /** The upstream said its tools changed, or the session ended: forget every user's list for it. */
  invalidate(target: string, session: string): void {
    const prefix = sessionPrefix(target, session);
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.entries.delete(k);
    for (const k of [...this.loading.keys()]) if (k.startsWith(prefix)) this.loading.delete(k);
  }

  clear(): void {
    this.entries.clear();
    this.loading.clear();
  }

  private load(k: string, fetch: () => Promise<readonly string[]>): Promise<Entry> {
    const pending = this.loading.get(k);
    if (pending) return pending;
    const p = fetch().then(
      (names) => {
        const entry: Entry = { names: new Set(names), fetchedAt: this.now() };
        // Stored only if nothing invalidated or replaced this load meanwhile.
        if (this.loading.get(k) === p) {
          this.loading.delete(k);
          this.store(k, entry);
        }
        return entry;
      },
      (err: unknown) => {
        if (this.loading.get(k) === p) this.loading.delete(k);
        throw err;
      },
    );
    this.loading.set(k, p);
    return p;
  }

  private store(k: string, entry: Entry): void {
    this.entries.delete(k); // re-insert: Map order is the eviction order
    this.entries.set(k, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}
