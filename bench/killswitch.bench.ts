/**
 * Kill-switch latency: from the PATCH of spec.suspended to the first call the broker denies, over
 * 50 flips, through the real path (API server watch → authority policy store → SSE stream →
 * broker snapshot → denial). A private control plane, a real `warden controller` (in-process) and
 * a real broker; the agent calls continuously, so the number includes the call granularity
 * (a few ms). Target: p99 < 1 s (aim < 300 ms). Also: revive → first allowed call.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../e2e/controlplane/controlplane.js';
import { installCrds } from '../e2e/harness/crds.js';
import { type Stack, startStack } from '../e2e/killswitch-fixture.js';
import { type BenchResult, latencyResult, median } from './lib.js';

const FLIPS = Number(process.env.KILLSWITCH_FLIPS ?? 50);

/** Calls until `done(status)`; returns ms from t0 to the first such response. */
async function untilStatus(stack: Stack, t0: bigint, done: (status: number) => boolean): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await stack.call('GET');
    if (done(r.status)) return Number(process.hrtime.bigint() - t0) / 1e6;
    if (Date.now() > deadline) throw new Error('no state change at the broker within 10 s');
  }
}

function result(name: string, ms: number[], note: string, target?: BenchResult['target']): BenchResult {
  const micros = ms.map((m) => m * 1000);
  const r = latencyResult(name, [micros], { note, ...(target ? { target } : {}) });
  const d = r.distribution;
  return {
    ...r,
    // Wall-clock of a distributed path; this process's CPU is not the number that matters.
    cpuMicrosPerOp: Number.NaN,
    note: `${note}; min ${(d?.min ?? 0) / 1000} ms, max ${(d?.max ?? 0) / 1000} ms, median ${median(micros) / 1000} ms`,
  };
}

export async function run(): Promise<BenchResult[]> {
  const cp = await startControlPlane();
  let stack: Stack | undefined;
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'bench-kill' } } });
    stack = await startStack({ kubeConfig: kc, namespace: 'bench-kill' });
    await stack.waitReady();
    const kill: number[] = [];
    const revive: number[] = [];
    for (let i = 0; i < FLIPS; i++) {
      let t0 = process.hrtime.bigint();
      await stack.patchAgent({ suspended: true, suspendReason: `bench flip ${i}` });
      kill.push(await untilStatus(stack, t0, (s) => s !== 200));
      t0 = process.hrtime.bigint();
      await stack.patchAgent({ suspended: false, suspendReason: null });
      revive.push(await untilStatus(stack, t0, (s) => s === 200));
    }
    return [
      result(
        'killswitch/patch-to-first-denial',
        kill,
        `${FLIPS} flips: PATCH spec.suspended=true → first call the broker denies (watch → authority → SSE → broker)`,
        { metric: 'p99Micros', max: 1_000_000 },
      ),
      result(
        'killswitch/revive-to-first-allow',
        revive,
        `${FLIPS} flips: PATCH spec.suspended=false → first allowed call`,
      ),
    ];
  } finally {
    await stack?.stop();
    await cp.stop();
  }
}
