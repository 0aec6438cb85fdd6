/**
 * Operator convergence from a cold start: N AgentIdentities + N AccessPolicies on a
 * private control plane, time until every object is Ready, and the operator's memory; next to
 * it the floor on the same API server — a bare client creating the same 2N objects and writing
 * each one's status once (operator/testing/coldstart.ts). N = 1,000 and 10,000 by default
 * (issue 20 asks whether 10k ≤ 10.5× the 1k time); WARDEN_BENCH_OPERATOR_SIZES=1000,5000,10000,20000
 * for the full curve, =1000 for a quick run.
 */
import { loadavg } from 'node:os';
import { measureColdStart, type PhaseCpu } from '../operator/testing/coldstart.js';
import type { BenchResult } from './lib.js';

/** A one-shot duration as a result (the latency columns are the duration). */
function once(name: string, ms: number, objects: number, extra: Partial<BenchResult>): BenchResult {
  const micros = ms * 1000;
  return {
    name,
    p50Micros: micros,
    p99Micros: micros,
    meanMicros: micros,
    opsPerSec: (objects / ms) * 1000,
    iterations: 1,
    repeats: 1,
    spread: {
      p50: { min: micros, max: micros },
      p99: { min: micros, max: micros },
      opsPerSec: { min: 0, max: 0 },
    },
    ...extra,
  };
}

const cpuNote = (c: PhaseCpu) =>
  `CPU kube-apiserver ${c.apiserver.toFixed(1)} s, etcd ${c.etcd.toFixed(1)} s, this process ${c.client.toFixed(1)} s`;

export async function run(): Promise<BenchResult[]> {
  const sizes = (process.env.WARDEN_BENCH_OPERATOR_SIZES ?? '1000,10000')
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  const out: BenchResult[] = [];
  for (const n of sizes) {
    const load0 = loadavg()[0]?.toFixed(1);
    const r = await measureColdStart(n, (l) => process.stderr.write(`operator ${n}: ${l}\n`), 4);
    const floorName = `operator/floor/${n}-agents-${n}-policies-status-once`;
    out.push(
      once(floorName, r.statusFloorMs, 2 * n, {
        note: `bare client, same API server: one status PATCH per object (${r.floorConcurrency} at a time) ${(r.statusFloorMs / 1000).toFixed(1)} s; creating the ${2 * n} objects (16 at a time) took ${(r.createMs / 1000).toFixed(1)} s; ${cpuNote(r.floorCpu)}; load average ${loadavg()[0]?.toFixed(1)}`,
      }),
      once(`operator/cold-start/${n}-agents-${n}-policies`, r.readyMs, 2 * n, {
        cpuMicrosPerOp: (r.cpuSeconds * 1e6) / (2 * n),
        baseline: floorName,
        note: `all ${2 * n} objects Ready in ${(r.readyMs / 1000).toFixed(1)} s (floor: status written once ${(r.statusFloorMs / 1000).toFixed(1)} s, ${(r.readyMs / r.statusFloorMs).toFixed(2)}×); ${r.reconciles} reconciles; RSS ${r.rssBeforeMiB} → ${r.rssAfterMiB} MiB, heap +${r.heapDeltaMiB} MiB; operator CPU ${r.cpuSeconds.toFixed(1)} s; until Ready ${cpuNote(r.operatorCpu)}; requests ${Object.entries(
          r.operatorRequests,
        )
          .map(([verb, count]) => `${verb} ${count}`)
          .join(
            ', ',
          )} (${r.operatorConflicts} conflicts); load average ${load0} at start, ${loadavg()[0]?.toFixed(1)} at end`,
      }),
    );
  }
  // Linear means 10× the objects in ≤ 10.5× the time (issue 20): each size against the first.
  const first = sizes[0] ?? 0;
  const base = out.find((x) => x.name === `operator/cold-start/${first}-agents-${first}-policies`);
  return out.map((r) => {
    const n = Number(/^operator\/cold-start\/(\d+)-/.exec(r.name)?.[1]);
    if (!base || !n || n === first) return r;
    return {
      ...r,
      note: `${r.note}; ${(r.p50Micros / base.p50Micros).toFixed(2)}× the ${first}-object time for ${n / first}× the objects`,
    };
  });
}
