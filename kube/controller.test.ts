import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Controller, keyOf, type ObjectKey, parseKey } from './controller.js';
import { Informer } from './informer.js';
import { ApiError, type KubeObject, type ObjectList } from './kube.js';
import { FakeClock, flushPromises } from './testing/fake-clock.js';
import { FakeWatch } from './testing/fake-watch.js';

const silent = pino({ level: 'silent' });

function informer(items: KubeObject[], clock: FakeClock) {
  const watch = new FakeWatch();
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const inf = new Informer<KubeObject>({
    name: 'test',
    path: '/x',
    list: async (): Promise<ObjectList<KubeObject>> => {
      await gate;
      return { items, metadata: { resourceVersion: '1' } };
    },
    watch,
    logger: silent,
    clock,
    resyncPeriodMs: 0,
  });
  return { inf, watch, release };
}

const o = (name: string, extra: Record<string, unknown> = {}): KubeObject & Record<string, unknown> => ({
  metadata: { name, namespace: 'ns', resourceVersion: '1' },
  ...extra,
});

describe('keys', () => {
  it('round-trips namespace/name', () => {
    expect(keyOf(o('a'))).toBe('ns/a');
    expect(parseKey('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(parseKey('cluster-scoped')).toEqual({ namespace: '', name: 'cluster-scoped' });
  });
});

describe('Controller', () => {
  it('reconciles nothing until every watched informer synced, then each primary once', async () => {
    const clock = new FakeClock();
    const primary = informer([o('a'), o('b')], clock);
    const related = informer([o('sa-1', { ref: 'a' })], clock);
    const seen: string[] = [];
    const c = new Controller({
      name: 'test',
      logger: silent,
      clock,
      reconcile: async (k: ObjectKey) => {
        seen.push(`${k.namespace}/${k.name}`);
      },
    })
      .watchPrimary(primary.inf)
      .watchRelated(related.inf, (x) => [`ns/${String((x as { ref?: string }).ref)}`]);
    const started = c.start();
    primary.inf.start();
    related.inf.start();
    primary.release();
    await flushPromises();
    expect(seen).toEqual([]);
    related.release();
    await started;
    await c.whenIdle();
    expect(seen.sort()).toEqual(['ns/a', 'ns/b']);
    // A related change maps to its owner.
    related.watch
      .last()
      .send(
        'MODIFIED',
        o('sa-1', { ref: 'b', metadata: { name: 'sa-1', namespace: 'ns', resourceVersion: '2' } }),
      );
    await c.whenIdle();
    expect(seen.slice(2).sort()).toEqual(['ns/a', 'ns/b']); // old and new reference both rechecked
    await c.stop();
    await primary.inf.stop();
    await related.inf.stop();
  });

  it('skips a related update its relevance check rejects, and maps one it accepts', async () => {
    const clock = new FakeClock();
    const primary = informer([o('a')], clock);
    const related = informer([o('sa-1', { ref: 'a', colour: 'red' })], clock);
    const seen: string[] = [];
    const c = new Controller({
      name: 'test',
      logger: silent,
      clock,
      reconcile: async (k: ObjectKey) => {
        seen.push(`${k.namespace}/${k.name}`);
      },
    })
      .watchPrimary(primary.inf)
      .watchRelated(
        related.inf,
        (x) => [`ns/${String((x as { ref?: string }).ref)}`],
        (old, x) => (old as { ref?: string }).ref !== (x as { ref?: string }).ref,
      );
    const started = c.start();
    primary.inf.start();
    related.inf.start();
    primary.release();
    related.release();
    await started;
    await c.whenIdle();
    expect(seen).toEqual(['ns/a']);
    const meta = (rv: string) => ({ metadata: { name: 'sa-1', namespace: 'ns', resourceVersion: rv } });
    // Only a field the relevance check ignores changed: nothing is queued.
    related.watch.last().send('MODIFIED', o('sa-1', { ref: 'a', colour: 'blue', ...meta('2') }));
    await c.whenIdle();
    expect(seen).toEqual(['ns/a']);
    // The reference moved: both the old and the new owner are rechecked.
    related.watch.last().send('MODIFIED', o('sa-1', { ref: 'b', colour: 'blue', ...meta('3') }));
    await c.whenIdle();
    expect(seen.slice(1).sort()).toEqual(['ns/a', 'ns/b']);
    await c.stop();
    await primary.inf.stop();
    await related.inf.stop();
  });

  it('treats NotFound from a reconcile as success (no retry)', async () => {
    const clock = new FakeClock();
    const primary = informer([o('gone')], clock);
    let calls = 0;
    const c = new Controller({
      name: 'test',
      logger: silent,
      clock,
      reconcile: async () => {
        calls++;
        throw new ApiError(404, { reason: 'NotFound' }, 'GET', '/x');
      },
    }).watchPrimary(primary.inf);
    const started = c.start();
    primary.inf.start();
    primary.release();
    await started;
    await c.whenIdle();
    await clock.advance(600_000);
    expect(calls).toBe(1);
    await c.stop();
    await primary.inf.stop();
  });

  it('retries a failing reconcile with backoff, and stops retrying after stop()', async () => {
    const clock = new FakeClock();
    const primary = informer([o('a')], clock);
    let calls = 0;
    const c = new Controller({
      name: 'test',
      logger: silent,
      clock,
      random: () => 0.5,
      reconcile: async () => {
        calls++;
        throw new Error('upstream down');
      },
    }).watchPrimary(primary.inf);
    const started = c.start();
    primary.inf.start();
    primary.release();
    await started;
    await c.whenIdle();
    await clock.advance(1_000);
    await c.whenIdle();
    expect(calls).toBe(2);
    await c.stop();
    await clock.advance(600_000);
    expect(calls).toBe(2);
    await primary.inf.stop();
  });

  it('ignores events while stopped and starts afresh on the next start', async () => {
    const clock = new FakeClock();
    const primary = informer([o('a')], clock);
    const seen: string[] = [];
    const c = new Controller({
      name: 'test',
      logger: silent,
      clock,
      reconcile: async (k) => {
        seen.push(k.name);
      },
    }).watchPrimary(primary.inf);
    primary.inf.start();
    primary.release();
    await primary.inf.waitForSync();
    await flushPromises();
    primary.watch.last().send('ADDED', o('b'));
    expect(seen).toEqual([]);
    await c.start();
    await c.whenIdle();
    expect(seen.sort()).toEqual(['a', 'b']);
    await c.stop();
    await primary.inf.stop();
  });
});
