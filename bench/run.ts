/**
 * Runs every bench/*.bench.ts module (each exports `async function run(): Promise<BenchResult[]>`),
 * prints a table and writes bench/results/latest.json.
 *   npx tsx bench/run.ts [filter]   — filter matches module file names or result names (substring)
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BenchResult, meetsTarget } from './lib.js';

interface BenchModule {
  run(): Promise<BenchResult[]>;
}

const benchDir = dirname(fileURLToPath(import.meta.url));

function fmt(v: number, digits = 2): string {
  if (Number.isNaN(v)) return '-';
  if (v >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

export function formatTable(results: readonly BenchResult[]): string {
  const header = [
    'benchmark',
    'p50 µs',
    'p99 µs',
    'mean µs',
    'ops/s',
    'ops/s spread',
    'cpu µs/op',
    'ops/cpu-s',
    'target',
  ];
  const rows = results.map((r) => {
    const ok = meetsTarget(r);
    const target = r.target
      ? `${r.target.metric} ${r.target.max !== undefined ? `≤ ${r.target.max}` : `≥ ${r.target.min?.toLocaleString('en-US')}`} ${ok ? 'PASS' : 'FAIL'}`
      : '';
    return [
      r.name,
      fmt(r.p50Micros),
      fmt(r.p99Micros),
      fmt(r.meanMicros),
      fmt(r.opsPerSec, 0),
      `${fmt(r.spread.opsPerSec.min, 0)}–${fmt(r.spread.opsPerSec.max, 0)}`,
      fmt(r.cpuMicrosPerOp ?? Number.NaN),
      fmt(r.cpuMicrosPerOp === undefined ? Number.NaN : 1e6 / r.cpuMicrosPerOp, 0),
      target,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) =>
        i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number),
      )
      .join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Results of an earlier run, or none when the file is missing or unreadable. */
async function previousResults(path: string): Promise<BenchResult[]> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as { results?: BenchResult[] };
    return Array.isArray(parsed.results) ? parsed.results : [];
  } catch {
    return [];
  }
}

/** Earlier results with the same names replaced by the new ones (new ones appended in run order). */
export function mergeResults(previous: readonly BenchResult[], fresh: readonly BenchResult[]): BenchResult[] {
  const names = new Set(fresh.map((r) => r.name));
  return [...previous.filter((r) => !names.has(r.name)), ...fresh];
}

async function main(): Promise<void> {
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
  for (const file of selected) {
    const module = (await import(pathToFileURL(join(benchDir, file)).href)) as BenchModule;
    if (typeof module.run !== 'function') {
      console.error(`${file}: does not export run(); skipped`);
      continue;
    }
    const produced = await module.run();
    results.push(...produced.filter((r) => whole(file) || r.name.includes(filter)));
  }
  if (results.length === 0) {
    console.error(filter ? `no benchmark matches '${filter}'` : 'no benchmarks found in bench/');
    process.exitCode = 1;
    return;
  }
  // Wall-clock numbers are only comparable on a quiet machine: record how busy it was.
  const load = loadavg().map((l) => Number(l.toFixed(2)));
  console.log(formatTable(results));
  console.log(
    `\nload average ${load.join(' ')} on ${cpus().length} CPUs${load[0] !== undefined && load[0] > cpus().length ? ' — busy machine: wall-clock numbers are inflated; cpu µs/op is steadier' : ''}`,
  );
  for (const r of results) if (r.note) console.log(`  ${r.name}: ${r.note}`);
  const out = join(benchDir, 'results', 'latest.json');
  await mkdir(dirname(out), { recursive: true });
  // A filtered run replaces only its own results, so runs of different modules do not erase each other.
  const merged = filter === '' ? results : mergeResults(await previousResults(out), results);
  const meta = {
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    cpus: cpus().length,
    loadavg: load,
  };
  await writeFile(
    out,
    `${JSON.stringify({ time: new Date().toISOString(), ...meta, results: merged }, null, 2)}\n`,
  );
  console.log(`\nwrote ${out}`);
  // Targets are reported, not enforced: shared 2-core CI machines are too noisy for a hard gate.
  const missed = results.filter((r) => meetsTarget(r) === false);
  if (missed.length > 0) console.log(`targets missed: ${missed.map((r) => r.name).join(', ')}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
