/**
 * The harness itself: a private control plane restarts its API server on the same
 * port with its data intact, and stop() leaves no process, port or temp dir behind.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { startControlPlane } from '../harness/index.js';

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

describe('local control plane lifecycle', () => {
  it('restarts the API server keeping state, and stops cleanly', async () => {
    const cp = await startControlPlane();
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'survives-restart' } } });

    await cp.restartApiServer();
    const ns = await core.readNamespace({ name: 'survives-restart' });
    expect(ns.metadata?.name).toBe('survives-restart');

    const port = Number(new URL(cp.server).port);
    expect(await portIsFree(port)).toBe(false);
    await cp.stop();
    expect(await portIsFree(port)).toBe(true);
    expect(existsSync(cp.dir)).toBe(false);
    await expect(core.listNamespace()).rejects.toThrow();
  });
});
