import { describe, expect, it } from 'vitest';
import { ConflictError, isTerminal, TerminalError } from './errors.js';
import { backoffDelay, DEFAULT_BACKOFF, type Outcome, type ProcessResult, WorkQueue } from './queue.js';
import { FakeClock, flushPromises } from './testing/fake-clock.js';

/** A handler whose passes the test resolves or rejects by hand. */
function controllableHandler() {
  const calls: string[] = [];
  const pending = new Map<
    string,
    Array<{ resolve: (r?: ProcessResult) => void; reject: (e: unknown) => void }>
  >();
  const process = (key: string) => {
    calls.push(key);
    return new Promise<ProcessResult | undefined>((resolve, reject) => {
      const list = pending.get(key) ?? [];
      list.push({ resolve, reject });
      pending.set(key, list);
    });
  };
  const take = (key: string) => {
    const list = pending.get(key);
    const next = list?.shift();
    if (!next) throw new Error(`no pending pass for ${key}`);
    return next;
  };
  return {
    calls,
    process,
    inFlight: () => [...pending.entries()].filter(([, l]) => l.length > 0).map(([k]) => k),
    async succeed(key: string, result?: ProcessResult) {
      take(key).resolve(result);
      await flushPromises();
    },
    async fail(key: string, err: unknown = new Error('boom')) {
      take(key).reject(err);
      await flushPromises();
    },
  };
}

/** Random source fixed at the midpoint: jitter factor exactly 1. */
const midRandom = () => 0.5;

function makeQueue(opts: { concurrency?: number; random?: () => number } = {}) {
  const clock = new FakeClock();
  const h = controllableHandler();
  const outcomes: Array<[string, Outcome, number | undefined]> = [];
  const queue = new WorkQueue<string>({
    process: h.process,
    clock,
    random: opts.random ?? midRandom,
    concurrency: opts.concurrency ?? 1,
    observer: { processed: (key, outcome, _ms, d) => outcomes.push([key, outcome, d.retryInMs]) },
  });
  return { clock, h, queue, outcomes };
}

describe('backoffDelay', () => {
  it.each([
    ['first retry is the base delay', 1, 1_000],
    ['doubles each failure', 2, 2_000],
    ['keeps doubling', 5, 16_000],
    ['caps at five minutes', 9, 256_000],
    ['stays at the cap', 10, 300_000],
    ['does not overflow for absurd failure counts', 5_000, 300_000],
    ['treats zero as the first retry', 0, 1_000],
  ])('%s', (_name, failures, expected) => {
    expect(backoffDelay(failures, DEFAULT_BACKOFF, midRandom)).toBe(expected);
  });

  it('jitter stays within ±10 % of the nominal delay', () => {
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0)).toBe(3_600);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0.999_999)).toBe(4_400);
    expect(backoffDelay(20, DEFAULT_BACKOFF, () => 0)).toBe(270_000);
  });
});

