import { describe, expect, it } from 'vitest';
import type { BenchResult } from './lib.js';
import {
  benchSettings,
  formatTable,
  markdownReport,
  mergeResults,
  otherNodeNote,
  parseResults,
  peerComparisons,
  type RunMeta,
} from './run.js';

const result = (name: string, p50: number, p99: number, over: Partial<BenchResult> = {}): BenchResult => ({
  name,
  p50Micros: p50,
  p99Micros: p99,
  meanMicros: p50,
  opsPerSec: 1e6 / p50,
  iterations: 1000,
  repeats: 3,
  spread: {
    p50: { min: p50 * 0.9, max: p50 * 1.1 },
    p99: { min: p99, max: p99 },
    opsPerSec: { min: 1, max: 2 },
  },
  ...over,
});

const meta: RunMeta = {
  time: '2026-11-29T16:00:00.000Z',
  node: 'v20.20.2',
  platform: 'linux/x64',
  cpus: 2,
  cpuModel: 'Test CPU',
  loadavgStart: [0.5, 0.4, 0.3],
  loadavg: [1.5, 1, 0.5],
  wallSeconds: 600,
  commit: 'abc1234',
  env: { WARDEN_BENCH_OPERATOR_SIZES: '1000' },
};

describe('peerComparisons', () => {
  it('gives p50 and p99 ratios against the named peer of the same run', () => {
    const results = [
      result('broker/direct', 200, 400),
      result('broker/via-broker', 600, 1600, { baseline: 'broker/direct' }),
    ];
    expect(peerComparisons(results)).toEqual([
      { name: 'broker/via-broker', baseline: 'broker/direct', p50Ratio: 3, p99Ratio: 4 },
    ]);
  });

  it('gives nothing when the peer is not in the set (a filtered run)', () => {
    expect(peerComparisons([result('a', 1, 1, { baseline: 'missing' })])).toEqual([]);
  });
});

describe('formatTable', () => {
  it('prints one row per result with the spread and the peer ratio', () => {
    const table = formatTable([
      result('x/direct', 100, 300),
      result('x/via', 250, 900, { baseline: 'x/direct', target: { metric: 'p50Micros', max: 1000 } }),
    ]);
    const lines = table.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toContain('2.50× / 3.00×');
    expect(lines[3]).toContain('225.00–275.00');
    expect(lines[3]).toContain('p50Micros ≤ 1,000 PASS');
  });

  it('shows no spread for a single repeat and a dash for a missing value', () => {
    const row = formatTable([result('once', 5, Number.NaN, { repeats: 1 })]).split('\n')[2] ?? '';
    expect(row).not.toContain('–');
    expect(row).toMatch(/\s-\s/);
  });
});

describe('markdownReport', () => {
  const results = [
    result('broker/direct', 200, 400),
    result('broker/via | pipe', 600, 1600, { baseline: 'broker/direct', note: 'line one\nline two' }),
  ];
  const md = markdownReport(results, meta, 'latest.svg');

  it('records the machine: CPUs, load average at start and end, Node, commit and settings', () => {
    expect(md).toContain('| CPUs | 2 × Test CPU |');
    expect(md).toContain('0.5 / 0.4 / 0.3 at start → 1.5 / 1 / 0.5 at end');
    expect(md).toContain('v20.20.2 (linux/x64)');
    expect(md).toContain('`abc1234`');
    expect(md).toContain('`WARDEN_BENCH_OPERATOR_SIZES=1000`');
  });

  it('embeds the chart by relative link', () => {
    expect(md).toContain('](latest.svg)');
  });

  it('has a table row per result with pipes and newlines escaped', () => {
    expect(md).toContain('| broker/via \\| pipe |');
    expect(md).toContain('line one line two');
    const tableRows = md.split('\n').filter((l) => l.startsWith('| broker/'));
    // Two in the main table, one in the peer comparison table.
    expect(tableRows).toHaveLength(3);
  });

  it('names the modules that failed', () => {
    expect(md).not.toContain('Failed modules');
    expect(markdownReport(results, { ...meta, failed: ['audit.bench.ts'] }, 'latest.svg')).toContain(
      '> **Failed modules**: audit.bench.ts',
    );
  });

  it('warns when the machine was busier than its CPU count', () => {
    expect(md).not.toContain('The machine was busy');
    expect(markdownReport(results, { ...meta, loadavg: [5, 4, 3] }, 'latest.svg')).toContain(
      'The machine was busy',
    );
  });
});

describe('benchSettings', () => {
  it('keeps only the benchmark sizing variables, sorted, without the internal child marker', () => {
    expect(
      benchSettings({
        PATH: '/bin',
        WARDEN_BENCH_OPERATOR_SIZES: '1000,10000',
        AUDIT_BENCH_CALLS: '500',
        WARDEN_BENCH_BROKER_CHILD: '1',
        KILLSWITCH_FLIPS: '10',
      }),
    ).toEqual({
      AUDIT_BENCH_CALLS: '500',
      KILLSWITCH_FLIPS: '10',
      WARDEN_BENCH_OPERATOR_SIZES: '1000,10000',
    });
  });
});

describe('mergeResults', () => {
  it('replaces earlier results of the same name and keeps the others', () => {
    const merged = mergeResults(
      [result('a', 1, 1), result('b', 1, 1)],
      [result('b', 2, 2), result('c', 3, 3)],
    );
    expect(merged.map((r) => [r.name, r.p50Micros])).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
  });
});

describe('parseResults', () => {
  it('reads back values JSON could only store as null (NaN) as NaN, so they print as missing', () => {
    const written = JSON.stringify({ results: [result('throughput-only', 5, Number.NaN)] });
    const [back] = parseResults(written);
    expect(Number.isNaN(back?.p99Micros)).toBe(true);
    expect(formatTable(parseResults(written)).split('\n')[2]).toMatch(/5\.00\s+4\.50–5\.50\s+-/);
  });

  it('gives no results for a file without a results array and throws on invalid JSON', () => {
    expect(parseResults('{"time":"x"}')).toEqual([]);
    expect(() => parseResults('{')).toThrow();
  });
});

describe('otherNodeNote (results merged from a run on another Node.js)', () => {
  it('says nothing when every result comes from this run’s Node', () => {
    expect(otherNodeNote([result('a', 1, 1, { node: 'v24.22.3' })], 'v24.22.3')).toEqual([]);
  });

  it('names each result measured on another Node, grouped by version', () => {
    const note = otherNodeNote(
      [
        result('policy/x', 1, 1, { node: 'v24.22.3' }),
        result('broker/y', 1, 1, { node: 'v20.20.2' }),
        result('broker/z', 1, 1, { node: 'v20.20.2' }),
      ],
      'v24.22.3',
    ).join('\n');
    expect(note).toContain('**Measured on another Node.js**');
    expect(note).toContain('v20.20.2: `broker/y`, `broker/z`');
    expect(note).not.toContain('policy/x');
  });

  it('flags results from before versions were recorded', () => {
    expect(otherNodeNote([result('old', 1, 1)], 'v24.22.3').join('\n')).toContain(
      'an unrecorded Node.js version: `old`',
    );
  });

  it('appears in the markdown report', () => {
    const md = markdownReport(
      [result('broker/y', 1, 1, { node: 'v20.20.2' })],
      { ...meta, node: 'v24.22.3' },
      'c.svg',
    );
    expect(md).toContain('| Node.js | v24.22.3 (linux/x64) |');
    expect(md).toContain('v20.20.2: `broker/y`');
  });
});
