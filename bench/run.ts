/**
 * Runs every bench/*.bench.ts module (each exports `async function run(): Promise<BenchResult[]>`),
 * prints a table and writes bench/results/: latest.json (every number), latest.md (the report:
 * machine, table, peer ratios, notes), latest.svg (latency distributions, linked from the report) and
 * the cost-growth plots growth-*.svg (bench/growth.ts: objects, policies, brokers → time).
 *   npx tsx bench/run.ts [filter]   — filter matches module file names or result names (substring)
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { latencyChartSvg } from './chart.js';
import { growthPlots, growthSvg } from './growth.js';
import { type BenchResult, meetsTarget } from './lib.js';

const CHART_FILE = 'latest.svg';

interface BenchModule {
  run(): Promise<BenchResult[]>;
}

const benchDir = dirname(fileURLToPath(import.meta.url));

function fmt(v: number, digits = 2): string {
  if (typeof v !== 'number' || Number.isNaN(v)) return '-';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

/** The min–max of a metric across repeats ('' when there was one repeat or no value). */
function spreadCell(s: { min: number; max: number }, repeats: number): string {
  if (repeats < 2 || Number.isNaN(s.min) || Number.isNaN(s.max)) return '';
  return `${fmt(s.min)}–${fmt(s.max)}`;
}

export interface PeerComparison {
  readonly name: string;
  readonly baseline: string;
  /** This result's p50 (p99) over its peer's: 3.2 = three times the peer's latency. */
  readonly p50Ratio: number;
  readonly p99Ratio: number;
}

/**
 * Each result that names a peer (`baseline`) present in the same set, with its latency ratios. A
 * missing peer (a filtered run) gives no comparison rather than one against an older run.
 */
export function peerComparisons(results: readonly BenchResult[]): PeerComparison[] {
  const byName = new Map(results.map((r) => [r.name, r]));
  return results.flatMap((r) => {
    const peer = r.baseline === undefined ? undefined : byName.get(r.baseline);
    if (!peer || r.baseline === undefined) return [];
    return [
      {
        name: r.name,
        baseline: r.baseline,
        p50Ratio: r.p50Micros / peer.p50Micros,
        p99Ratio: r.p99Micros / peer.p99Micros,
      },
    ];
  });
}

function targetCell(r: BenchResult): string {
  if (!r.target) return '';
  const bound =
    r.target.max !== undefined
      ? `≤ ${r.target.max.toLocaleString('en-US')}`
      : `≥ ${r.target.min?.toLocaleString('en-US')}`;
  return `${r.target.metric} ${bound} ${meetsTarget(r) ? 'PASS' : 'FAIL'}`;
}

const HEADER = [
  'benchmark',
  'p50 µs',
  'p50 spread',
  'p99 µs',
  'p99 spread',
  'ops/s',
  'cpu µs/op',
  'n × repeats',
  'vs peer p50/p99',
  'target',
] as const;

/** One row of cells per result, in HEADER order. */
export function tableRows(results: readonly BenchResult[]): string[][] {
  const peers = new Map(peerComparisons(results).map((c) => [c.name, c]));
  return results.map((r) => {
    const c = peers.get(r.name);
    return [
      r.name,
      fmt(r.p50Micros),
      spreadCell(r.spread.p50, r.repeats),
      fmt(r.p99Micros),
      spreadCell(r.spread.p99, r.repeats),
      fmt(r.opsPerSec, 0),
      fmt(r.cpuMicrosPerOp ?? Number.NaN),
      `${r.iterations.toLocaleString('en-US')} × ${r.repeats}`,
      c ? `${c.p50Ratio.toFixed(2)}× / ${c.p99Ratio.toFixed(2)}×` : '',
      targetCell(r),
    ];
  });
}

/** The plain-text table printed at the end of a run. */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = tableRows(results);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) =>
        i === 0 || i >= cells.length - 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number),
      )
      .join('  ')
      .trimEnd();
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Markdown table cells: pipes would end a cell, newlines a row. */
function mdCell(text: string): string {
  return text
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
}

export interface RunMeta {
  readonly time: string;
  readonly node: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
  /** 1/5/15-minute load averages when the run began and when it ended. */
  readonly loadavgStart: readonly number[];
  readonly loadavg: readonly number[];
  readonly wallSeconds: number;
  readonly commit?: string;
  readonly filter?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Benchmark modules that threw: their numbers are missing (or from an earlier run). */
  readonly failed?: readonly string[];
}

/**
 * A note naming the results an earlier (filtered-in) run measured on another Node.js than this
 * run's, so a merged report never passes off one runtime's numbers as another's.
 */
