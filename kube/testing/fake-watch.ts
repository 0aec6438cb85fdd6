import type { WatchLike } from '../kube.js';

export interface FakeWatchCall {
  path: string;
  params: Record<string, string | number | boolean | undefined>;
  send(phase: string, obj: unknown): void;
  /** End the stream: null = clean close, otherwise the error client-node would report. */
  end(err?: unknown): void;
  aborted(): boolean;
}

/**
 * Stands in for client-node's Watch in informer unit tests: each watch() call is
 * recorded and the test drives its events and its end.
 */
export class FakeWatch implements WatchLike {
  readonly calls: FakeWatchCall[] = [];
  /** When set, the next watch() rejects with it (an error before connecting). */
  failNextWith: unknown;

  async watch(
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, obj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.failNextWith !== undefined) {
      const err = this.failNextWith;
      this.failNextWith = undefined;
      throw err;
    }
    const controller = new AbortController();
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      done(err ?? null);
    };
    controller.signal.addEventListener('abort', () =>
      end(Object.assign(new Error('aborted'), { name: 'AbortError' })),
    );
    this.calls.push({
      path,
      params,
      send: (phase, obj) => {
        if (!ended) callback(phase, obj);
      },
      end,
      aborted: () => controller.signal.aborted,
    });
    return controller;
  }

  last(): FakeWatchCall {
    const c = this.calls.at(-1);
    if (!c) throw new Error('no watch opened yet');
    return c;
  }
}
