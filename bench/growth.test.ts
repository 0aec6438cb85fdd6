import { describe, expect, it } from 'vitest';
import { GROWTH_PLOTS, growthExponent, growthPlots, growthSvg } from './growth.js';
import type { BenchResult } from './lib.js';
import { wellFormedProblems } from './xml-wellformed.js';

const result = (name: string, p50: number, p99 = p50 * 2): BenchResult => ({
  name,
  p50Micros: p50,
  p99Micros: p99,
  meanMicros: p50,
  opsPerSec: 1e6 / p50,
  iterations: 1,
  repeats: 1,
  spread: { p50: { min: p50, max: p50 }, p99: { min: p99, max: p99 }, opsPerSec: { min: 0, max: 0 } },
});

const operatorRun = [
  result('operator/cold-start/1000-agents-1000-policies', 10e6),
  result('operator/floor/1000-agents-1000-policies-status-once', 5e6),
  result('operator/cold-start/10000-agents-10000-policies', 120e6),
  result('operator/floor/10000-agents-10000-policies-status-once', 50e6),
  result('operator/cold-start/5000-agents-5000-policies', 55e6),
];

describe('growthPlots: the series a run has data for', () => {
  it('builds the operator plot from cold-start and floor results, x = objects (2 per agent), sorted by size', () => {
    const plots = growthPlots(operatorRun);
    expect(plots.map((p) => p.file)).toEqual(['growth-operator.svg']);
    const [operator, floor] = plots[0]?.lines ?? [];
    expect(operator?.points).toEqual([
      { x: 2000, y: 10e6 },
      { x: 10000, y: 55e6 },
      { x: 20000, y: 120e6 },
    ]);
    expect(floor?.points).toEqual([
      { x: 2000, y: 5e6 },
      { x: 20000, y: 50e6 },
    ]);
  });

  it('plots p50 and p99 of the policy decisions by number of policies, leaving other policy results out', () => {
    const plots = growthPlots([
      result('policy/decide/1-policies', 5, 10),
      result('policy/decide/20-policies', 6, 15),
      result('policy/decide/20-policies-all-evaluated', 75, 170),
      result('policy/decide/2000-policies', 9, 18),
    ]);
    expect(plots.map((p) => p.file)).toEqual(['growth-policy.svg']);
    expect(plots[0]?.lines.map((l) => [l.label, l.points.map((p) => [p.x, p.y])])).toEqual([
      [
        'p50',
        [
          [1, 5],
          [20, 6],
          [2000, 9],
        ],
      ],
      [
        'p99',
        [
          [1, 10],
          [20, 15],
          [2000, 18],
        ],
      ],
    ]);
  });

  it('plots the kill-switch fan-out by number of brokers', () => {
    const plots = growthPlots([
      result('killswitch/fanout/100-brokers', 30_000),
      result('killswitch/fanout/1000-brokers', 72_000),
    ]);
    expect(plots.map((p) => p.file)).toEqual(['growth-fanout.svg']);
  });

  it('draws no line from a single size, and no plot without a line', () => {
    expect(growthPlots([result('operator/cold-start/1000-agents-1000-policies', 10e6)])).toEqual([]);
    expect(growthPlots([])).toEqual([]);
  });

  it('skips results without a usable latency (NaN, zero)', () => {
    const plots = growthPlots([
      result('killswitch/fanout/100-brokers', Number.NaN),
      result('killswitch/fanout/300-brokers', 0),
      result('killswitch/fanout/1000-brokers', 72_000),
    ]);
    expect(plots).toEqual([]);
  });

  it('names one file per plot spec', () => {
    expect(new Set(GROWTH_PLOTS.map((p) => p.file)).size).toBe(GROWTH_PLOTS.length);
  });
});

describe('growthExponent: the slope on log–log axes', () => {
  it('is 1 for linear growth, 0 for flat, 2 for quadratic', () => {
    expect(
      growthExponent([
        { x: 1000, y: 5 },
        { x: 10000, y: 50 },
      ]),
    ).toBeCloseTo(1);
    expect(
      growthExponent([
        { x: 1, y: 5 },
        { x: 2000, y: 5 },
      ]),
    ).toBeCloseTo(0);
    expect(
      growthExponent([
        { x: 10, y: 1 },
        { x: 100, y: 100 },
      ]),
    ).toBeCloseTo(2);
  });

  it('is NaN for fewer than two sizes', () => {
    expect(growthExponent([{ x: 1, y: 1 }])).toBeNaN();
  });
});

describe('growthSvg', () => {
  const plot = growthPlots(operatorRun)[0];
  if (!plot) throw new Error('fixture: no operator plot');
  const svg = growthSvg(plot);

  it('is a well-formed SVG document', () => {
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(wellFormedProblems(svg)).toEqual([]);
  });

  it('draws a polyline, a point per size and a dashed linear reference per line', () => {
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg.match(/<circle /g)).toHaveLength(5);
    expect(svg.match(/class="linear-reference"/g)).toHaveLength(2);
  });

  it('states in the legend how much the time grew for how much the size', () => {
    expect(svg).toContain('operator: all Ready (×10 size → ×12 time, slope 1.08)');
    expect(svg).toContain('floor: bare client writes each status once (×10 size → ×10 time, slope 1.00)');
  });

  it('labels the axes with sizes and human times', () => {
    expect(svg).toContain('>1k<');
    expect(svg).toContain('>10k<');
    expect(svg).toMatch(/>1\.0 s<|>10 s<|>100 s</);
  });

  it('escapes text from results', () => {
    const odd = growthSvg({ ...plot, title: 'a < b & "c"' });
    expect(odd).toContain('a &lt; b &amp; &quot;c&quot;');
    expect(wellFormedProblems(odd)).toEqual([]);
  });
});
