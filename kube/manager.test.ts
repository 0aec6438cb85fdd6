import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FIELD_MANAGER } from '../core/constants.js';
import type { RunContext } from '../lifecycle/runnables.js';
import { recording } from '../lifecycle/testing.js';
import type { KubeApi } from './kube.js';
import { Manager } from './manager.js';
import { AGENT_IDENTITIES, CREDENTIAL_PROVIDERS } from './resources.js';

const logger = pino({ level: 'silent' });

/** No API server in these tests: any call fails, so a test that needed one would show it. */
const noApi: KubeApi = {
  request: async (method, path) => {
    throw new Error(`unexpected API call ${method} ${path}`);
  },
  watcher: {
    watch: async (path) => {
      throw new Error(`unexpected watch ${path}`);
    },
  },
};

function manager(): Manager {
  return new Manager({ api: noApi, logger, identity: 'test-0', leaderElection: false });
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

describe('Manager start and stop', () => {
  it('starts runnables in registration order, leader-only ones after the others, and stops in reverse', async () => {
    const log: string[] = [];
    const mgr = manager()
      .add(recording('leader-a', log), { leaderOnly: true })
      .add(recording('health', log))
      .add(recording('webhook', log))
      .add(recording('leader-b', log), { leaderOnly: true });
    await mgr.start();
    await until('leader-only runnables started', () => mgr.isLeader());
    await mgr.settled();
    expect(log).toEqual(['start health', 'start webhook', 'start leader-a', 'start leader-b']);
    log.length = 0;
    await mgr.stop();
    expect(log).toEqual(['stop leader-b', 'stop leader-a', 'stop webhook', 'stop health']);
    expect(mgr.isLeader()).toBe(false);
  });

  it('is ready only between the end of start and the beginning of stop', async () => {
    let readyDuringStart: boolean | undefined;
    let readyDuringStop: boolean | undefined;
    const mgr = manager();
    mgr.add({
      name: 'probe',
      start: () => {
        readyDuringStart = mgr.ready();
      },
      stop: () => {
        readyDuringStop = mgr.ready();
      },
    });
    expect(mgr.ready()).toBe(false);
    await mgr.start();
    expect(mgr.ready()).toBe(true);
    await mgr.stop();
    expect(mgr.ready()).toBe(false);
    expect(readyDuringStart).toBe(false);
    expect(readyDuringStop).toBe(false);
  });

  it('a failed start stops what started before it, in reverse, starts nothing after it, and names the part', async () => {
    const log: string[] = [];
    const mgr = manager()
      .add(recording('health', log))
      .add(recording('audit', log))
      .add(recording('webhook', log, { failStart: true }))
      .add(recording('authority', log))
      .add(recording('reconciler', log), { leaderOnly: true });
    await expect(mgr.start()).rejects.toThrow(/webhook failed to start: webhook cannot bind its port/);
    expect(log).toEqual(['start health', 'start audit', 'stop audit', 'stop health']);
    expect(mgr.ready()).toBe(false);
    expect(mgr.isLeader()).toBe(false);
  });

  it('a leader-only runnable that fails to start does not keep the others from starting', async () => {
    const log: string[] = [];
    const mgr = manager()
      .add(recording('broken', log, { failStart: true }), { leaderOnly: true })
      .add(recording('reconciler', log), { leaderOnly: true });
    await mgr.start();
    await until('leading', () => mgr.isLeader());
    await mgr.settled();
    expect(log).toEqual(['start reconciler']);
    await mgr.stop();
    expect(log).toEqual(['start reconciler', 'stop reconciler']);
  });

  it('stop during a start aborts the start in progress and starts nothing after it', async () => {
    const log: string[] = [];
    let signal: AbortSignal | undefined;
    let entered!: () => void;
    const inStart = new Promise<void>((r) => {
      entered = r;
    });
    const mgr = manager()
      .add(recording('health', log))
      .add({
        name: 'waits-for-caches',
        start: (ctx: RunContext) =>
          new Promise<void>((resolve) => {
            signal = ctx.signal;
            entered();
            ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          }),
        stop: () => {
          log.push('stop waits-for-caches');
        },
      })
      .add(recording('later', log))
      .add(recording('reconciler', log), { leaderOnly: true });
    const starting = mgr.start();
    await inStart;
    await mgr.stop();
    await starting;
    expect(signal?.aborted).toBe(true);
    expect(log).toEqual(['start health', 'stop waits-for-caches', 'stop health']);
    expect(mgr.ready()).toBe(false);
  });

  it('stop is idempotent and start after stop does not restart', async () => {
    const log: string[] = [];
    const mgr = manager().add(recording('a', log));
    await mgr.start();
    await Promise.all([mgr.stop(), mgr.stop()]);
    await mgr.start();
    expect(log).toEqual(['start a', 'stop a']);
  });

  it('refuses a registration after start and a repeated name, saying what to do', async () => {
    const mgr = manager().add(recording('a', []));
    expect(() => mgr.add(recording('a', []))).toThrow(/already registered; names must be unique/);
    await mgr.start();
    expect(() => mgr.add(recording('b', []))).toThrow(
      /cannot add runnable 'b' after start; register every part first/,
    );
    expect(mgr.runnables()).toEqual([{ name: 'a', leaderOnly: false }]);
    await mgr.stop();
  });
});

describe('Manager cache and status writers', () => {
  it('hands every reader the same informer of a resource (one watch per resource and namespace)', () => {
    const mgr = new Manager({ api: noApi, logger, namespace: 'team-a', leaderElection: false });
    const a = mgr.cache.informer(AGENT_IDENTITIES);
    expect(mgr.cache.informer(AGENT_IDENTITIES)).toBe(a);
    expect(mgr.cache.informer(AGENT_IDENTITIES, 'team-a')).toBe(a);
    expect(mgr.cache.informer(AGENT_IDENTITIES, 'team-b')).not.toBe(a);
    expect(mgr.cache.informer(CREDENTIAL_PROVIDERS)).not.toBe(a);
    expect(mgr.cache.size()).toBe(3);
  });

  it('has one status writer per field manager', () => {
    const mgr = manager();
    expect(mgr.statusWriter()).toBe(mgr.statusWriter(FIELD_MANAGER));
    expect(mgr.statusWriter('warden-controller-revocation')).toBe(
      mgr.statusWriter('warden-controller-revocation'),
    );
    expect(mgr.statusWriter('warden-controller-revocation')).not.toBe(mgr.statusWriter());
  });
});
