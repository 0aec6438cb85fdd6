/**
 * Cost-growth plots (issue #20): how a cost grows with the size of what Warden handles —
 * objects → operator time to Ready, policies → decision time, brokers → kill-switch fan-out time.
 * Each plot is built from the results of a run (bench/results/latest.json) by result name, drawn
 * on log–log axes with a dashed line for linear growth from the smallest size, so "linear",
 * "flat" and "superlinear" read off the slope. Pure string building, no dependency: run.ts writes
 * one SVG per plot next to latest.json.
 */
import { decades, escapeXml, formatMicros, logScale } from './chart.js';
import type { BenchResult } from './lib.js';

export interface GrowthPoint {
  readonly x: number;
  /** µs */
  readonly y: number;
}

export interface GrowthLine {
  readonly label: string;
  readonly points: readonly GrowthPoint[];
  /** Drawn dashed-free in this colour; the reference line is grey. */
  readonly color: string;
}

export interface GrowthPlot {
  /** File name in bench/results/, e.g. `growth-operator.svg`. */
  readonly file: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly lines: readonly GrowthLine[];
}

interface PlotSpec {
  readonly file: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** Per line: the name pattern (its first group is the size) and which latency it plots. */
  readonly lines: readonly {
    readonly label: string;
    readonly pattern: RegExp;
    readonly metric: 'p50Micros' | 'p99Micros';
    readonly color: string;
    /** The x value of a size (e.g. 2 objects per agent). */
    readonly x?: (size: number) => number;
  }[];
}

export const GROWTH_PLOTS: readonly PlotSpec[] = [
  {
    file: 'growth-operator.svg',
    title: 'Operator cold start: objects → time until every object is Ready',
    xLabel: 'objects (AgentIdentities + AccessPolicies)',
    yLabel: 'time',
    lines: [
      {
        label: 'operator: all Ready',
        pattern: /^operator\/cold-start\/(\d+)-agents-\d+-policies$/,
        metric: 'p50Micros',
        color: '#08519c',
        x: (n) => 2 * n,
      },
      {
        label: 'floor: bare client writes each status once',
        pattern: /^operator\/floor\/(\d+)-agents-\d+-policies-status-once$/,
        metric: 'p50Micros',
        color: '#31a354',
        x: (n) => 2 * n,
      },
    ],
  },
  {
    file: 'growth-policy.svg',
    title: 'Policy decisions: policies per agent → decision time',
    xLabel: 'policies selecting the agent',
    yLabel: 'time per decision',
    lines: [
      { label: 'p50', pattern: /^policy\/decide\/(\d+)-policies$/, metric: 'p50Micros', color: '#08519c' },
      { label: 'p99', pattern: /^policy\/decide\/(\d+)-policies$/, metric: 'p99Micros', color: '#de2d26' },
    ],
  },
  {
    file: 'growth-fanout.svg',
    title: 'Kill switch fan-out: broker streams → time until every broker has the suspension',
    xLabel: 'broker streams on one authority',
    yLabel: 'time per stream',
    lines: [
      { label: 'p50', pattern: /^killswitch\/fanout\/(\d+)-brokers$/, metric: 'p50Micros', color: '#08519c' },
      { label: 'p99', pattern: /^killswitch\/fanout\/(\d+)-brokers$/, metric: 'p99Micros', color: '#de2d26' },
    ],
  },
];

const usable = (v: number): boolean => Number.isFinite(v) && v > 0;

/** The plots the results have data for (a line needs two sizes; a plot needs one such line). */
export function growthPlots(results: readonly BenchResult[], specs = GROWTH_PLOTS): GrowthPlot[] {
  return specs.flatMap((spec) => {
    const lines = spec.lines.flatMap((l) => {
      const points = results
        .flatMap((r) => {
          const size = Number(l.pattern.exec(r.name)?.[1]);
          const y = r[l.metric];
          return usable(size) && usable(y) ? [{ x: l.x ? l.x(size) : size, y }] : [];
        })
        .sort((a, b) => a.x - b.x);
      return points.length >= 2 ? [{ label: l.label, points, color: l.color }] : [];
    });
    return lines.length > 0
      ? [{ file: spec.file, title: spec.title, xLabel: spec.xLabel, yLabel: spec.yLabel, lines }]
      : [];
  });
}

/** How a line grew from its smallest to its largest size: 1.0 = linear, < 1 sublinear. */
export function growthExponent(points: readonly GrowthPoint[]): number {
  const a = points[0];
  const b = points[points.length - 1];
  if (!a || !b || a.x === b.x) return Number.NaN;
  return Math.log(b.y / a.y) / Math.log(b.x / a.x);
}

