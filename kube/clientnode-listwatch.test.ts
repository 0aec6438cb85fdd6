/**
 * Pins the client-node ListWatch behaviours (1.4.0, unchanged in 2.0.1) that made us
 * write our own list+watch (docs/adr/0004-controller-core.md), and the 2.x Watch
 * inactivity timeout KubeConfigApi raises. If an upgrade changes them, these tests fail
 * and the decision should be revisited.
 */
import { KubeConfig, ListWatch, Watch } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { KubeConfigApi, WATCH_INACTIVITY_TIMEOUT_MS } from './kube.js';
import { flushPromises } from './testing/fake-clock.js';

type WatchArg = ConstructorParameters<typeof ListWatch>[1];
type ListFn = ConstructorParameters<typeof ListWatch>[2];

describe('client-node ListWatch (why kube/informer.ts exists)', () => {
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

describe('client-node Watch inactivity timeout', () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });

  it('is 30 s by default, shorter than an idle watch lasts', () => {
    expect(Reflect.get(new Watch(kc), 'requestTimeoutMs')).toBe(30_000);
  });

  it('is raised by KubeConfigApi beyond the informer watchdog', () => {
    const api = new KubeConfigApi(kc);
    expect(Reflect.get(api.watcher, 'requestTimeoutMs')).toBe(WATCH_INACTIVITY_TIMEOUT_MS);
    expect(WATCH_INACTIVITY_TIMEOUT_MS).toBeGreaterThan((600 + 30) * 1000);
  });
});
