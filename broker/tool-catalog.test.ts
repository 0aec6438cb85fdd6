import { describe, expect, it } from 'vitest';
import { type CatalogKey, ToolCatalog } from './tool-catalog.js';

const key = (session = 's1', user = '-', target = 'jira'): CatalogKey => ({ target, session, user });

function setup(opts: { maxEntries?: number } = {}) {
  let now = 0;
  const catalog = new ToolCatalog({ now: () => now, maxAgeMs: 60_000, refetchMissAfterMs: 5_000, ...opts });
  let fetches = 0;
  let list: string[] = ['jira.get_issue', 'jira.search'];
  let fail: Error | null = null;
  const fetch = async () => {
    fetches++;
    if (fail) throw fail;
    return list;
  };
  return {
    catalog,
    fetch,
    advance: (ms: number) => {
      now += ms;
    },
    setList: (l: string[]) => {
      list = l;
    },
    failWith: (e: Error | null) => {
      fail = e;
    },
    get fetches() {
      return fetches;
    },
  };
}

describe('ToolCatalog', () => {
  it('fetches once, then answers from the list (exact names only)', async () => {
    const t = setup();
    expect(await t.catalog.lookup(key(), 'jira.get_issue', t.fetch)).toEqual({ ok: true, advertised: true });
    expect(await t.catalog.lookup(key(), 'jira.search', t.fetch)).toEqual({ ok: true, advertised: true });
    expect(await t.catalog.lookup(key(), 'JIRA.GET_ISSUE', t.fetch)).toEqual({ ok: true, advertised: false });
    expect(t.fetches).toBe(1);
  });

  it('concurrent first calls share one fetch', async () => {
    const t = setup();
    await Promise.all([1, 2, 3].map(() => t.catalog.lookup(key(), 'jira.search', t.fetch)));
    expect(t.fetches).toBe(1);
  });

  it('keeps lists apart per target, session and user', async () => {
    const t = setup();
    await t.catalog.lookup(key('s1'), 'jira.search', t.fetch);
    await t.catalog.lookup(key('s2'), 'jira.search', t.fetch);
    await t.catalog.lookup(key('s1', 'user-digest'), 'jira.search', t.fetch);
    await t.catalog.lookup(key('s1', '-', 'other'), 'jira.search', t.fetch);
    expect(t.fetches).toBe(4);
  });

  it('a missing name refetches only once the list is older than the interval', async () => {
    const t = setup();
    await t.catalog.lookup(key(), 'jira.search', t.fetch);
    t.setList(['jira.search', 'jira.new']);
    t.advance(1_000);
    expect(await t.catalog.lookup(key(), 'jira.new', t.fetch)).toEqual({ ok: true, advertised: false });
    expect(t.fetches).toBe(1);
    t.advance(5_000);
    expect(await t.catalog.lookup(key(), 'jira.new', t.fetch)).toEqual({ ok: true, advertised: true });
    expect(t.fetches).toBe(2);
  });

  it('a list older than maxAge is fetched again even for a known name', async () => {
    const t = setup();
    await t.catalog.lookup(key(), 'jira.search', t.fetch);
    t.setList(['jira.get_issue']);
    t.advance(60_001);
    expect(await t.catalog.lookup(key(), 'jira.search', t.fetch)).toEqual({ ok: true, advertised: false });
    expect(t.fetches).toBe(2);
  });

  it('a failed fetch is reported (the caller denies) and not cached', async () => {
    const t = setup();
    t.failWith(new Error('upstream http://x answered tools/list with HTTP 500'));
    expect(await t.catalog.lookup(key(), 'jira.search', t.fetch)).toEqual({
      ok: false,
      message: 'upstream http://x answered tools/list with HTTP 500',
    });
    t.failWith(null);
    expect(await t.catalog.lookup(key(), 'jira.search', t.fetch)).toEqual({ ok: true, advertised: true });
    expect(t.fetches).toBe(2);
  });

  it('record() uses a relayed complete list without fetching', async () => {
    const t = setup();
    t.catalog.record(key(), ['jira.only']);
    expect(await t.catalog.lookup(key(), 'jira.only', t.fetch)).toEqual({ ok: true, advertised: true });
    expect(t.fetches).toBe(0);
  });

  it('invalidate() drops every user list of that session only', async () => {
    const t = setup();
    t.catalog.record(key('s1', 'a'), ['x']);
    t.catalog.record(key('s1', 'b'), ['x']);
    t.catalog.record(key('s2', 'a'), ['x']);
    t.catalog.record(key('s1', 'a', 'other'), ['x']);
    t.catalog.invalidate('jira', 's1');
    expect(t.catalog.size).toBe(2);
    await t.catalog.lookup(key('s1', 'a'), 'x', t.fetch);
    expect(t.fetches).toBe(1);
  });

  it('a fetch that an invalidation overtook is not stored', async () => {
    const t = setup();
    let release: (names: string[]) => void = () => {};
    const slow = () => new Promise<string[]>((r) => (release = r));
    const pending = t.catalog.lookup(key(), 'old', slow);
    t.catalog.invalidate('jira', 's1');
    release(['old']);
    expect(await pending).toEqual({ ok: true, advertised: true });
    expect(t.catalog.size).toBe(0);
  });

  it('holds at most maxEntries lists, dropping the oldest', () => {
    const t = setup({ maxEntries: 2 });
    t.catalog.record(key('a'), []);
    t.catalog.record(key('b'), []);
    t.catalog.record(key('c'), []);
    expect(t.catalog.size).toBe(2);
  });
});
