/**
 * Tiny benchmark helpers: warm up, time N iterations per repeat, report per-call
 * latency percentiles (µs) as the median across repeats plus the spread, the pooled
 * distribution for the chart, and throughput from batch timing. Numbers go to
 * bench/results/latest.json (and the report) via run.ts.
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
  /**
   * CPU per operation over a CPU peer's, both measured in the same repeat (median over repeats):
   * e.g. the broker's CPU per call over the bare Node proxy's in the same process.
   */
  readonly cpuRatio?: number;
  readonly iterations: number;
  readonly repeats: number;
  /** Min/max of the per-repeat values across repeats: how stable the number is. */
  readonly spread: { readonly p50: Spread; readonly p99: Spread; readonly opsPerSec: Spread };
  /** Optional target, e.g. `{ metric: 'p99Micros', max: 20 }`, shown as pass/fail. */
  readonly target?: BenchTarget;
  readonly note?: string;
  /**
   * The latency distribution behind p50/p99 (all per-call samples of all repeats, µs), for the
   * report's chart. Optional: results without per-call samples (a rate, one cold start) have none.
   */
  readonly distribution?: Distribution;
  /**
   * Name of the peer result measured in the same run that this one is compared with (the direct
   * upstream call, raw node:crypto signing): the report prints p50/p99 ratios against it.
   */
  readonly baseline?: string;
  /**
   * The Node.js version (process.version) that produced this result. bench/run.ts sets it: a
   * filtered run merges its results with earlier ones, which may come from another Node.
   */
  readonly node?: string;
}

/** A compact latency distribution (µs): what the chart draws, small enough for latest.json. */
export interface Distribution {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export interface BenchTarget {
  readonly metric: 'p50Micros' | 'p99Micros' | 'meanMicros' | 'opsPerSec' | 'cpuOpsPerSec' | 'cpuRatio';
  readonly max?: number;
  readonly min?: number;
}

export interface MeasureOptions {
  readonly warmup?: number;
  readonly iterations?: number;
  readonly repeats?: number;
  readonly target?: BenchTarget;
  readonly note?: string;
  readonly baseline?: string;
}

const nowNanos = (): bigint => process.hrtime.bigint();

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  // Nearest rank; the epsilon keeps float noise (99.9 / 100 * 1000 = 999.0000000000001) from
  // moving the rank up by one.
  const rank = Math.ceil((p * sorted.length) / 100 - 1e-9);
  const index = Math.min(sorted.length - 1, Math.max(0, rank - 1));
  return sorted[index] as number;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export function spreadOf(values: readonly number[]): Spread {
  return { min: Math.min(...values), max: Math.max(...values) };
}

/** The distribution of latency samples (µs); undefined without samples. */
export function distributionOf(samples: ArrayLike<number>): Distribution | undefined {
  if (samples.length === 0) return undefined;
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    min: sorted[0] as number,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted[sorted.length - 1] as number,
  };
}

/** The optional fields every helper passes through. */
function extras(o: MeasureOptions): Pick<BenchResult, 'target' | 'note' | 'baseline'> {
  return {
    ...(o.target ? { target: o.target } : {}),
    ...(o.note ? { note: o.note } : {}),
    ...(o.baseline ? { baseline: o.baseline } : {}),
  };
}

/**
 * A result from per-call latency samples (µs), one array per repeat: p50/p99/mean are the median of
 * the repeats' values, the spread their min/max, the distribution pools every sample.
 */
export function latencyResult(
  name: string,
  repeats: readonly ArrayLike<number>[],
  options: MeasureOptions & { readonly cpuMicrosPerOp?: readonly number[] } = {},
): BenchResult {
  const p50s: number[] = [];
  const p99s: number[] = [];
  const means: number[] = [];
  let total = 0;
  for (const samples of repeats) {
    const sorted = Float64Array.from(samples).sort();
    p50s.push(percentile(sorted, 50));
    p99s.push(percentile(sorted, 99));
    means.push(sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length));
    total += sorted.length;
  }
  const pooled = new Float64Array(total);
  let at = 0;
  for (const samples of repeats) {
    pooled.set(Float64Array.from(samples), at);
    at += samples.length;
  }
  const ops = means.map((m) => 1e6 / m);
  const cpu = options.cpuMicrosPerOp ?? [];
  const distribution = distributionOf(pooled);
  return {
    name,
    p50Micros: median(p50s),
    p99Micros: median(p99s),
    meanMicros: median(means),
    opsPerSec: median(ops),
    ...(cpu.length > 0 ? { cpuMicrosPerOp: median(cpu) } : {}),
    iterations: repeats[0]?.length ?? 0,
    repeats: repeats.length,
    spread: { p50: spreadOf(p50s), p99: spreadOf(p99s), opsPerSec: spreadOf(ops) },
    ...extras(options),
    ...(distribution ? { distribution } : {}),
  };
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
  const runs: Float64Array[] = [];
  const cpuPerOp: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const samples = new Float64Array(iterations);
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < iterations; i++) {
      const t0 = nowNanos();
      consume(fn());
      samples[i] = Number(nowNanos() - t0) / 1000;
    }
    const cpu = process.cpuUsage(cpu0);
    cpuPerOp.push((cpu.user + cpu.system) / iterations);
    runs.push(samples);
  }
  return latencyResult(name, runs, { ...options, cpuMicrosPerOp: cpuPerOp });
}

