import { describe, expect, it } from 'vitest';
import { chartSeries, decades, escapeXml, formatMicros, latencyChartSvg, logScale } from './chart.js';
import type { BenchResult, Distribution } from './lib.js';
import { wellFormedProblems } from './xml-wellformed.js';

const dist = (p50: number, over: Partial<Distribution> = {}): Distribution => ({
  count: 1000,
  min: p50 / 2,
  p50,
  p90: p50 * 2,
  p99: p50 * 5,
  p999: p50 * 10,
  max: p50 * 20,
  ...over,
});

const result = (name: string, distribution?: Distribution): BenchResult => ({
  name,
  p50Micros: distribution?.p50 ?? 1,
  p99Micros: distribution?.p99 ?? 1,
  meanMicros: 1,
  opsPerSec: 1,
  iterations: 1,
  repeats: 1,
  spread: { p50: { min: 1, max: 1 }, p99: { min: 1, max: 1 }, opsPerSec: { min: 1, max: 1 } },
  ...(distribution ? { distribution } : {}),
});

const count = (haystack: string, needle: string): number => haystack.split(needle).length - 1;

describe('the wellFormedProblems helper itself', () => {
  it.each([
    ['unclosed element', '<svg><g></svg>'],
    ['bare ampersand', '<svg>a & b</svg>'],
    ['bare < in an attribute', '<svg x="<"/>'],
    ['unquoted attribute', '<svg x=1/>'],
    ['two roots', '<svg/><svg/>'],
    ['duplicate attribute', '<svg x="1" x="2"/>'],
  ])('rejects %s', (_name, xml) => {
    expect(wellFormedProblems(xml)).not.toEqual([]);
  });

  it('accepts a small well-formed document', () => {
    expect(
      wellFormedProblems('<?xml version="1.0"?>\n<svg a="1 &amp; 2"><g><t>x &lt; y</t></g></svg>'),
    ).toEqual([]);
  });
});

describe('latencyChartSvg', () => {
  const results = [
    result('policy/decide/20-policies', dist(4)),
    result('broker/mcp-tools-call/via-broker@200rps', dist(900)),
    result('killswitch/patch-to-first-denial', dist(120_000)),
  ];

  it('is well-formed XML with an svg root', () => {
    const svg = latencyChartSvg(results);
    expect(wellFormedProblems(svg)).toEqual([]);
    expect(svg).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/,
    );
  });

  it('draws one series per benchmark with a distribution, in the given order', () => {
    const svg = latencyChartSvg([...results, result('audit/writer-persisted')]);
    expect(count(svg, '<g class="series"')).toBe(3);
    const order = [...svg.matchAll(/<g class="series" data-name="([^"]*)"/g)].map((m) => m[1]);
    expect(order).toEqual(results.map((r) => r.name));
  });

  it.each([
    ['no samples', dist(10, { count: 0 })],
    ['a NaN percentile', dist(10, { p99: Number.NaN })],
    ['a zero minimum (no place on a log axis)', dist(10, { min: 0 })],
    ['an infinite maximum', dist(10, { max: Number.POSITIVE_INFINITY })],
  ])('leaves out a result with %s', (_name, d) => {
    expect(chartSeries([result('bad', d), result('good', dist(10))]).map((s) => s.name)).toEqual(['good']);
  });

  it('escapes benchmark names in labels and attributes', () => {
    const hostile = `x<script>alert("1")</script>&'y`;
    const svg = latencyChartSvg([result(hostile, dist(50))], { title: 'a < b & c' });
    expect(wellFormedProblems(svg)).toEqual([]);
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('x&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt;&amp;&apos;y');
    expect(svg).toContain('<title>a &lt; b &amp; c</title>');
  });

  it('has a logarithmic axis: one gridline per decade from the fastest to the slowest call', () => {
    const svg = latencyChartSvg(results);
    // min 2 µs … max 2.4 s → 1 µs … 10 s.
    const labels = [...svg.matchAll(/text-anchor="middle">([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(labels).toEqual([
      '1.0 µs',
      '10 µs',
      '100 µs',
      '1.0 ms',
      '10 ms',
      '100 ms',
      '1.0 s',
      '10 s',
      'latency per call (log scale)',
    ]);
    const xs = [...svg.matchAll(/<line x1="([\d.]+)" y1="\d+" x2="[\d.]+" y2="\d+" stroke="#e0e0e0"/g)].map(
      (m) => Number(m[1]),
    );
    const gaps = xs.slice(1).map((v, k) => v - (xs[k] as number));
    for (const g of gaps) expect(g).toBeCloseTo(gaps[0] as number, 0);
  });

  it('places each percentile tick in order along the row', () => {
    const svg = latencyChartSvg([result('one', dist(100))]);
    const at = (cls: string) => Number(new RegExp(`<line class="${cls}" x1="([\\d.]+)"`).exec(svg)?.[1]);
    expect(at('p50')).toBeLessThan(at('p90'));
    expect(at('p90')).toBeLessThan(at('p99'));
    expect(at('p99')).toBeLessThan(at('p999'));
    expect(at('p999')).toBeLessThan(at('max'));
  });

  it('says so, still as valid XML, when no result has a distribution', () => {
    const svg = latencyChartSvg([result('audit/writer-persisted')]);
    expect(wellFormedProblems(svg)).toEqual([]);
    expect(svg).toContain('no benchmark in this run recorded a latency distribution');
    expect(count(svg, '<g class="series"')).toBe(0);
  });
});

describe('chart helpers', () => {
  it('logScale maps decades to equal distances and clamps outside the domain', () => {
    const x = logScale(1, 1000, 0, 300);
    expect(x(1)).toBeCloseTo(0);
    expect(x(10)).toBeCloseTo(100);
    expect(x(100)).toBeCloseTo(200);
    expect(x(0.001)).toBeCloseTo(0);
    expect(x(1e9)).toBeCloseTo(300);
  });

  it('decades covers the range with at least two ticks', () => {
    expect(decades(3, 4000)).toEqual([1, 10, 100, 1000, 10000]);
    expect(decades(10, 10)).toEqual([10, 100]);
    expect(decades(0.2, 0.9)).toEqual([0.1, 1]);
  });

  it.each([
    [0.5, '500 ns'],
    [3.25, '3.3 µs'],
    [850, '850 µs'],
    [1500, '1.5 ms'],
    [42_000, '42 ms'],
    [2_500_000, '2.5 s'],
  ])('formatMicros(%s) = %s', (us, label) => {
    expect(formatMicros(us)).toBe(label);
  });

  it('escapeXml drops characters XML cannot carry and escapes markup', () => {
    expect(escapeXml('a\u0000b\u0007c<&>"\'\td')).toBe('abc&lt;&amp;&gt;&quot;&apos;\td');
  });
});
