/**
 * The report's latency chart as SVG text: one row (series) per benchmark that has a distribution,
 * on a shared logarithmic latency axis (µs to seconds in one picture). Per row: a whisker from the
 * fastest to the slowest call, a box from p50 to p99, and ticks at p50, p90, p99, p99.9 and max.
 * Pure string building, no dependency: run.ts writes the result next to latest.json.
 */
import type { BenchResult, Distribution } from './lib.js';

export interface ChartOptions {
  readonly title?: string;
  /** Total width in px; rows are a fixed height, so the height follows the number of series. */
  readonly width?: number;
}

/** Escape text for XML character data and attribute values (quoted with "). */
export function escapeXml(text: string): string {
  // Characters XML 1.0 forbids even escaped (C0 controls except tab/newline/CR) are dropped.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  const allowed = text.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '');
  return allowed
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A latency in µs as a short human label: 850 ns, 12 µs, 3.4 ms, 1.2 s. */
export function formatMicros(us: number): string {
  const short = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(0) : v.toFixed(1));
  if (us < 1) return `${short(us * 1000)} ns`;
  if (us < 1000) return `${short(us)} µs`;
  if (us < 1_000_000) return `${short(us / 1000)} ms`;
  return `${short(us / 1_000_000)} s`;
}

/** Powers of ten covering [min, max] (min, max > 0): the axis runs from the first to the last. */
export function decades(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) out.push(10 ** e);
  return out;
}

/** Maps a positive value to [x0, x1] logarithmically over [d0, d1]; values outside are clamped. */
export function logScale(d0: number, d1: number, x0: number, x1: number): (v: number) => number {
  const l0 = Math.log10(d0);
  const span = Math.log10(d1) - l0;
  return (v) => {
    const t = (Math.log10(Math.min(d1, Math.max(d0, v))) - l0) / span;
    return x0 + t * (x1 - x0);
  };
}

/** A usable distribution: every value a positive finite number (the log axis needs > 0). */
function plottable(d: Distribution | undefined): d is Distribution {
  if (!d || d.count <= 0) return false;
  return [d.min, d.p50, d.p90, d.p99, d.p999, d.max].every((v) => Number.isFinite(v) && v > 0);
}

/** The results the chart draws, in the order given. */
export function chartSeries(results: readonly BenchResult[]): { name: string; d: Distribution }[] {
  return results.flatMap((r) => (plottable(r.distribution) ? [{ name: r.name, d: r.distribution }] : []));
}

const ROW = 22;
const TOP = 56;
const BOTTOM = 40;
const LABEL_WIDTH = 330;
const RIGHT = 24;

const n = (v: number): string => (Math.round(v * 10) / 10).toString();

const MARKS: readonly { key: keyof Distribution; label: string; height: number }[] = [
  { key: 'p50', label: 'p50', height: 14 },
  { key: 'p90', label: 'p90', height: 10 },
  { key: 'p99', label: 'p99', height: 14 },
  { key: 'p999', label: 'p99.9', height: 8 },
  { key: 'max', label: 'max', height: 6 },
];

/** The SVG document for the results that carry a distribution (an empty-state note when none do). */
export function latencyChartSvg(results: readonly BenchResult[], options: ChartOptions = {}): string {
  const series = chartSeries(results);
  const width = options.width ?? 1000;
  const title = options.title ?? 'Latency distributions (log scale)';
  const height = TOP + Math.max(1, series.length) * ROW + BOTTOM;
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  if (series.length === 0) {
    out.push(
      `<text x="12" y="${TOP}">no benchmark in this run recorded a latency distribution</text>`,
      '</svg>',
    );
    return `${out.join('\n')}\n`;
  }
  const lo = Math.min(...series.map((s) => s.d.min));
  const hi = Math.max(...series.map((s) => s.d.max));
  const ticks = decades(lo, hi);
  const x0 = LABEL_WIDTH;
  const x1 = width - RIGHT;
  const x = logScale(ticks[0] as number, ticks[ticks.length - 1] as number, x0, x1);
  const plotBottom = TOP + series.length * ROW;
  // Legend.
  out.push(
    '<g class="legend">',
    `<line x1="${x0}" y1="34" x2="${x0 + 24}" y2="34" stroke="#888888"/>`,
    `<text x="${x0 + 28}" y="38">min–max</text>`,
    `<rect x="${x0 + 90}" y="28" width="24" height="12" fill="#9ecae1" stroke="#3182bd"/>`,
    `<text x="${x0 + 118}" y="38">p50–p99</text>`,
    `<text x="${x0 + 180}" y="38">ticks: ${MARKS.map((m) => m.label).join(', ')}</text>`,
    '</g>',
  );
  // Axis: a gridline and label per decade.
  out.push('<g class="axis">');
  for (const t of ticks) {
    const tx = n(x(t));
    out.push(
      `<line x1="${tx}" y1="${TOP - 6}" x2="${tx}" y2="${plotBottom}" stroke="#e0e0e0"/>`,
      `<text x="${tx}" y="${plotBottom + 16}" text-anchor="middle">${escapeXml(formatMicros(t))}</text>`,
    );
  }
  out.push(
    `<text x="${n((x0 + x1) / 2)}" y="${plotBottom + 32}" text-anchor="middle">latency per call (log scale)</text>`,
    '</g>',
  );
  series.forEach((s, i) => {
    const cy = TOP + i * ROW + ROW / 2;
    const { d } = s;
    const tip = `${s.name}: p50 ${formatMicros(d.p50)}, p90 ${formatMicros(d.p90)}, p99 ${formatMicros(d.p99)}, p99.9 ${formatMicros(d.p999)}, max ${formatMicros(d.max)} (${d.count} samples)`;
    out.push(
      `<g class="series" data-name="${escapeXml(s.name)}">`,
      `<title>${escapeXml(tip)}</title>`,
      i % 2 === 0
        ? `<rect x="0" y="${n(cy - ROW / 2)}" width="${width}" height="${ROW}" fill="#f7f7f7"/>`
        : '',
      `<text x="${LABEL_WIDTH - 8}" y="${n(cy + 4)}" text-anchor="end">${escapeXml(s.name)}</text>`,
      `<line x1="${n(x(d.min))}" y1="${n(cy)}" x2="${n(x(d.max))}" y2="${n(cy)}" stroke="#888888"/>`,
      `<rect x="${n(x(d.p50))}" y="${n(cy - 5)}" width="${n(Math.max(1, x(d.p99) - x(d.p50)))}" height="10" fill="#9ecae1" stroke="#3182bd"/>`,
      ...MARKS.map(
        (m) =>
          `<line class="${m.key}" x1="${n(x(d[m.key]))}" y1="${n(cy - m.height / 2)}" x2="${n(x(d[m.key]))}" y2="${n(cy + m.height / 2)}" stroke="${m.key === 'p50' || m.key === 'p99' ? '#08306b' : '#555555'}" stroke-width="${m.key === 'p50' ? 2 : 1}"/>`,
      ),
      '</g>',
    );
  });
  out.push('</svg>');
  return `${out.filter((l) => l !== '').join('\n')}\n`;
}