describe('WorkQueue', () => {
  it('merges adds of a key that is waiting', async () => {
    const { h, queue } = makeQueue();
    queue.add('a'); // starts immediately (one worker)
    queue.add('b');
    queue.add('b');
    queue.add('b');
    expect(queue.stats().ready).toBe(1);
    await h.succeed('a');
    await h.succeed('b');
    expect(h.calls).toEqual(['a', 'b']);
  });

  it('never processes one key twice at once; an add while in flight re-runs it once after', async () => {
    const { h, queue } = makeQueue({ concurrency: 4 });
    queue.add('a');
    await flushPromises();
    queue.add('a');
    queue.add('a');
    expect(h.inFlight()).toEqual(['a']);
    expect(h.calls).toEqual(['a']);
    await h.succeed('a');
    expect(h.calls).toEqual(['a', 'a']);
    await h.succeed('a');
    expect(h.calls).toEqual(['a', 'a']);
    expect(queue.stats()).toEqual({ ready: 0, processing: 0, delayed: 0, dirty: 0 });
  });

  it('runs at most `concurrency` keys in parallel', async () => {
    const { h, queue } = makeQueue({ concurrency: 2 });
    for (const k of ['a', 'b', 'c', 'd']) queue.add(k);
    await flushPromises();
    expect(h.inFlight().sort()).toEqual(['a', 'b']);
    await h.succeed('b');
    expect(h.inFlight().sort()).toEqual(['a', 'c']);
    await h.succeed('a');
    await h.succeed('c');
    await h.succeed('d');
    expect(h.calls).toEqual(['a', 'b', 'c', 'd']);
  });

  it('retries a failing key with exponential backoff and resets it on success', async () => {
    const { clock, h, queue, outcomes } = makeQueue();
    queue.add('a');
    await h.fail('a');
    expect(queue.numFailures('a')).toBe(1);
    expect(clock.pendingDelays()).toEqual([1_000]);
    await clock.advance(999);
    expect(h.calls).toHaveLength(1);
    await clock.advance(1);
    expect(h.calls).toHaveLength(2);
    await h.fail('a');
    expect(clock.pendingDelays()).toEqual([2_000]);
    await clock.advance(2_000);
    await h.fail('a');
    expect(clock.pendingDelays()).toEqual([4_000]);
    await clock.advance(4_000);
    await h.succeed('a');
    expect(queue.numFailures('a')).toBe(0);
    expect(clock.pending()).toBe(0);
    expect(outcomes.map(([, o]) => o)).toEqual(['error', 'error', 'error', 'success']);

    // After the reset, the next failure starts from the base delay again.
    queue.add('a');
    await h.fail('a');
    expect(clock.pendingDelays()).toEqual([1_000]);
  });

  it('keeps backoff per key: one failing key does not slow another', async () => {
    const { clock, h, queue } = makeQueue();
    queue.add('bad');
    await h.fail('bad');
    await clock.advance(1_000);
    await h.fail('bad');
    queue.add('good');
    await h.succeed('good');
    expect(queue.numFailures('bad')).toBe(2);
    expect(queue.numFailures('good')).toBe(0);
    expect(h.calls).toEqual(['bad', 'bad', 'good']);
  });

  it('caps the backoff at five minutes', async () => {
    const { clock, h, queue } = makeQueue();
    queue.add('a');
    for (let i = 0; i < 12; i++) {
      await h.fail('a');
      const [delay] = clock.pendingDelays();
      expect(delay).toBeLessThanOrEqual(300_000);
      await clock.advance(delay ?? 0);
    }
    expect(h.calls).toHaveLength(13);
  });

  it('retries a 409 Conflict soon and without counting it as a failure', async () => {
    const { clock, h, queue, outcomes } = makeQueue();
    queue.add('a');
    await h.fail('a', new ConflictError('AgentIdentity ns/a status'));
    expect(queue.numFailures('a')).toBe(0);
    const [delay] = clock.pendingDelays();
    expect(delay).toBeGreaterThanOrEqual(100);
    expect(delay).toBeLessThanOrEqual(200);
    await clock.advance(delay ?? 0);
    await h.fail('a', Object.assign(new Error('conflict'), { code: 409 }));
    expect(queue.numFailures('a')).toBe(0);
    expect(outcomes.map(([, o]) => o)).toEqual(['conflict', 'conflict']);
  });

  it.each([
    ['a TerminalError', new TerminalError('spec.target is not a URL')],
    ['an API 422 Invalid', Object.assign(new Error('invalid'), { code: 422 })],
    ['an API 400 Bad Request', Object.assign(new Error('bad request'), { code: 400 })],
  ])('reports %s once and does not retry it', async (_name, err) => {
    const { clock, h, queue, outcomes } = makeQueue();
    queue.add('a');
    await h.fail('a');
    await clock.advance(1_000);
    await h.fail('a', err);
    expect(outcomes.map(([, o, retry]) => [o, retry])).toEqual([
      ['error', 1_000],
      ['terminal', undefined],
    ]);
    expect(clock.pendingDelays()).toEqual([]);
    expect(queue.numFailures('a')).toBe(0);
    expect(queue.has('a')).toBe(false);
    // A later change queues the key again as usual.
    queue.add('a');
    await h.succeed('a');
    expect(h.calls).toEqual(['a', 'a', 'a']);
  });

  it.each([
    ['401', 401],
    ['403', 403],
    ['404', 404],
    ['429', 429],
    ['500', 500],
  ])('an API %s is retried with backoff (it can change with time)', async (_name, code) => {
    const err = Object.assign(new Error(`http ${code}`), { code });
    expect(isTerminal(err)).toBe(false);
    const { h, queue, outcomes } = makeQueue();
    queue.add('a');
    await h.fail('a', err);
    expect(outcomes.map(([, o]) => o)).toEqual(['error']);
    expect(queue.numFailures('a')).toBe(1);
  });

  it('schedules requeueAfter and resets failures', async () => {
    const { clock, h, queue, outcomes } = makeQueue();
    queue.add('a');
    await h.fail('a');
    await clock.advance(1_000);
    await h.succeed('a', { requeueAfter: 60_000 });
    expect(queue.numFailures('a')).toBe(0);
    expect(clock.pendingDelays()).toEqual([60_000]);
    await clock.advance(60_000);
    expect(h.calls).toHaveLength(3);
    expect(outcomes[1]).toEqual(['a', 'requeue', 60_000]);
  });

  it('an immediate add replaces a pending delayed retry instead of doubling it', async () => {
    const { clock, h, queue } = makeQueue();
    queue.add('a');
    await h.succeed('a', { requeueAfter: 30_000 });
    queue.add('a');
    expect(clock.pending()).toBe(0);
    await h.succeed('a');
    await clock.advance(30_000);
    expect(h.calls).toEqual(['a', 'a']);
  });

  it('addAfter keeps the earlier of two deadlines', async () => {
    const { clock, h, queue } = makeQueue();
    queue.addAfter('a', 10_000);
    queue.addAfter('a', 50_000);
    expect(clock.pendingDelays()).toEqual([10_000]);
    queue.addAfter('a', 5_000);
    expect(clock.pendingDelays()).toEqual([5_000]);
    await clock.advance(5_000);
    expect(h.calls).toEqual(['a']);
  });

  it('a change arriving during a failing pass is looked at immediately, keeping the failure count', async () => {
    const { clock, h, queue } = makeQueue();
    queue.add('a');
    await flushPromises();
    queue.add('a');
    await h.fail('a');
    expect(h.calls).toEqual(['a', 'a']);
    expect(clock.pending()).toBe(0);
    expect(queue.numFailures('a')).toBe(1);
    await h.fail('a');
    expect(clock.pendingDelays()).toEqual([2_000]);
  });

  it('a handler that throws a non-Error value is still retried', async () => {
    const { clock, h, queue } = makeQueue();
    queue.add('a');
    await h.fail('a', 'a string, not an Error');
    expect(clock.pendingDelays()).toEqual([1_000]);
  });

  it('a throwing observer does not stop the queue', async () => {
    const clock = new FakeClock();
    const seen: string[] = [];
    const queue = new WorkQueue<string>({
      clock,
      process: async (k) => {
        seen.push(k);
      },
      observer: {
        processed: () => {
          throw new Error('observer bug');
        },
      },
    });
    queue.add('a');
    queue.add('b');
    await queue.whenIdle();
    expect(seen).toEqual(['a', 'b']);
  });

  describe('shutdown', () => {
    it('stops accepting work, drops queued and delayed keys, and drains in-flight passes', async () => {
      const { clock, h, queue } = makeQueue();
      queue.add('a');
      queue.add('b');
      queue.addAfter('c', 1_000);
      await flushPromises();
      const done = queue.shutdown(10_000);
      queue.add('d');
      queue.addAfter('e', 10);
      await h.succeed('a');
      const result = await done;
      expect(result).toEqual({ drained: true, abandoned: [] });
      await clock.advance(60_000);
      expect(h.calls).toEqual(['a']);
    });

    it('gives up after the deadline, reports what was abandoned and aborts the handlers', async () => {
      const clock = new FakeClock();
      let signal: AbortSignal | undefined;
      const queue = new WorkQueue<string>({
        clock,
        process: (_k, ctx) => {
          signal = ctx.signal;
          return new Promise(() => {}); // never finishes
        },
      });
      queue.add('stuck');
      await flushPromises();
      const done = queue.shutdown(5_000);
      await clock.advance(5_000);
      expect(await done).toEqual({ drained: false, abandoned: ['stuck'] });
      expect(signal?.aborted).toBe(true);
    });

    it('does not retry a pass that fails during the drain', async () => {
      const { clock, h, queue } = makeQueue();
      queue.add('a');
      await flushPromises();
      const done = queue.shutdown(10_000);
      await h.fail('a');
      expect(await done).toEqual({ drained: true, abandoned: [] });
      await clock.advance(600_000);
      expect(h.calls).toEqual(['a']);
    });

    it('returns at once when nothing is in flight', async () => {
      const { queue } = makeQueue();
      expect(await queue.shutdown(1_000)).toEqual({ drained: true, abandoned: [] });
    });
  });
});