export function otherNodeNote(results: readonly BenchResult[], node: string): string[] {
  const byNode = new Map<string, string[]>();
  for (const r of results) {
    const v = r.node ?? 'an unrecorded Node.js version';
    if (v === node) continue;
    byNode.set(v, [...(byNode.get(v) ?? []), r.name]);
  }
  if (byNode.size === 0) return [];
  const parts = [...byNode].map(([v, names]) => `${v}: ${names.map((n) => `\`${mdCell(n)}\``).join(', ')}`);
  return [
    `> **Measured on another Node.js** (earlier runs merged into this report): ${parts.join('; ')}.`,
    '',
  ];
}

/** bench/results/latest.md: the machine, the table, the peer ratios, the notes and the chart. */
export function markdownReport(
  results: readonly BenchResult[],
  meta: RunMeta,
  chartFile: string,
  growthFiles: readonly { file: string; title: string }[] = [],
): string {
  const busy = (meta.loadavg[0] ?? 0) > meta.cpus || (meta.loadavgStart[0] ?? 0) > meta.cpus;
  const rows = tableRows(results);
  const align = HEADER.map((_, i) => (i === 0 || i >= HEADER.length - 2 ? ':--' : '--:'));
  const comparisons = peerComparisons(results);
  const env = Object.entries(meta.env ?? {});
  return [
    '# Warden benchmark report',
    '',
    `Run ${meta.time}${meta.commit ? ` at commit \`${meta.commit}\`` : ''}${meta.filter ? `, filter \`${mdCell(meta.filter)}\` (merged with earlier results)` : ''}; wall time ${fmt(meta.wallSeconds, 0)} s.`,
    '',
    '| machine | |',
    '| :-- | :-- |',
    `| CPUs | ${meta.cpus} × ${mdCell(meta.cpuModel)} |`,
    `| load average (1/5/15 min) | ${meta.loadavgStart.join(' / ')} at start → ${meta.loadavg.join(' / ')} at end |`,
    `| Node.js | ${meta.node} (${meta.platform}) |`,
    ...(env.length > 0 ? [`| settings | ${env.map(([k, v]) => `\`${k}=${mdCell(v)}\``).join(', ')} |`] : []),
    '',
    ...otherNodeNote(results, meta.node),
    ...(meta.failed && meta.failed.length > 0
      ? [`> **Failed modules**: ${meta.failed.map(mdCell).join(', ')} (see the run's output).`, '']
      : []),
    busy
      ? '> The machine was busy (load average above the CPU count): wall-clock latencies are inflated; `cpu µs/op` (CPU time per operation) and the ratios to a peer measured in the same run are the steadier numbers.'
      : '> Latencies are wall-clock per call; `cpu µs/op` is CPU time per operation; ratios compare with a peer measured in the same run.',
    '',
    'p50/p99 are medians across repeats; the spread columns give the min–max of that percentile across repeats. Targets are reported, not enforced.',
    '',
    `| ${HEADER.join(' | ')} |`,
    `| ${align.join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(mdCell).join(' | ')} |`),
    '',
    '## Peer comparisons (same run)',
    '',
    ...(comparisons.length === 0
      ? ['None in this run.']
      : [
          '| benchmark | peer | p50 ratio | p99 ratio |',
          '| :-- | :-- | --: | --: |',
          ...comparisons.map(
            (c) =>
              `| ${mdCell(c.name)} | ${mdCell(c.baseline)} | ${c.p50Ratio.toFixed(2)}× | ${c.p99Ratio.toFixed(2)}× |`,
          ),
        ]),
    '',
    '## Latency distributions',
    '',
    `![Latency distributions per benchmark, log scale](${chartFile})`,
    '',
    '## Cost growth',
    '',
    ...(growthFiles.length === 0
      ? ['No result set with two sizes or more in this report (operator, policy, kill-switch fan-out).']
      : growthFiles.flatMap((g) => [`![${mdCell(g.title)}](${g.file})`, ''])),
    '',
    '## Notes',
    '',
    ...results.filter((r) => r.note).map((r) => `- **${mdCell(r.name)}**: ${mdCell(r.note ?? '')}`),
    '',
  ].join('\n');
}

/** Results of an earlier run, or none when the file is missing or unreadable. */
async function previousResults(path: string): Promise<BenchResult[]> {
  try {
    return parseResults(await readFile(path, 'utf8'));
  } catch {
    return [];
  }
}

/** The results in a latest.json text (none when it has none; throws on invalid JSON). */
export function parseResults(text: string): BenchResult[] {
  // JSON has no NaN: JSON.stringify wrote missing values as null; read them back as NaN.
  const parsed = JSON.parse(text, (_key, value: unknown) => (value === null ? Number.NaN : value)) as {
    results?: BenchResult[];
  };
  return Array.isArray(parsed.results) ? parsed.results : [];
}

