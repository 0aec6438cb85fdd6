import { createServer, type Server } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { type RunContext, RunnableGroup, runnableValue, stopOnly, stopOnSignals } from './runnables.js';
import { accepts, recording } from './testing.js';

const logger = pino({ level: 'silent' });

/** A real loopback TCP server as a runnable: start resolves once it accepts connections. */
function tcpServer(name: string) {
  return runnableValue<{ server: Server; port: number }>(
    name,
    () =>
      new Promise((resolve, reject) => {
        const server = createServer((s) => s.end());
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const addr = server.address();
          resolve({ server, port: typeof addr === 'object' && addr ? addr.port : 0 });
        });
      }),
    ({ server }) => new Promise<void>((r) => server.close(() => r())),
  );
}

const group = (o: Partial<ConstructorParameters<typeof RunnableGroup>[0]> = {}) =>
  new RunnableGroup({ logger, ...o });

describe('RunnableGroup', () => {
  it('starts in registration order, each after the previous start resolved, and stops in reverse', async () => {
    const log: string[] = [];
    const g = group()
      .add(recording('health', log))
      .add(recording('listener', log))
      .add(recording('client', log));
    await g.start();
    expect(log).toEqual(['start health', 'start listener', 'start client']);
    expect(g.running()).toEqual(['health', 'listener', 'client']);
    log.length = 0;
    await g.stop();
    expect(log).toEqual(['stop client', 'stop listener', 'stop health']);
    expect(g.running()).toEqual([]);
  });

  it('is ready only between the end of start and the beginning of stop', async () => {
    const seen: Record<string, boolean> = {};
    const g = group();
    g.add({
      name: 'probe',
      start: () => {
        seen.start = g.ready();
      },
      stop: () => {
        seen.stop = g.ready();
      },
    });
    expect(g.ready()).toBe(false);
    await g.start();
    expect(g.ready()).toBe(true);
    await g.stop();
    expect(g.ready()).toBe(false);
    expect(seen).toEqual({ start: false, stop: false });
  });

  it('lets a part use the value of a part registered before it, and serves a real server between start and stop', async () => {
    const server = tcpServer('server');
    let seenPort: number | undefined;
    const g = group()
      .add(server)
      .add({
        name: 'client',
        start: () => {
          seenPort = server.get().port;
        },
        stop: () => {},
      });
    await g.start();
    const port = server.get().port;
    expect(seenPort).toBe(port);
    expect(await accepts(port)).toBe(true);
    await g.stop();
    expect(await accepts(port)).toBe(false);
  });

  it('refuses to hand out a value before its runnable started, naming it', () => {
    expect(() => tcpServer('authority').get()).toThrow(
      /authority is not started: register it before the parts that use it/,
    );
  });

  it('rollback (default): a failed start stops what started before it, in reverse, starts nothing after it, and names the part', async () => {
    const log: string[] = [];
    const g = group()
      .add(recording('health', log))
      .add(recording('audit', log))
      .add(recording('listener', log, { failStart: true }))
      .add(recording('client', log));
    await expect(g.start()).rejects.toThrow(/^listener failed to start: listener cannot bind its port$/);
    expect(log).toEqual(['start health', 'start audit', 'stop audit', 'stop health']);
    expect(g.ready()).toBe(false);
    await g.stop();
    expect(log).toHaveLength(4);
  });

  it('continue: a part that fails to start is skipped and the others start and stop', async () => {
    const log: string[] = [];
    const g = group({ onStartFailure: 'continue' })
      .add(recording('broken', log, { failStart: true }))
      .add(recording('reconciler', log));
    await g.start();
    expect(g.running()).toEqual(['reconciler']);
    await g.stop();
    expect(log).toEqual(['start reconciler', 'stop reconciler']);
  });

  it('keeps stopping the other parts when one fails to stop', async () => {
    const log: string[] = [];
    const g = group()
      .add(recording('a', log))
      .add(recording('b', log, { failStop: true }))
      .add(recording('c', log));
    await g.start();
    log.length = 0;
    await g.stop();
    expect(log).toEqual(['stop c', 'stop b', 'stop a']);
  });

  it.each([
    ['stop()', (g: RunnableGroup, _outer: AbortController) => g.stop()],
    ['the outer signal', (_g: RunnableGroup, outer: AbortController) => outer.abort()],
  ])('%s during a start aborts the start in progress and starts nothing after it', async (_n, interrupt) => {
    const log: string[] = [];
    const outer = new AbortController();
    let signal: AbortSignal | undefined;
    let entered!: () => void;
    const inStart = new Promise<void>((r) => {
      entered = r;
    });
    const g = group({ signal: outer.signal })
      .add(recording('health', log))
      .add({
        name: 'waits-for-snapshot',
        start: (ctx: RunContext) =>
          new Promise<void>((resolve) => {
            signal = ctx.signal;
            entered();
            ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          }),
        stop: () => {
          log.push('stop waits-for-snapshot');
        },
      })
      .add(recording('later', log));
    const starting = g.start();
    await inStart;
    await interrupt(g, outer);
    await starting;
    expect(signal?.aborted).toBe(true);
    expect(g.ready()).toBe(false);
    await g.stop();
    expect(log).toEqual(['start health', 'stop waits-for-snapshot', 'stop health']);
  });

  it('stop is idempotent and start after stop does not restart', async () => {
    const log: string[] = [];
    const g = group().add(recording('a', log));
    await g.start();
    await Promise.all([g.stop(), g.stop()]);
    await g.start();
    expect(log).toEqual(['start a', 'stop a']);
  });

  it('refuses a registration after start and a repeated name, saying what to do', async () => {
    const g = group().add(recording('a', []));
    expect(() => g.add(recording('a', []))).toThrow(/already registered; names must be unique/);
    await g.start();
    expect(() => g.add(recording('b', []))).toThrow(
      /cannot add runnable 'b' after start; register every part first/,
    );
    expect(g.names()).toEqual(['a']);
    await g.stop();
  });

  it('a stop-only part is stopped at its place in the order', async () => {
    const log: string[] = [];
    const g = group()
      .add(recording('a', log))
      .add(stopOnly('subscription', () => void log.push('stop subscription')))
      .add(recording('b', log));
    await g.start();
    await g.stop();
    expect(log).toEqual(['start a', 'start b', 'stop b', 'stop subscription', 'stop a']);
  });
});

describe('stopOnSignals', () => {
  it.each([
    ['SIGTERM', 'ok', 0],
    ['SIGINT', 'ok', 0],
    ['SIGTERM', 'fails', 1],
  ] as const)('on %s stops once (stop %s) and exits %i', async (signal, outcome, code) => {
    let stops = 0;
    const exits: number[] = [];
    let exited!: () => void;
    const done = new Promise<void>((r) => {
      exited = r;
    });
    const remove = stopOnSignals(
      async () => {
        stops++;
        if (outcome === 'fails') throw new Error('listener would not close');
      },
      logger,
      (c) => {
        exits.push(c);
        exited();
      },
    );
    try {
      process.emit(signal, signal);
      process.emit(signal, signal);
      await done;
      expect(stops).toBe(1);
      expect(exits).toEqual([code]);
    } finally {
      remove();
    }
  });

  it('removes its handlers when asked', () => {
    const before = process.listenerCount('SIGTERM');
    const remove = stopOnSignals(
      async () => {},
      logger,
      () => {},
    );
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    remove();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
