import { describe, expect, it } from 'vitest';
import { distributionOf, envPositiveInt, growthSizes, latencyResult } from './lib.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('distributionOf', () => {
  it('gives nearest-rank percentiles of unsorted samples', () => {
    const shuffled = range(1000).reverse();
    expect(distributionOf(shuffled)).toEqual({
      count: 1000,
      min: 1,
      p50: 500,
      p90: 900,
      p99: 990,
      p999: 999,
      max: 1000,
    });
  });

  it('is undefined without samples', () => {
    expect(distributionOf([])).toBeUndefined();
  });
});

describe('latencyResult', () => {
  it('takes the median of the per-repeat percentiles, their spread, and pools the distribution', () => {
    const r = latencyResult('x', [range(100), range(100).map((v) => v * 2), range(100).map((v) => v * 3)], {
      baseline: 'peer',
      cpuMicrosPerOp: [5, 1, 3],
    });
    expect(r.p50Micros).toBe(100);
    expect(r.spread.p50).toEqual({ min: 50, max: 150 });
    expect(r.p99Micros).toBe(198);
    expect(r.cpuMicrosPerOp).toBe(3);
    expect(r.repeats).toBe(3);
    expect(r.distribution?.count).toBe(300);
    expect(r.distribution?.max).toBe(300);
    expect(r.baseline).toBe('peer');
  });

  it('has no distribution when no repeat recorded a sample', () => {
    const r = latencyResult('empty', [[]]);
    expect(r.distribution).toBeUndefined();
    expect(Number.isNaN(r.p50Micros)).toBe(true);
  });
});

describe('envPositiveInt', () => {
  it('reads a positive integer', () => {
    expect(envPositiveInt('N', 1000, { N: '300' })).toBe(300);
  });

  it('falls back when unset or empty', () => {
    expect(envPositiveInt('N', 1000, {})).toBe(1000);
    expect(envPositiveInt('N', 1000, { N: ' ' })).toBe(1000);
  });

  it.each(['0', '-5', '2.5', 'many', '1e'])('refuses %s naming the variable', (raw) => {
    expect(() =>
      envPositiveInt('WARDEN_BENCH_FANOUT_BROKERS', 1000, { WARDEN_BENCH_FANOUT_BROKERS: raw }),
    ).toThrow(`WARDEN_BENCH_FANOUT_BROKERS=${raw}: expected a positive integer`);
  });
});

describe('growthSizes', () => {
  it('measures the steps below the size, then the size', () => {
    expect(growthSizes(1000)).toEqual([100, 300, 1000]);
  });

  it('drops steps at or above the size', () => {
    expect(growthSizes(300)).toEqual([100, 300]);
    expect(growthSizes(50)).toEqual([50]);
  });

  it('sorts and deduplicates custom steps', () => {
    expect(growthSizes(2000, [500, 100, 500, 0])).toEqual([100, 500, 2000]);
  });
});
