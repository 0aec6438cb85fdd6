/**
 * Tiny benchmark helpers: warm up, time N iterations per repeat, report per-call
 * latency percentiles (µs) as the median across repeats plus the spread, and
 * throughput from batch timing. Numbers go to bench/results/latest.json via run.ts.
 */

export interface Spread {
  readonly min: number;
  readonly max: number;
}

export interface BenchResult {
  /** Unique name, e.g. `policy/decide/20-policies`. */
  readonly name: string;
  /** Median across repeats of each repeat's p50 / p99 / mean latency, in microseconds. */
  readonly p50Micros: number;
  readonly p99Micros: number;
  readonly meanMicros: number;
  /** Operations per second (from mean latency, or from batch timing for throughput()). */
  readonly opsPerSec: number;
  /**
   * CPU time of this process per operation (µs), from process.cpuUsage() over the
   * timed batches: unlike wall time it excludes time the process spent preempted,
   * so it is the steadier number on a busy machine. `1e6 / cpuMicrosPerOp` is
   * operations per CPU-second, i.e. per core.
   */
  readonly cpuMicrosPerOp?: number;
  readonly iterations: number;
  readonly repeats: number;
  /** Min/max of the per-repeat values across repeats: how stable the number is. */
  readonly spread: { readonly p50: Spread; readonly p99: Spread; readonly opsPerSec: Spread };
  /** Optional target, e.g. `{ metric: 'p99Micros', max: 20 }`, shown as pass/fail. */
  readonly target?: BenchTarget;
  readonly note?: string;
}

export interface BenchTarget {
  readonly metric: 'p50Micros' | 'p99Micros' | 'meanMicros' | 'opsPerSec' | 'cpuOpsPerSec';
  readonly max?: number;
  readonly min?: number;
}

export interface MeasureOptions {
  readonly warmup?: number;
  readonly iterations?: number;
  readonly repeats?: number;
  readonly target?: BenchTarget;
  readonly note?: string;
}

const nowNanos = (): bigint => process.hrtime.bigint();

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

function spreadOf(values: readonly number[]): Spread {
  return { min: Math.min(...values), max: Math.max(...values) };
}

/** Keeps results observable so the JIT cannot drop the measured call. */
let sink: unknown;
export function consume(v: unknown): void {
  sink = v;
}
export function lastSink(): unknown {
  return sink;
}

/** Per-call latency: each call timed on its own (timer overhead, ~0.05 µs, is included). */
export function measure(name: string, fn: () => unknown, options: MeasureOptions = {}): BenchResult {
  const { warmup = 2_000, iterations = 20_000, repeats = 5 } = options;
  for (let i = 0; i < warmup; i++) consume(fn());
  const p50s: number[] = [];
  const p99s: number[] = [];
  const means: number[] = [];
  const samples = new Float64Array(iterations);
  const cpuPerOp: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < iterations; i++) {
      const t0 = nowNanos();
      consume(fn());
      samples[i] = Number(nowNanos() - t0) / 1000;
    }
    const cpu = process.cpuUsage(cpu0);
    cpuPerOp.push((cpu.user + cpu.system) / iterations);
    const sorted = Array.from(samples).sort((a, b) => a - b);
    p50s.push(percentile(sorted, 50));
    p99s.push(percentile(sorted, 99));
    means.push(sorted.reduce((s, v) => s + v, 0) / sorted.length);
  }
  const ops = means.map((m) => 1e6 / m);
  return {
    name,
    p50Micros: median(p50s),
    p99Micros: median(p99s),
    meanMicros: median(means),
    opsPerSec: median(ops),
    cpuMicrosPerOp: median(cpuPerOp),
    iterations,
    repeats,
    spread: { p50: spreadOf(p50s), p99: spreadOf(p99s), opsPerSec: spreadOf(ops) },
    ...(options.target ? { target: options.target } : {}),
    ...(options.note ? { note: options.note } : {}),
  };
}

/** Throughput: calls per second over batches of `iterations` calls, timed as a whole (no per-call timer). */
export function throughput(name: string, fn: () => unknown, options: MeasureOptions = {}): BenchResult {
  const { warmup = 2_000, iterations = 100_000, repeats = 5 } = options;
  for (let i = 0; i < warmup; i++) consume(fn());
  const means: number[] = [];
  const cpuPerOp: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const cpu0 = process.cpuUsage();
    const t0 = nowNanos();
    for (let i = 0; i < iterations; i++) consume(fn());
    means.push(Number(nowNanos() - t0) / 1000 / iterations);
    const cpu = process.cpuUsage(cpu0);
    cpuPerOp.push((cpu.user + cpu.system) / iterations);
  }
  const ops = means.map((m) => 1e6 / m);
  const mean = median(means);
  return {
    name,
    p50Micros: mean,
    p99Micros: Number.NaN,
    meanMicros: mean,
    opsPerSec: median(ops),
    cpuMicrosPerOp: median(cpuPerOp),
    iterations,
    repeats,
    spread: { p50: spreadOf(means), p99: { min: Number.NaN, max: Number.NaN }, opsPerSec: spreadOf(ops) },
    ...(options.target ? { target: options.target } : {}),
    ...(options.note ? { note: options.note } : {}),
  };
}

/** The value of a metric; `cpuOpsPerSec` is operations per CPU-second (per core). */
export function metricValue(result: BenchResult, metric: BenchTarget['metric']): number {
  if (metric === 'cpuOpsPerSec')
    return result.cpuMicrosPerOp === undefined ? Number.NaN : 1e6 / result.cpuMicrosPerOp;
  return result[metric];
}

/** How many times faster `a` is than `b` on a metric (latency metrics: b/a; rates: a/b). */
export function ratio(a: BenchResult, b: BenchResult, metric: BenchTarget['metric'] = 'p50Micros'): number {
  const va = metricValue(a, metric);
  const vb = metricValue(b, metric);
  return metric === 'opsPerSec' || metric === 'cpuOpsPerSec' ? va / vb : vb / va;
}

/** Whether a result meets its target (undefined when it has none). */
export function meetsTarget(result: BenchResult): boolean | undefined {
  const t = result.target;
  if (!t) return undefined;
  const v = metricValue(result, t.metric);
  return (t.max === undefined || v <= t.max) && (t.min === undefined || v >= t.min);
}
