import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Informer, type InformerLifecycleEvent } from './informer.js';
import type { KubeObject, ObjectList } from './kube.js';
import { FakeClock, flushPromises } from './testing/fake-clock.js';
import { FakeWatch } from './testing/fake-watch.js';

const silent = pino({ level: 'silent' });

function obj(name: string, rv: string, namespace = 'ns'): KubeObject {
  return { metadata: { name, namespace, resourceVersion: rv } };
}

function setup(opts: { resyncPeriodMs?: number } = {}) {
  const clock = new FakeClock();
  const watch = new FakeWatch();
  const lists: Array<ObjectList<KubeObject> | Error> = [];
  let listCalls = 0;
  let holdList: Promise<void> | undefined;
  const events: string[] = [];
  const lifecycle: InformerLifecycleEvent[] = [];
  const informer = new Informer<KubeObject>({
    name: 'Thing in ns',
    path: '/apis/x/v1/namespaces/ns/things',
    list: async () => {
      listCalls++;
      if (holdList) await holdList;
      const next = lists.shift();
      if (!next) throw new Error('test did not provide a list result');
      if (next instanceof Error) throw next;
      return next;
    },
    watch,
    logger: silent,
    clock,
    random: () => 0.5,
    resyncPeriodMs: opts.resyncPeriodMs ?? 0,
    watchTimeoutSeconds: 300,
    onLifecycle: (e) => lifecycle.push(e),
  });
  informer.on({
    add: (o) => events.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    update: (_old, o) => events.push(`update ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    delete: (o) => events.push(`delete ${o.metadata?.name}`),
  });
  return {
    clock,
    watch,
    informer,
    events,
    lifecycle,
    listCalls: () => listCalls,
    pushList(items: KubeObject[], rv: string) {
      lists.push({ items, metadata: { resourceVersion: rv } });
    },
    pushListError(err: Error) {
      lists.push(err);
    },
    hold() {
      let release = () => {};
      holdList = new Promise((r) => {
        release = r;
      });
      return () => {
        holdList = undefined;
        release();
      };
    },
  };
}

describe('Informer', () => {
  it('hands a handler registered after the first list every cached object as an add, then later events', async () => {
    const t = setup();
    t.pushList([obj('a', '5'), obj('b', '6')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    const late: string[] = [];
    t.informer.on({
      add: (o) => late.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
      update: (_old, o) => late.push(`update ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    });
    expect(late.sort()).toEqual(['add a@5', 'add b@6']);
    t.watch.last().send('MODIFIED', obj('a', '11'));
    await flushPromises();
    expect(late).toContain('update a@11');
    // The early handler saw the first list once, not again.
    expect(t.events.filter((e) => e.startsWith('add'))).toEqual(['add a@5', 'add b@6']);
    await t.informer.stop();
  });

  it('a handler registered before the first list is not handed anything twice', async () => {
    const t = setup();
    t.pushList([obj('a', '5')], '10');
    const early: string[] = [];
    t.informer.on({ add: (o) => early.push(`add ${o.metadata?.name}`) });
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    expect(early).toEqual(['add a']);
    await t.informer.stop();
  });

  it('lists, reports every object as an add, then watches from the list resourceVersion with bookmarks', async () => {
    const t = setup();
    t.pushList([obj('a', '5'), obj('b', '6')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    expect(t.events).toEqual(['add a@5', 'add b@6']);
    expect(t.informer.hasSynced()).toBe(true);
    expect(t.watch.calls).toHaveLength(1);
    expect(t.watch.last().params).toMatchObject({
      resourceVersion: '10',
      allowWatchBookmarks: true,
      timeoutSeconds: 300,
    });
    expect(t.informer.list('ns').map((o) => o.metadata?.name)).toEqual(['a', 'b']);
    expect(t.informer.get('a', 'ns')?.metadata?.resourceVersion).toBe('5');
    expect(t.informer.get('a', 'other')).toBeUndefined();
    expect(t.informer.list('other')).toEqual([]);
    await t.informer.stop();
  });

  it('applies watch events to the cache and handlers; a MODIFIED with the same resourceVersion is not an update', async () => {
    const t = setup();
    t.pushList([obj('a', '5')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    const w = t.watch.last();
    w.send('ADDED', obj('c', '11'));
    w.send('MODIFIED', obj('a', '12'));
    w.send('MODIFIED', obj('a', '12'));
    w.send('DELETED', obj('c', '13'));
    w.send('BOOKMARK', { metadata: { resourceVersion: '20' } });
    expect(t.events).toEqual(['add a@5', 'add c@11', 'update a@12', 'delete c']);
    expect(t.informer.list().map((o) => o.metadata?.name)).toEqual(['a']);
    expect(t.informer.lastResourceVersion()).toBe('20');
    await t.informer.stop();
  });

  it('resumes from the last resourceVersion at once when the server ends the watch normally', async () => {
    const t = setup();
    t.pushList([], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    t.watch.last().send('ADDED', obj('a', '11'));
    t.watch.last().end();
    await flushPromises();
    expect(t.watch.calls).toHaveLength(2);
    expect(t.watch.last().params.resourceVersion).toBe('11');
    expect(t.listCalls()).toBe(1);
    await t.informer.stop();
  });

  it('relists on a 410 Gone ERROR event, reporting objects deleted meanwhile and changed ones', async () => {
    const t = setup();
    t.pushList([obj('a', '5'), obj('b', '6'), obj('c', '7')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    t.pushList([obj('a', '5'), obj('b', '30'), obj('d', '31')], '40');
    t.watch
      .last()
      .send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    await flushPromises();
    expect(t.listCalls()).toBe(2);
    expect(t.events.slice(3)).toEqual(['delete c', 'update b@30', 'add d@31']);
    expect(t.watch.calls).toHaveLength(2);
    expect(t.watch.calls[0]?.aborted()).toBe(true);
    expect(t.watch.last().params.resourceVersion).toBe('40');
    expect(t.lifecycle.map((e) => e.type)).toContain('gone');
    await t.informer.stop();
  });

  it('relists when the watch request itself fails with HTTP 410', async () => {
    const t = setup();
    t.pushList([], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    t.pushList([obj('a', '50')], '50');
    t.watch.last().end(Object.assign(new Error('Gone'), { statusCode: 410 }));
    await flushPromises();
    expect(t.listCalls()).toBe(2);
    expect(t.watch.last().params.resourceVersion).toBe('50');
    await t.informer.stop();
  });

  it('reconnects with growing backoff after errors, from the same resourceVersion, without relisting', async () => {
    const t = setup();
    t.pushList([obj('a', '5')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    t.watch.last().end(Object.assign(new Error('ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    await flushPromises();
    expect(t.clock.pendingDelays()).toEqual([500]);
    await t.clock.advance(500);
    expect(t.watch.calls).toHaveLength(2);
    expect(t.watch.last().params.resourceVersion).toBe('10');
    t.watch.last().end(Object.assign(new Error('Internal Server Error'), { statusCode: 500 }));
    await flushPromises();
    expect(t.clock.pendingDelays()).toEqual([1_000]);
    await t.clock.advance(1_000);
    expect(t.watch.calls).toHaveLength(3);
    expect(t.listCalls()).toBe(1);
    const errors = t.lifecycle.filter((e) => e.type === 'error');
    expect(errors.map((e) => (e.type === 'error' ? e.retryInMs : 0))).toEqual([500, 1_000]);
    await t.informer.stop();
  });

  it('keeps retrying a failing list with backoff capped at 30 s, and syncs when it finally works', async () => {
    const t = setup();
    for (let i = 0; i < 10; i++)
      t.pushListError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    t.pushList([obj('a', '1')], '2');
    t.informer.start();
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      await flushPromises();
      const [d] = t.clock.pendingDelays();
      delays.push(d ?? -1);
      await t.clock.advance(d ?? 0);
    }
    await t.informer.waitForSync();
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000]);
    expect(t.events).toEqual(['add a@1']);
    await t.informer.stop();
  });

  it('treats an error thrown while opening the watch as retryable (no unhandled rejection)', async () => {
    const t = setup();
    t.pushList([], '10');
    t.watch.failNextWith = new Error('exec credential plugin failed');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    expect(t.watch.calls).toHaveLength(0);
    expect(t.clock.pendingDelays()).toEqual([500]);
    await t.clock.advance(500);
    expect(t.watch.calls).toHaveLength(1);
    await t.informer.stop();
  });

  it('backs off when watches keep closing at once without delivering anything', async () => {
    const t = setup();
    t.pushList([], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    t.watch.last().end();
    await flushPromises();
    expect(t.watch.calls).toHaveLength(1);
    expect(t.clock.pendingDelays()).toEqual([500]);
    await t.informer.stop();
  });

  it('stop() during the initial list opens no watch and leaves no timers', async () => {
    const t = setup();
    t.pushList([obj('a', '1')], '10');
    const release = t.hold();
    t.informer.start();
    await flushPromises();
    const stopped = t.informer.stop();
    release();
    await stopped;
    await flushPromises();
    expect(t.watch.calls).toHaveLength(0);
    expect(t.events).toEqual([]);
    expect(t.clock.pending()).toBe(0);
  });

  it('stop() aborts the watch and nothing reconnects afterwards', async () => {
    const t = setup();
    t.pushList([], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    await t.informer.stop();
    expect(t.watch.last().aborted()).toBe(true);
    await t.clock.advance(600_000);
    expect(t.watch.calls).toHaveLength(1);
  });

  it('stop() during a backoff wait ends the loop', async () => {
    const t = setup();
    t.pushListError(new Error('down'));
    t.informer.start();
    await flushPromises();
    expect(t.clock.pending()).toBe(1);
    await t.informer.stop();
    expect(t.clock.pending()).toBe(0);
    expect(t.listCalls()).toBe(1);
  });

  it('can be restarted after stop (a replica that regains leadership)', async () => {
    const t = setup();
    t.pushList([obj('a', '1')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    await t.informer.stop();
    t.informer.start();
    await flushPromises();
    expect(t.watch.calls).toHaveLength(2);
    expect(t.watch.last().params.resourceVersion).toBe('10');
    await t.informer.stop();
  });

  it('a throwing handler does not stop other handlers or the stream', async () => {
    const t = setup();
    t.informer.on({
      add: () => {
        throw new Error('handler bug');
      },
    });
    t.pushList([obj('a', '1')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    t.watch.last().send('ADDED', obj('b', '11'));
    expect(t.events).toEqual(['add a@1', 'add b@11']);
    await t.informer.stop();
  });

  it('ignores events from a watch it already left', async () => {
    const t = setup();
    t.pushList([], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    const first = t.watch.last();
    first.send('ADDED', obj('a', '11'));
    first.end();
    await flushPromises();
    first.send('ADDED', obj('zombie', '99'));
    expect(t.informer.get('zombie', 'ns')).toBeUndefined();
    await t.informer.stop();
  });

  it('re-delivers every cached object as an update on each resync period', async () => {
    const t = setup({ resyncPeriodMs: 60_000 });
    t.pushList([obj('a', '1'), obj('b', '2')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    await t.clock.advance(60_000);
    expect(t.events).toEqual(['add a@1', 'add b@2', 'update a@1', 'update b@2']);
    await t.clock.advance(60_000);
    expect(t.events).toHaveLength(6);
    await t.informer.stop();
    await t.clock.advance(60_000);
    expect(t.events).toHaveLength(6);
  });

  it('gives up on a watch the server never ends (dead connection) and reconnects from the same resourceVersion', async () => {
    const t = setup();
    t.pushList([], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    t.watch.last().send('ADDED', obj('a', '11'));
    // watchTimeoutSeconds is 300 in these tests; nothing ends the stream.
    await t.clock.advance(329_999);
    expect(t.watch.calls).toHaveLength(1);
    await t.clock.advance(1);
    expect(t.watch.calls[0]?.aborted()).toBe(true);
    const [retry] = t.clock.pendingDelays();
    await t.clock.advance(retry ?? 0);
    expect(t.watch.calls).toHaveLength(2);
    expect(t.watch.last().params.resourceVersion).toBe('11');
    expect(t.listCalls()).toBe(1);
    await t.informer.stop();
  });

  it('ignores watch objects without a name instead of caching them under ""', async () => {
    const t = setup();
    t.pushList([], '10');
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    t.watch.last().send('ADDED', { metadata: { namespace: 'ns' } });
    expect(t.informer.list()).toEqual([]);
    expect(t.events).toEqual([]);
    await t.informer.stop();
  });
});

describe('Informer transform', () => {
  it('caches and delivers only what the transform keeps (e.g. Secret key names, never values)', async () => {
    const clock = new FakeClock();
    const watch = new FakeWatch();
    type Secret = KubeObject & { data?: Record<string, string> };
    const seen: Secret[] = [];
    const keysOnly = (s: Secret): Secret => ({
      metadata: s.metadata,
      data: Object.fromEntries(Object.keys(s.data ?? {}).map((k) => [k, ''])),
    });
    const informer = new Informer<Secret>({
      name: 'secrets',
      path: '/api/v1/namespaces/ns/secrets',
      list: async () => ({
        items: [
          { metadata: { name: 's', namespace: 'ns', resourceVersion: '1' }, data: { token: 'c2VjcmV0' } },
        ],
        metadata: { resourceVersion: '1' },
      }),
      watch,
      logger: silent,
      clock,
      resyncPeriodMs: 0,
      transform: keysOnly,
    });
    informer.on({ add: (s) => seen.push(s), update: (_o, s) => seen.push(s) });
    informer.start();
    await informer.waitForSync();
    await flushPromises();
    watch.last().send('MODIFIED', {
      metadata: { name: 's', namespace: 'ns', resourceVersion: '2' },
      data: { token: 'bmV3', extra: 'eA==' },
    });
    expect(JSON.stringify(informer.list())).not.toContain('c2VjcmV0');
    expect(JSON.stringify(seen)).not.toMatch(/c2VjcmV0|bmV3|eA==/);
    expect(informer.get('s', 'ns')?.data).toEqual({ token: '', extra: '' });
    await informer.stop();
  });
});

describe('Informer indexes', () => {
  const labelled = (name: string, rv: string, team: string): KubeObject => ({
    metadata: { name, namespace: 'ns', resourceVersion: rv, labels: { team } },
  });
  const names = (objs: KubeObject[]) => objs.map((o) => o.metadata?.name).sort();

  it('finds objects by key through adds, updates that move them, deletes and a relist', async () => {
    const t = setup();
    t.pushList([labelled('a', '1', 'red'), labelled('b', '2', 'blue')], '10');
    t.informer.addIndex('team', (o) => [o.metadata?.labels?.team ?? '']);
    t.informer.start();
    await t.informer.waitForSync();
    await flushPromises();
    expect(names(t.informer.byIndex('team', 'red'))).toEqual(['a']);

    const w = t.watch.last();
    w.send('ADDED', labelled('c', '11', 'red'));
    w.send('MODIFIED', labelled('a', '12', 'blue'));
    w.send('DELETED', labelled('b', '13', 'blue'));
    await flushPromises();
    expect(names(t.informer.byIndex('team', 'red'))).toEqual(['c']);
    expect(names(t.informer.byIndex('team', 'blue'))).toEqual(['a']);

    // A relist (e.g. after 410 Gone) replaces the cache, and the index with it.
    t.pushList([labelled('d', '20', 'red')], '20');
    w.end(Object.assign(new Error('gone'), { statusCode: 410 }));
    await t.clock.advance(60_000);
    await flushPromises();
    expect(names(t.informer.byIndex('team', 'red'))).toEqual(['d']);
    expect(t.informer.byIndex('team', 'blue')).toEqual([]);
    await t.informer.stop();
  });

  it('indexes what is already cached when added late, and keeps the first definition of a name', async () => {
    const t = setup();
    t.pushList([labelled('a', '1', 'red')], '10');
    t.informer.start();
    await t.informer.waitForSync();
    t.informer.addIndex('team', (o) => [o.metadata?.labels?.team ?? '']);
    t.informer.addIndex('team', () => ['other']);
    expect(names(t.informer.byIndex('team', 'red'))).toEqual(['a']);
    expect(t.informer.byIndex('team', 'other')).toEqual([]);
    expect(t.informer.byIndex('no-such-index', 'red')).toEqual([]);
    expect([t.informer.count('ns'), t.informer.count(), t.informer.count('elsewhere')]).toEqual([1, 1, 0]);
    await t.informer.stop();
  });
});
