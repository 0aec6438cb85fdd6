/**
 * Summarise V8 .cpuprofile files (and .heapprofile sampling allocation profiles) (from --cpu-prof or WARDEN_BENCH_BROKER_PROFILE) without flame-graph
 * tooling: busy CPU split by where the sampled frame's code lives — Node's HTTP stack, its streams,
 * sockets and timers, socket syscalls, JSON, GC, Warden's own code, zod, the MCP SDK, CEL — one
 * column per profile, and the top self-time functions. Frames of an esbuild bundle are mapped back
 * to their source files through the bundle's source map (`<bundle>.map`).
 *
 *   npx tsx bench/cpuprofile.ts [--calls=N] a.cpuprofile [b.cpuprofile ...] [a.heapprofile ...]
 *
 * --calls divides each column by N (µs per call; e.g. 3000 for one 3 s run at 1,000 req/s).
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { basename, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const repoRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const maps = new Map<string, SourceMap | null>();

/** The source file a frame's code comes from: a bundle frame through its source map, else its url. */
function sourceOf(f: CallFrame): string {
  return located(f).source;
}

/** Source file and 1-based line of a frame's code. */
function located(f: CallFrame): { source: string; line: number } {
  if (!f.url.startsWith('file://')) return { source: f.url, line: f.lineNumber + 1 };
  const file = fileURLToPath(f.url);
  let map = maps.get(file);
  if (map === undefined) {
    map = existsSync(`${file}.map`) ? new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))) : null;
    maps.set(file, map);
  }
  const entry = map?.findEntry(f.lineNumber, f.columnNumber);
  const original =
    entry && 'originalSource' in entry && entry.originalSource ? entry.originalSource : undefined;
  const path = original ? resolve(file, '..', original.replace(/^file:\/\//, '')) : file;
  const line = entry && 'originalLine' in entry ? entry.originalLine + 1 : f.lineNumber + 1;
  return { source: relative(repoRoot, path), line };
}

/** Socket and file system calls the profiler sees as native frames. */
const SYSCALLS =
  /^(writev|writeBuffer|writeUtf8String|writeLatin1String|writeAsciiString|shutdown|readStart|readStop|close|fdatasync|fsync|write|read)$/;

/** Where a sampled (leaf) frame belongs. */
function category(f: CallFrame, source: string): string {
  const name = f.functionName;
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'V8/native, unattributed ((program))';
  if (source === '') {
    if (SYSCALLS.test(name)) return 'socket syscalls (writev, …)';
    if (/^(parse|stringify|JSONParse|JSONStringify)$/.test(name)) return 'JSON (built-in)';
    return `native: other (${name || 'anonymous'})`;
  }
  if (source.startsWith('node:')) {
    if (/^node:(_http_|http$|internal\/http|https$|_https)/.test(source)) return "Node's HTTP stack";
    if (/^node:(net|internal\/(net|stream_base_commons|streams\/|tcp|dns)|stream$|_stream)/.test(source))
      return "Node's streams and sockets";
    if (/^node:(events|internal\/(event_target|abort_controller|events))/.test(source))
      return "Node's events and abort signals";
    if (/^node:(timers|internal\/(timers|process\/task_queues|async_hooks))/.test(source))
      return "Node's timers, nextTick, promises";
    if (/^node:(buffer|internal\/(buffer|util\/|encoding|url))/.test(source))
      return "Node's buffers, URL, util";
    return 'Node: other';
  }
  if (source.includes('node_modules/')) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source)?.[1] ?? 'node_modules';
    if (pkg === 'zod') return 'zod (MCP SDK schemas)';
    if (pkg === '@modelcontextprotocol/sdk') return 'MCP SDK';
    if (/cel/.test(pkg)) return 'CEL';
    return `package: ${pkg}`;
  }
  if (source.startsWith('bench/')) return 'bench code in the process (bare proxy, harness)';
  if (/^(broker|core|audit|authority|observability|cli)\//.test(source))
    return `Warden: ${source.split('/')[0]}/`;
  return `other: ${source}`;
}

interface Summary {
  readonly file: string;
  readonly totalMs: number;
  readonly busyMs: number;
  readonly byCategory: Map<string, number>;
  readonly byFunction: Map<string, number>;
  /** Busy time with a Warden source frame anywhere on the stack (inclusive). */
  readonly underWardenMs: number;
  /** Busy time under each Warden function (inclusive: it or its callees were sampled), µs. */
  readonly wardenInclusive: Map<string, number>;
}

function label(f: CallFrame): string {
  const { source, line } = located(f);
  return `${f.functionName || '(anonymous)'} ${source ? `${source}:${line}` : '(native)'}`;
}