/** Async calls one after another, each timed on its own: per-call latency like measure(). */
export async function measureAsync(
  name: string,
  fn: () => Promise<unknown>,
  options: MeasureOptions = {},
): Promise<BenchResult> {
  const { warmup = 200, iterations = 2_000, repeats = 3 } = options;
  for (let i = 0; i < warmup; i++) consume(await fn());
  const runs: Float64Array[] = [];
  const cpuPerOp: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const samples = new Float64Array(iterations);
    // CPU time of this process is immune to preemption by other processes, unlike wall time.
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < iterations; i++) {
      const t0 = nowNanos();
      consume(await fn());
      samples[i] = Number(nowNanos() - t0) / 1000;
    }
    const cpu = process.cpuUsage(cpu0);
    cpuPerOp.push((cpu.user + cpu.system) / iterations);
    runs.push(samples);
  }
  return latencyResult(name, runs, { ...options, cpuMicrosPerOp: cpuPerOp });
}

/**
 * Throughput: calls per second over batches of `iterations` calls, timed as a whole (no per-call
 * timer). Each repeat also times `latencySamples` calls one by one, for p50/p99 and the distribution.
 */
export function throughput(
  name: string,
  fn: () => unknown,
  options: MeasureOptions & { readonly latencySamples?: number } = {},
): BenchResult {
  const { warmup = 2_000, iterations = 100_000, repeats = 5 } = options;
  const latencySamples = Math.min(iterations, options.latencySamples ?? 5_000);
  for (let i = 0; i < warmup; i++) consume(fn());
  const means: number[] = [];
  const cpuPerOp: number[] = [];
  const runs: Float64Array[] = [];
  for (let r = 0; r < repeats; r++) {
    const cpu0 = process.cpuUsage();
    const t0 = nowNanos();
    for (let i = 0; i < iterations; i++) consume(fn());
    means.push(Number(nowNanos() - t0) / 1000 / iterations);
    const cpu = process.cpuUsage(cpu0);
    cpuPerOp.push((cpu.user + cpu.system) / iterations);
    const samples = new Float64Array(latencySamples);
    for (let i = 0; i < latencySamples; i++) {
      const t1 = nowNanos();
      consume(fn());
      samples[i] = Number(nowNanos() - t1) / 1000;
    }
    runs.push(samples);
  }
  const latency = latencyResult(name, runs, options);
  const ops = means.map((m) => 1e6 / m);
  return {
    ...latency,
    // Rates from the batch timing (no timer in the loop); latencies from the per-call pass.
    meanMicros: median(means),
    opsPerSec: median(ops),
    cpuMicrosPerOp: median(cpuPerOp),
    iterations,
    spread: { ...latency.spread, opsPerSec: spreadOf(ops) },
  };
}

/** The value of a metric; `cpuOpsPerSec` is operations per CPU-second (per core). */
export function metricValue(result: BenchResult, metric: BenchTarget['metric']): number {
  if (metric === 'cpuOpsPerSec')
    return result.cpuMicrosPerOp === undefined ? Number.NaN : 1e6 / result.cpuMicrosPerOp;
  if (metric === 'cpuRatio') return result.cpuRatio ?? Number.NaN;
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

/** Environment of bench/authority-process.ts (the authority forked as its own process). */
export const AUTHORITY_PROCESS_ENV = {
  kubeconfig: 'WARDEN_BENCH_AUTHORITY_KUBECONFIG',
  namespace: 'WARDEN_BENCH_AUTHORITY_NAMESPACE',
  issuer: 'WARDEN_BENCH_AUTHORITY_ISSUER',
} as const;

/** What bench/authority-process.ts answers to 'usage'. */
export interface AuthorityUsage {
  /** Resident set size now, and its peak over the process's life (bytes). */
  readonly rss: number;
  readonly maxRss: number;
  /** CPU time (user + system) so far, µs. */
  readonly cpuMicros: number;
}

/**
 * A positive integer from the environment variable `name`, or `fallback` when it is unset or
 * empty. Anything else (0, negative, fractional, not a number) throws naming the variable, rather
 * than quietly benchmarking another size than asked.
 */
export function envPositiveInt(
  name: string,
  fallback: number,
  env: Readonly<Record<string, string | undefined>> = process.env,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${raw}: expected a positive integer`);
  return n;
}

/**
 * The sizes a cost-growth benchmark measures up to `max`: the `steps` below it, then `max`
 * itself; ascending, without duplicates. (100, 300, 1000 for the default 1,000 brokers.)
 */
export function growthSizes(max: number, steps: readonly number[] = [100, 300]): number[] {
  return [...new Set([...steps.filter((s) => s > 0 && s < max), max])].sort((a, b) => a - b);
}