/** Earlier results with the same names replaced by the new ones (new ones appended in run order). */
export function mergeResults(previous: readonly BenchResult[], fresh: readonly BenchResult[]): BenchResult[] {
  const names = new Set(fresh.map((r) => r.name));
  return [...previous.filter((r) => !names.has(r.name)), ...fresh];
}

/** The environment variables that size or shape benchmarks, as set for this run. */
export function benchSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b)))
    if (
      v !== undefined &&
      /^(WARDEN_BENCH_|AUDIT_BENCH_|KILLSWITCH_FLIPS$)/.test(k) &&
      k !== 'WARDEN_BENCH_BROKER_CHILD'
    )
      out[k] = v;
  return out;
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: benchDir, encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

const loadNow = (): number[] => loadavg().map((l) => Number(l.toFixed(2)));

async function main(): Promise<void> {
  const started = performance.now();
  const loadStart = loadNow();
  const filter = process.argv[2] ?? '';
  const files = (await readdir(benchDir)).filter((f) => f.endsWith('.bench.ts')).sort();
  // A filter naming a module (or a result name under it) runs only that module; otherwise every module
  // runs and results are filtered by name.
  const moduleName = (f: string): string => f.slice(0, -'.bench.ts'.length);
  // The whole module: the filter names it ("policy"). Part of it: "policy/decide/20-policies".
  const whole = (f: string): boolean => filter === '' || moduleName(f).includes(filter);
  const byFile = files.filter((f) => whole(f) || filter.startsWith(`${moduleName(f)}/`));
  const selected = byFile.length > 0 ? byFile : files;
  const results: BenchResult[] = [];
  const failed: string[] = [];
  for (const file of selected) {
    const t0 = performance.now();
    const module = (await import(pathToFileURL(join(benchDir, file)).href)) as BenchModule;
    if (typeof module.run !== 'function') {
      console.error(`${file}: does not export run(); skipped`);
      continue;
    }
    try {
      const produced = (await module.run()).map((r) => ({ ...r, node: process.version }));
      results.push(...produced.filter((r) => whole(file) || r.name.includes(filter)));
      console.error(
        `${file}: ${produced.length} results in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } catch (err) {
      // One broken module must not cost the numbers of the others: report it and go on.
      failed.push(file);
      console.error(`${file}: failed after ${((performance.now() - t0) / 1000).toFixed(1)} s:`, err);
    }
  }
  if (results.length === 0) {
    console.error(filter ? `no benchmark matches '${filter}'` : 'no benchmarks found in bench/');
    process.exitCode = 1;
    return;
  }
  // Wall-clock numbers are only comparable on a quiet machine: record how busy it was.
  const load = loadNow();
  console.log(formatTable(results));
  console.log(
    `\nNode.js ${process.version}; load average ${loadStart.join(' ')} → ${load.join(' ')} on ${cpus().length} CPUs${(load[0] ?? 0) > cpus().length ? ' — busy machine: wall-clock numbers are inflated; cpu µs/op is steadier' : ''}`,
  );
  for (const r of results) if (r.note) console.log(`  ${r.name}: ${r.note}`);
  const dir = join(benchDir, 'results');
  const out = join(dir, 'latest.json');
  await mkdir(dir, { recursive: true });
  // A filtered run replaces only its own results, so runs of different modules do not erase each other.
  const merged = filter === '' ? results : mergeResults(await previousResults(out), results);
  const commit = gitCommit();
  const meta: RunMeta = {
    time: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    loadavgStart: loadStart,
    loadavg: load,
    wallSeconds: Math.round((performance.now() - started) / 100) / 10,
    ...(commit ? { commit } : {}),
    ...(filter ? { filter } : {}),
    env: benchSettings(process.env),
    ...(failed.length > 0 ? { failed } : {}),
  };
  await writeFile(out, `${JSON.stringify({ ...meta, results: merged }, null, 2)}\n`);
  await writeFile(
    join(dir, CHART_FILE),
    latencyChartSvg(merged, { title: `Warden latency distributions, ${meta.time}` }),
  );
  const plots = growthPlots(merged);
  for (const plot of plots) await writeFile(join(dir, plot.file), growthSvg(plot));
  await writeFile(join(dir, 'latest.md'), markdownReport(merged, meta, CHART_FILE, plots));
  console.log(
    `\nwrote ${out}, latest.md, ${CHART_FILE}${plots.map((p) => `, ${p.file}`).join('')} (wall time ${meta.wallSeconds} s)`,
  );
  // Targets are reported, not enforced: shared 2-core CI machines are too noisy for a hard gate.
  const missed = results.filter((r) => meetsTarget(r) === false);
  if (missed.length > 0) console.log(`targets missed: ${missed.map((r) => r.name).join(', ')}`);
  if (failed.length > 0) {
    console.error(`benchmark modules that failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
