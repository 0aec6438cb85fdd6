/**
 * The layering check (docs/conventions.md §1): reads every production TypeScript file,
 * resolves its relative imports to rooms (folders) and fails on an edge that points
 * up or sideways. `npx tsx scripts/import-graph.ts` prints the room graph and any
 * violation; `make lint` runs it, so a new edge of the wrong kind fails the build.
 *
 * Tests, test fixtures and harness code may reach across rooms (an integration test
 * wires real parts together); only the code that ships is checked.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Rooms from the bottom up. A room may import its own files and the rooms listed
 * in its `uses`; nothing else. Adapters never import each other: what one needs
 * of another is a port in core/ports, wired by an entry point.
 */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  core: [],
  // Published on its own (npm, PyPI): imports nothing of Warden; constants.test.ts keeps names equal.
  sdk: [],
  observability: ['core'],
  // Process lifecycle: ordered runnables, readiness, shutdown (no Kubernetes, no I/O), so
  // the broker and the kube Manager share it.
  lifecycle: [],
  // The Kubernetes runtime every adapter uses: client, informers, queue, leader
  // election, status writer, Events, the Manager.
  kube: ['core', 'observability', 'lifecycle'],
  operator: ['core', 'observability', 'lifecycle', 'kube'],
  webhook: ['core', 'observability', 'lifecycle', 'kube'],
  authority: ['core', 'observability', 'lifecycle', 'kube'],
  audit: ['core', 'observability', 'lifecycle', 'kube'],
  broker: ['core', 'observability', 'lifecycle'],
  // Entry points wire the rooms together.
  controller: ['core', 'observability', 'lifecycle', 'kube', 'operator', 'webhook', 'authority', 'audit'],
  cli: [
    'core',
    'observability',
    'lifecycle',
    'kube',
    'operator',
    'webhook',
    'authority',
    'audit',
    'broker',
    'controller',
  ],
};

/** Files that ship: no tests, fixtures or test helpers. */
export function isProductionFile(path: string): boolean {
  if (!path.endsWith('.ts') || path.endsWith('.d.ts')) return false;
  const base = path.split('/').pop() ?? '';
  if (/\.(test|int\.test|e2e\.test|fuzz\.test|bench)\.ts$/.test(base)) return false;
  if (/(^|-)(fixtures?|testing|int-fixtures)\.ts$/.test(base) || base.endsWith('-fixture.ts')) return false;
  return !path.split('/').some((part) => part === 'testing');
}

/** The room a repository-relative path belongs to, or null outside the checked rooms. */
export function roomOf(path: string): string | null {
  const parts = path.split('/');
  if (parts[0] === 'operator' && parts[1] === 'core') return 'kube';
  const top = parts[0] ?? '';
  return top in LAYERS ? top : null;
}

/** Relative module specifiers of a source text: static, re-export and dynamic imports. */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const m of source.matchAll(re)) if (m[1]) out.push(m[1]);
  return out;
}

export interface Edge {
  from: string;
  to: string;
  file: string;
  specifier: string;
}

/** Every cross-room edge of the given files (`files`: repository-relative path → source). */
export function roomEdges(files: ReadonlyMap<string, string>): Edge[] {
  const edges: Edge[] = [];
  for (const [file, source] of files) {
    const from = roomOf(file);
    if (!from || !isProductionFile(file)) continue;
    for (const specifier of importsOf(source)) {
      const target = normalize(join(dirname(file), specifier))
        .split(sep)
        .join('/');
      const to = roomOf(target);
      if (to && to !== from) edges.push({ from, to, file, specifier });
    }
  }
  return edges;
}

/** The edges the layering forbids. */
export function violations(edges: readonly Edge[]): Edge[] {
  return edges.filter((e) => !(LAYERS[e.from] ?? []).includes(e.to));
}

function walk(dir: string, root: string, out: Map<string, string>): void {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, root, out);
    else if (name.endsWith('.ts'))
      out.set(relative(root, full).split(sep).join('/'), readFileSync(full, 'utf8'));
  }
}

/** Reads the checked rooms of the repository at root. */
export function readRooms(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const room of Object.keys(LAYERS)) {
    const dir = join(root, room);
    try {
      if (statSync(dir).isDirectory()) walk(dir, root, files);
    } catch {
      // a room that does not exist yet has no edges
    }
  }
  return files;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const edges = roomEdges(readRooms(root));
  const counts = new Map<string, number>();
  for (const e of edges) counts.set(`${e.from} -> ${e.to}`, (counts.get(`${e.from} -> ${e.to}`) ?? 0) + 1);
  console.log('import graph (production code, cross-room edges):');
  for (const [edge, n] of [...counts].sort()) console.log(`  ${edge}  (${n})`);
  const bad = violations(edges);
  if (bad.length === 0) {
    console.log('layering: ok, no edge points up or sideways (docs/conventions.md §1)');
  } else {
    console.error(`layering: ${bad.length} forbidden import(s) (docs/conventions.md §1):`);
    for (const e of bad)
      console.error(
        `  ${e.file}: imports '${e.specifier}' (${e.from} may use ${(LAYERS[e.from] ?? []).join(', ') || 'nothing outside itself'})`,
      );
    process.exitCode = 1;
  }
}
