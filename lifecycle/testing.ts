/** Test helpers for runnables and the servers they start (not shipped). */
import { connect } from 'node:net';
import type { Runnable } from './runnables.js';

/** A runnable that writes what happens to it into `log`; it can fail its start or its stop. */
export function recording(
  name: string,
  log: string[],
  o: { failStart?: boolean; failStop?: boolean } = {},
): Runnable {
  return {
    name,
    async start() {
      await Promise.resolve();
      if (o.failStart) throw new Error(`${name} cannot bind its port`);
      log.push(`start ${name}`);
    },
    async stop() {
      log.push(`stop ${name}`);
      if (o.failStop) throw new Error(`${name} stop failed`);
    },
  };
}

/** Whether a loopback TCP port accepts connections now. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
