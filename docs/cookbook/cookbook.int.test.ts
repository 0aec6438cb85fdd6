/**
 * Proves the policy cookbook (docs/policy-cookbook.md): every recipe NN-*.yaml is
 * accepted by the real API server's CRD validation (`kubectl apply --dry-run=server`),
 * and its PolicyTest cases in NN-*.test.yaml pass under the `kubectl warden test`
 * runner (cli/policy-test.ts) — the same files a reader runs with
 *   kubectl warden test docs/cookbook/NN-name.yaml docs/cookbook/NN-name.test.yaml
 * Each recipe runs on its own: recipe 7 freezes a whole namespace and would deny
 * every other recipe's cases if they shared one run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatReport, runPolicyTests } from '../../cli/policy-test.js';
import { freshNamespace, kubectl } from '../../e2e/harness/index.js';

const DIR = dirname(fileURLToPath(import.meta.url));
/** Every case names its time; this default would only be used by a case that does not. */
const NOW = new Date('2026-01-05T10:00:00Z');

const recipes = readdirSync(DIR)
  .filter((f) => /^\d\d-.+\.yaml$/.test(f) && !f.endsWith('.test.yaml'))
  .sort()
  .map((f) => f.replace(/\.yaml$/, ''));

function source(file: string): { path: string; text: string } {
  return { path: `docs/cookbook/${file}`, text: readFileSync(join(DIR, file), 'utf8') };
}

let namespace = '';

beforeAll(async () => {
  namespace = await freshNamespace('cookbook');
});

it('has thirteen recipes', () => {
  expect(recipes).toHaveLength(13);
});

describe.each(recipes)('%s', (recipe) => {
  it('is accepted by the API server (CRD schemas and CEL validation rules)', async () => {
    const out = await kubectl([
      'apply',
      '--server-side',
      '--dry-run=server',
      '--field-manager=cookbook-test',
      '-n',
      namespace,
      '-f',
      join(DIR, `${recipe}.yaml`),
    ]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
  });

  it('passes its test cases under `kubectl warden test`', () => {
    const report = runPolicyTests([source(`${recipe}.yaml`), source(`${recipe}.test.yaml`)], NOW);
    const { text, passed } = formatReport(report);
    expect(report.policies).toBeGreaterThan(0);
    expect(report.cases.length).toBeGreaterThanOrEqual(4);
    expect(passed, text).toBe(true);
  });
});