function summarise(file: string): Summary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  // Each sample's time is the delta to the next sample (V8's own convention, shifted by one).
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const wardenOnStack = new Map<number, boolean>();
  const wardenInclusive = new Map<string, number>();
  const isWarden = (id: number): boolean => {
    const known = wardenOnStack.get(id);
    if (known !== undefined) return known;
    const n = byId.get(id);
    const here = n !== undefined && /^(broker|core|audit)\//.test(sourceOf(n.callFrame));
    const up = parent.get(id);
    const v = here || (up !== undefined && isWarden(up));
    wardenOnStack.set(id, v);
    return v;
  };
  let totalUs = 0;
  let idleUs = 0;
  let underWardenUs = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    totalUs += us;
    const source = sourceOf(n.callFrame);
    const cat = category(n.callFrame, source);
    if (cat === 'idle') {
      idleUs += us;
      continue;
    }
    if (isWarden(id)) underWardenUs += us;
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + us);
    byFunction.set(label(n.callFrame), (byFunction.get(label(n.callFrame)) ?? 0) + us);
    // Each Warden function on this sample's stack, once per sample (recursion counted once).
    const seen = new Set<string>();
    for (let up: number | undefined = id; up !== undefined; up = parent.get(up)) {
      const f = byId.get(up)?.callFrame;
      if (!f || !/^(broker|core|audit)\//.test(sourceOf(f))) continue;
      const key = label(f);
      if (seen.has(key)) continue;
      seen.add(key);
      wardenInclusive.set(key, (wardenInclusive.get(key) ?? 0) + us);
    }
  }
  return {
    file,
    totalMs: totalUs / 1000,
    busyMs: (totalUs - idleUs) / 1000,
    byCategory,
    byFunction,
    underWardenMs: underWardenUs / 1000,
    wardenInclusive,
  };
}

interface HeapNode {
  readonly callFrame: CallFrame;
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}

/** A sampling heap profile (.heapprofile): bytes allocated by category and by function. */
function allocations(file: string, calls: number): void {
  const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head;
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode): void => {
    if (n.selfSize > 0) {
      total += n.selfSize;
      const cat = category(n.callFrame, sourceOf(n.callFrame));
      byCategory.set(cat, (byCategory.get(cat) ?? 0) + n.selfSize);
      byFunction.set(label(n.callFrame), (byFunction.get(label(n.callFrame)) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c);
  };
  walk(head);
  const perCall = Number.isFinite(calls) && calls > 0;
  const fmt = (b: number) =>
    `${(b / 1024).toFixed(0).padStart(8)} KiB ${((b / total) * 100).toFixed(1).padStart(5)} %${perCall ? ` ${(b / calls).toFixed(0).padStart(6)} B/call` : ''}`;
  console.log(`\nallocated (sampled), ${basename(file)}: ${fmt(total)}`);
  for (const [c, b] of [...byCategory].sort((a, x) => x[1] - a[1])) console.log(`  ${fmt(b)}  ${c}`);
  console.log('  top functions:');
  for (const [f, b] of [...byFunction].sort((a, x) => x[1] - a[1]).slice(0, Number(process.env.TOP ?? 25)))
    console.log(`  ${fmt(b)}  ${f}`);
}

function main(): void {
  const args = process.argv.slice(2);
  const calls = Number(args.find((a) => a.startsWith('--calls='))?.slice('--calls='.length) ?? Number.NaN);
  const heap = args.filter((a) => a.endsWith('.heapprofile'));
  const files = args.filter((a) => !a.startsWith('--') && !a.endsWith('.heapprofile'));
  for (const h of heap) allocations(h, calls);
  if (heap.length > 0 && files.length === 0) return;
  if (files.length === 0) {
    console.error('usage: npx tsx bench/cpuprofile.ts [--calls=N] a.cpuprofile [b.cpuprofile ...]');
    process.exitCode = 2;
    return;
  }
  const sums = files.map(summarise);
  const cats = [...new Set(sums.flatMap((s) => [...s.byCategory.keys()]))].sort(
    (a, b) => (sums[0]?.byCategory.get(b) ?? 0) - (sums[0]?.byCategory.get(a) ?? 0),
  );
  const perCall = Number.isFinite(calls) && calls > 0;
  const cell = (s: Summary, us: number) =>
    `${(us / 1000).toFixed(0)} ms ${((us / 1000 / s.busyMs) * 100).toFixed(1)} %${perCall ? ` ${(us / calls).toFixed(1)} µs/call` : ''}`;
  console.log(`| where the sampled frame is | ${sums.map((s) => basename(s.file)).join(' | ')} |`);
  console.log(`| :-- | ${sums.map(() => '--:').join(' | ')} |`);
  console.log(
    `| busy CPU (of the profile's wall time) | ${sums.map((s) => `${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)}${perCall ? ` (${((s.busyMs * 1000) / calls).toFixed(1)} µs/call)` : ''}`).join(' | ')} |`,
  );
  for (const c of cats)
    console.log(`| ${c} | ${sums.map((s) => cell(s, s.byCategory.get(c) ?? 0)).join(' | ')} |`);
  console.log(
    `| (inclusive) with a Warden frame on the stack | ${sums.map((s) => cell(s, s.underWardenMs * 1000)).join(' | ')} |`,
  );
  for (const s of sums) {
    console.log(`\ntop self time, ${basename(s.file)}:`);
    const top = [...s.byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 25));
    for (const [fn, us] of top)
      console.log(
        `  ${((us / 1000 / s.busyMs) * 100).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${fn}`,
      );
    if (s.wardenInclusive.size === 0) continue;
    console.log(`\nWarden functions, inclusive (they and what they call), ${basename(s.file)}:`);
    const inc = [...s.wardenInclusive].sort((a, b) => b[1] - a[1]).slice(0, 30);
    for (const [fn, us] of inc)
      console.log(
        `  ${((us / 1000 / s.busyMs) * 100).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${fn}`,
      );
  }
}

main();
