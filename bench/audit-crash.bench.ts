/**
 * The audit path under crashes and what the spool costs (#18):
 * - audit/crash-matrix: the full crash matrix (e2e/faults/crash-matrix.ts) — 1,000 requests/s
 *   through a real broker with its audit spool while the broker, the leader controller and
 *   kube-apiserver are each SIGKILLed 5 times at seeded random moments; the counts are in the
 *   note (decisions received, entries, missing, duplicated, chain problems). It throws when the
 *   trail lost, changed or duplicated a decision: a benchmark run must not hide that.
 * - audit/broker-call-no-spool vs audit/broker-call-spool: per-call latency of the same traffic
 *   through the same broker without and with the spool (fdatasync per group commit), alternating,
 *   no faults: the added p50/p99 is the spool's cost.
 * Settings: WARDEN_BENCH_AUDIT_CRASH_RATE (1000), _SECONDS (150), _KILLS (5), _SEED;
 * WARDEN_BENCH_SPOOL_COST_RATE (1000), _SECONDS (15 per round, 2 rounds each).
 */
import { describeResult, drive, runCrashMatrix, startMatrixStack } from '../e2e/faults/crash-matrix.js';
import { type BenchResult, latencyResult } from './lib.js';

const env = (name: string, fallback: number) => Number(process.env[`WARDEN_BENCH_${name}`] ?? fallback);

async function spoolCost(): Promise<BenchResult[]> {
  const rate = env('SPOOL_COST_RATE', 1000);
  const seconds = env('SPOOL_COST_SECONDS', 15);
  const stack = await startMatrixStack();
  try {
    const rounds: Record<'spool' | 'none', number[][]> = { spool: [], none: [] };
    for (let round = 0; round < 2; round++) {
      for (const mode of ['none', 'spool'] as const) {
        await stack.killBroker();
        await stack.startBroker(mode === 'spool');
        for (let i = 0; i < 300 && (await stack.broker()?.readiness())?.status !== 200; i++) {
          await new Promise((r) => setTimeout(r, 200));
        }
        // Warm-up (credential, connections, JIT), then the measured run.
        await drive(stack.brokerUrl, {
          rate: Math.min(rate, 200),
          seconds: 2,
          prefix: `warm-${mode}-${round}`,
        });
        const ms: number[] = [];
        await drive(stack.brokerUrl, { rate, seconds, prefix: `cost-${mode}-${round}`, latencies: ms });
        rounds[mode].push(ms.map((v) => v * 1000));
      }
    }
    const none = latencyResult('audit/broker-call-no-spool', rounds.none, {
      note: `HTTP calls through the broker child process (policy decision, cached credential, loopback target) at ${rate}/s open loop, ${seconds} s × 2 rounds, no audit spool: entries wait in memory`,
    });
    const spool = latencyResult('audit/broker-call-spool', rounds.spool, {
      note: `the same calls with --audit-spool: each decision written and fdatasynced (group commit) before the answer; added p50 ${((latencyResult('', rounds.spool).p50Micros - none.p50Micros) / 1000).toFixed(2)} ms, p99 ${((latencyResult('', rounds.spool).p99Micros - none.p99Micros) / 1000).toFixed(2)} ms`,
    });
    return [none, { ...spool, baseline: none.name }];
  } finally {
    await stack.stop();
  }
}

async function crashMatrix(): Promise<BenchResult> {
  const kills = env('AUDIT_CRASH_KILLS', 5);
  const r = await runCrashMatrix({
    rate: env('AUDIT_CRASH_RATE', 1000),
    seconds: env('AUDIT_CRASH_SECONDS', 150),
    kills: { broker: kills, controller: kills, apiserver: kills },
    seed: env('AUDIT_CRASH_SEED', Date.now() % 100_000),
    log: (line) => console.log(`  [crash matrix] ${line}`),
  });
  const text = describeResult(r);
  console.log(text);
  if (r.missing.length + r.mismatched.length + r.duplicates.length + r.chainProblems.length > 0) {
    throw new Error(`the audit trail does not hold every decision exactly once:\n${text}`);
  }
  const micros = (r.seconds * 1e6) / Math.max(1, r.decisions);
  const ops = r.decisions / r.seconds;
  return {
    name: 'audit/crash-matrix',
    p50Micros: micros,
    p99Micros: micros,
    meanMicros: micros,
    opsPerSec: ops,
    iterations: r.decisions,
    repeats: 1,
    spread: {
      p50: { min: micros, max: micros },
      p99: { min: micros, max: micros },
      opsPerSec: { min: ops, max: ops },
    },
    note: `${text.replace(/\n\s*/g, '; ')} (latency columns = 1/decision rate)`,
  };
}

export async function run(): Promise<BenchResult[]> {
  // WARDEN_BENCH_AUDIT_PARTS=spool or =matrix runs one part.
  const parts = (process.env.WARDEN_BENCH_AUDIT_PARTS ?? 'spool,matrix').split(',');
  const out: BenchResult[] = [];
  if (parts.includes('spool')) {
    const cost = await spoolCost();
    for (const r of cost)
      console.log(
        `  ${r.name}: p50 ${(r.p50Micros / 1000).toFixed(2)} ms, p99 ${(r.p99Micros / 1000).toFixed(2)} ms; ${r.note}`,
      );
    out.push(...cost);
  }
  if (parts.includes('matrix')) out.push(await crashMatrix());
  return out;
}
