import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importsOf, isProductionFile, readRooms, roomEdges, roomOf, violations } from './import-graph.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function check(files: Record<string, string>) {
  return violations(roomEdges(new Map(Object.entries(files)))).map((e) => `${e.file} -> ${e.to}`);
}

describe('layering check', () => {
  it('the repository has no edge that points up or sideways', () => {
    const files = readRooms(root);
    expect(files.size).toBeGreaterThan(100);
    expect(violations(roomEdges(files))).toEqual([]);
  });

  it.each([
    [
      'an adapter importing another adapter',
      { 'operator/reconcilers/x.ts': "import type { A } from '../../authority/revocation.js';" },
      ['operator/reconcilers/x.ts -> authority'],
    ],
    [
      'core importing an adapter',
      { 'core/policy/x.ts': "import { y } from '../../broker/y.js';" },
      ['core/policy/x.ts -> broker'],
    ],
    [
      'the kube runtime importing a reconciler',
      { 'kube/x.ts': "export { r } from '../operator/reconcilers/r.js';" },
      ['kube/x.ts -> operator'],
    ],
    [
      'a dynamic import',
      { 'audit/x.ts': "const m = await import('../authority/keys.js');" },
      ['audit/x.ts -> authority'],
    ],
    [
      'the broker importing the kube runtime',
      { 'broker/x.ts': "import { K } from '../kube/kube.js';" },
      ['broker/x.ts -> kube'],
    ],
    [
      'the lifecycle runnables importing the kube runtime',
      { 'lifecycle/x.ts': "import { K } from '../kube/kube.js';" },
      ['lifecycle/x.ts -> kube'],
    ],
  ])('refuses %s', (_name, files, expected) => {
    expect(check(files)).toEqual(expected);
  });

  it.each([
    [
      'an adapter using core and the kube runtime',
      {
        'authority/x.ts': "import { a } from '../core/a.js';\nimport { k } from '../kube/kube.js';",
      },
    ],
    [
      'an entry point wiring adapters',
      {
        'controller/run.ts':
          "import { a } from '../authority/index.js';\nimport { w } from '../webhook/index.js';",
      },
    ],
    [
      'a test reaching across rooms',
      { 'operator/reconcilers/x.int.test.ts': "import { f } from '../../authority/int-fixtures.js';" },
    ],
    [
      'a test helper reaching across rooms',
      { 'operator/testing/int.ts': "import { f } from '../../e2e/harness/x.js';" },
    ],
    [
      'the broker and the kube Manager sharing the lifecycle runnables',
      {
        'broker/main.ts': "import { RunnableGroup } from '../lifecycle/runnables.js';",
        'kube/manager.ts': "import { RunnableGroup } from '../lifecycle/runnables.js';",
      },
    ],
    ['an import inside one room', { 'broker/a.ts': "import { b } from './b.js';" }],
  ])('allows %s', (_name, files) => {
    expect(check(files)).toEqual([]);
  });

  it('reads static, re-export and dynamic specifiers, and skips packages', () => {
    const src = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c.js';",
      "import './side-effect.js';",
      "const d = await import('./d.js');",
      "import { z } from 'zod';",
    ].join('\n');
    expect(importsOf(src)).toEqual(['./a.js', '../b.js', './c.js', './side-effect.js', './d.js']);
  });

  it('knows which files ship and which room they live in', () => {
    expect(isProductionFile('broker/mcp-gateway.ts')).toBe(true);
    expect(isProductionFile('broker/mcp-gateway.int.test.ts')).toBe(false);
    expect(isProductionFile('authority/int-fixtures.ts')).toBe(false);
    expect(isProductionFile('e2e/killswitch-fixture.ts')).toBe(false);
    expect(isProductionFile('operator/testing/int.ts')).toBe(false);
    expect(roomOf('kube/queue.ts')).toBe('kube');
    expect(roomOf('operator/reconcilers/revocation.ts')).toBe('operator');
    expect(roomOf('e2e/harness/x.ts')).toBeNull();
  });
});
