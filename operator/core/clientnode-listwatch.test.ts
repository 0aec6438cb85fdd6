/**
 * Pins the client-node 1.4.0 ListWatch behaviours that made us write our own
 * list+watch (docs/adr/0004-controller-core.md). If an upgrade changes them, these
 * tests fail and the decision should be revisited.
 */
import { ListWatch } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { flushPromises } from '../testing/fake-clock.js';

type WatchArg = ConstructorParameters<typeof ListWatch>[1];
type ListFn = ConstructorParameters<typeof ListWatch>[2];

describe('client-node 1.4 ListWatch (why operator/core/informer.ts exists)', () => {
  it('opens a watch even when stop() was called during the initial list', async () => {
    let watches = 0;
    const watch = {
      watch: async () => {
        watches++;
        return new AbortController();
      },
    } as unknown as WatchArg;
    let release: (v: unknown) => void = () => {};
    const list = (() =>
      new Promise((r) => {
        release = r;
      })) as unknown as ListFn;
    const lw = new ListWatch('/api/v1/namespaces/x/serviceaccounts', watch, list, false);
    const started = lw.start();
    await flushPromises();
    await lw.stop();
    release({ items: [], metadata: { resourceVersion: '5' } });
    await started;
    expect(watches).toBe(1);
  });

  it('gives up after a non-410 watch error: only the error callback hears of it, nothing reconnects', async () => {
    let watches = 0;
    let done: (err: unknown) => void = () => {};
    const watch = {
      watch: async (_p: string, _q: unknown, _cb: unknown, d: (err: unknown) => void) => {
        watches++;
        done = d;
        return new AbortController();
      },
    } as unknown as WatchArg;
    const list = (async () => ({ items: [], metadata: { resourceVersion: '1' } })) as unknown as ListFn;
    const lw = new ListWatch('/x', watch, list, false);
    const errors: unknown[] = [];
    lw.on('error', (e) => errors.push(e));
    await lw.start();
    done(Object.assign(new Error('ECONNRESET'), { code: 'ECONNRESET' }));
    await flushPromises();
    expect(errors).toHaveLength(1);
    expect(watches).toBe(1);
  });

  it('rejects (instead of reporting an error) when opening the watch throws', async () => {
    const watch = {
      watch: async () => {
        throw new Error('exec credential plugin failed');
      },
    } as unknown as WatchArg;
    const list = (async () => ({ items: [], metadata: { resourceVersion: '1' } })) as unknown as ListFn;
    const lw = new ListWatch('/x', watch, list, false);
    const errors: unknown[] = [];
    lw.on('error', (e) => errors.push(e));
    await expect(lw.start()).rejects.toThrow('exec credential plugin failed');
    expect(errors).toEqual([]);
  });
});