const WIDTH = 640;
const HEIGHT = 400;
const M = { left: 70, right: 20, top: 56, bottom: 74 };
const r1 = (v: number): string => (Math.round(v * 10) / 10).toString();
const count = (v: number): string => (v >= 1000 ? `${r1(v / 1000)}k` : r1(v));

/** One plot as an SVG document: log–log axes, a line per series, a dashed linear reference per series. */
export function growthSvg(plot: GrowthPlot): string {
  const xs = plot.lines.flatMap((l) => l.points.map((p) => p.x));
  const ys = plot.lines.flatMap((l) => l.points.map((p) => p.y));
  // The linear reference reaches first.y × (last.x / first.x): keep it inside the axis.
  const refs = plot.lines.map((l) => {
    const a = l.points[0] as GrowthPoint;
    const b = l.points[l.points.length - 1] as GrowthPoint;
    return { a, b: { x: b.x, y: (a.y * b.x) / a.x } };
  });
  const xTicks = decades(Math.min(...xs), Math.max(...xs));
  const yTicks = decades(Math.min(...ys), Math.max(...ys, ...refs.map((r) => r.b.y)));
  const X = logScale(xTicks[0] as number, xTicks[xTicks.length - 1] as number, M.left, WIDTH - M.right);
  const Y = logScale(yTicks[0] as number, yTicks[yTicks.length - 1] as number, HEIGHT - M.bottom, M.top);
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(plot.title)}</title>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="12" y="20" font-size="13" font-weight="bold">${escapeXml(plot.title)}</text>`,
    '<g class="axis">',
  ];
  for (const t of xTicks) {
    const x = r1(X(t));
    out.push(
      `<line x1="${x}" y1="${M.top}" x2="${x}" y2="${HEIGHT - M.bottom}" stroke="#e0e0e0"/>`,
      `<text x="${x}" y="${HEIGHT - M.bottom + 16}" text-anchor="middle">${escapeXml(count(t))}</text>`,
    );
  }
  for (const t of yTicks) {
    const y = r1(Y(t));
    out.push(
      `<line x1="${M.left}" y1="${y}" x2="${WIDTH - M.right}" y2="${y}" stroke="#e0e0e0"/>`,
      `<text x="${M.left - 6}" y="${r1(Y(t) + 4)}" text-anchor="end">${escapeXml(formatMicros(t))}</text>`,
    );
  }
  out.push(
    `<text x="${r1((M.left + WIDTH - M.right) / 2)}" y="${HEIGHT - M.bottom + 34}" text-anchor="middle">${escapeXml(plot.xLabel)} (log scale)</text>`,
    `<text x="14" y="${r1((M.top + HEIGHT - M.bottom) / 2)}" text-anchor="middle" transform="rotate(-90 14 ${r1((M.top + HEIGHT - M.bottom) / 2)})">${escapeXml(plot.yLabel)} (log scale)</text>`,
    '</g>',
  );
  plot.lines.forEach((l, i) => {
    const ref = refs[i] as (typeof refs)[number];
    const exponent = growthExponent(l.points);
    const path = l.points.map((p) => `${r1(X(p.x))},${r1(Y(p.y))}`).join(' ');
    out.push(
      `<g class="line" data-label="${escapeXml(l.label)}">`,
      `<line class="linear-reference" x1="${r1(X(ref.a.x))}" y1="${r1(Y(ref.a.y))}" x2="${r1(X(ref.b.x))}" y2="${r1(Y(ref.b.y))}" stroke="#bbbbbb" stroke-dasharray="5 4"/>`,
      `<polyline points="${path}" fill="none" stroke="${l.color}" stroke-width="2"/>`,
      ...l.points.map(
        (p) =>
          `<circle cx="${r1(X(p.x))}" cy="${r1(Y(p.y))}" r="3.5" fill="${l.color}"><title>${escapeXml(`${l.label}: ${count(p.x)} → ${formatMicros(p.y)}`)}</title></circle>`,
      ),
      '</g>',
    );
    // One legend row per line, under the axis label.
    const ly = HEIGHT - 22 + i * 14;
    const lx = M.left;
    out.push(
      `<g class="legend"><line x1="${lx}" y1="${ly - 4}" x2="${lx + 20}" y2="${ly - 4}" stroke="${l.color}" stroke-width="2"/>`,
      `<text x="${lx + 24}" y="${ly}">${escapeXml(`${l.label} (×${count(l.points[l.points.length - 1]!.x / l.points[0]!.x)} size → ×${r1(l.points[l.points.length - 1]!.y / l.points[0]!.y)} time${Number.isFinite(exponent) ? `, slope ${exponent.toFixed(2)}` : ''})`)}</text></g>`,
    );
  });
  out.push(
    `<text x="${WIDTH - M.right}" y="${M.top - 8}" text-anchor="end" fill="#777777">dashed: linear growth from the smallest size (slope 1)</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
