/**
 * One owner per status field, held in four places that must agree: STATUS_OWNERS (what the status
 * writers enforce), the table in docs/conventions.md §5 (what people read), the CRDs' status
 * schemas (what exists) and the field-manager constants in the code (what the writes carry).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isProductionFile, LAYERS } from '../scripts/import-graph.js';
import * as constants from './constants.js';
import { STATUS_OWNERS, unownedStatusFields } from './status-owners.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** "kind status-field field-manager", one per owned field. */
const ownedInCode = STATUS_OWNERS.flatMap((o) =>
  o.fields.map((f) => `${o.kind} ${f} ${o.fieldManager}`),
).sort();

/** The rows of the status-owner table in docs/conventions.md §5, in the same form. */
function ownedInDocs(): string[] {
  const md = readFileSync(join(root, 'docs/conventions.md'), 'utf8');
  const section = md.slice(md.indexOf('## 5.'), md.indexOf('## 6.'));
  const rows = section
    .split('\n')
    .filter((l) => l.startsWith('|') && !l.startsWith('| object') && !l.startsWith('|---'));
  expect(rows.length, 'docs/conventions.md §5 has a status-owner table').toBeGreaterThan(0);
  return rows
    .flatMap((row) => {
      const [kind, fields, owner] = row
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      const managers = [...(owner ?? '').matchAll(/`(warden-[a-z-]+)`/g)].map((m) => m[1]);
      expect(managers, `one field manager in the row "${row}"`).toHaveLength(1);
      return [...(fields ?? '').matchAll(/`([A-Za-z.]+)`/g)].map((m) => `${kind} ${m[1]} ${managers[0]}`);
    })
    .sort();
}

/**
 * The status fields of each kind in crds/: top-level properties, and the members of an object
 * whose members have different owners (looked into where STATUS_OWNERS names a dotted field).
 */
function fieldsInCrds(): string[] {
  const out: string[] = [];
  for (const file of readdirSync(join(root, 'crds')).filter((f) => f.endsWith('.yaml'))) {
    const crd = parse(readFileSync(join(root, 'crds', file), 'utf8')) as {
      spec: {
        names: { kind: string };
        versions: { schema: { openAPIV3Schema: { properties: Record<string, { properties?: object }> } } }[];
      };
    };
    const kind = crd.spec.names.kind;
    const split = new Set(
      STATUS_OWNERS.filter((o) => o.kind === kind).flatMap((o) =>
        o.fields.filter((f) => f.includes('.')).map((f) => f.split('.')[0]),
      ),
    );
    for (const v of crd.spec.versions) {
      const status = (v.schema.openAPIV3Schema.properties.status?.properties ?? {}) as Record<
        string,
        { properties?: Record<string, unknown> }
      >;
      for (const [field, schema] of Object.entries(status)) {
        if (split.has(field))
          for (const sub of Object.keys(schema.properties ?? {})) out.push(`${kind} ${field}.${sub}`);
        else out.push(`${kind} ${field}`);
      }
    }
  }
  return [...new Set(out)].sort();
}

/** Production source files of every room. */
function productionSources(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name.startsWith('.')) continue;
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const rel = full.slice(root.length + 1);
        if (isProductionFile(rel)) files.set(rel, readFileSync(full, 'utf8'));
      }
    }
  };
  for (const room of Object.keys(LAYERS)) {
    try {
      walk(join(root, room));
    } catch {
      // a room that does not exist has no sources
    }
  }
  return files;
}

describe('status owners (docs/conventions.md §5)', () => {
  it('the table in docs/conventions.md §5 lists exactly the owners in core/status-owners.ts', () => {
    expect(ownedInDocs(), 'docs/conventions.md §5 vs STATUS_OWNERS: update both together').toEqual(
      ownedInCode,
    );
  });

  it('every status field in crds/ has exactly one owner, and every owned field exists', () => {
    const owned = STATUS_OWNERS.flatMap((o) => o.fields.map((f) => `${o.kind} ${f}`));
    const repeated = owned.filter((f, i) => owned.indexOf(f) !== i);
    expect(repeated, 'status fields with more than one owner').toEqual([]);
    expect(owned.sort(), 'crds/ status fields vs STATUS_OWNERS: a new status field needs an owner').toEqual(
      fieldsInCrds(),
    );
  });

  it('the field managers in core/constants.ts are exactly the owners, and every status write carries one', () => {
    const declared = Object.entries(constants)
      .filter(([name]) => name.endsWith('FIELD_MANAGER'))
      .map(([, value]) => value as string)
      .sort();
    const managers = [...new Set(STATUS_OWNERS.map((o) => o.fieldManager))].sort();
    expect(declared, 'core/constants.ts *FIELD_MANAGER vs STATUS_OWNERS').toEqual(managers);
    // A file that PATCHes a /status subresource names its field manager by one of those constants
    // (kube/status.ts: the writer's own, checked against STATUS_OWNERS on every write).
    const wrong: string[] = [];
    const writers: string[] = [];
    for (const [file, src] of productionSources()) {
      if (!/'PATCH'/.test(src) || !/\/status`|'status'\)/.test(src)) continue;
      writers.push(file);
      for (const m of src.matchAll(/query:\s*\{[^}]*fieldManager:\s*([\w.]+)/g)) {
        const name = m[1] ?? '';
        const value = (constants as Record<string, unknown>)[name];
        if (name !== 'this.fieldManager' && !managers.includes(value as string))
          wrong.push(`${file}: ${name}`);
      }
    }
    expect(writers.length).toBeGreaterThan(0);
    expect(wrong).toEqual([]);
  });

  it('every write names its field manager by a constant, never a string of its own', () => {
    const literal: string[] = [];
    for (const [file, src] of productionSources()) {
      for (const m of src.matchAll(/fieldManager\s*[:=]\s*(['"`][^'"`]*['"`])/g))
        literal.push(`${file}: ${m[1]}`);
      // The query parameter of a write: a constant, or the status writer's own field manager.
      for (const m of src.matchAll(/query:\s*\{[^}]*fieldManager:\s*([\w.]+)/g))
        if (!/^(this\.fieldManager|[A-Z_]*FIELD_MANAGER)$/.test(m[1] ?? '')) literal.push(`${file}: ${m[1]}`);
    }
    expect(literal).toEqual([]);
  });
});

describe('unownedStatusFields', () => {
  it.each<[string, string, string, Record<string, unknown>, string[]]>([
    [
      'allowed: the AgentIdentity reconciler, conditions',
      'AgentIdentity',
      constants.FIELD_MANAGER,
      { conditions: [], observedGeneration: 2 },
      [],
    ],
    [
      'allowed: the revocation reconciler, status.revocation',
      'AgentIdentity',
      constants.REVOCATION_FIELD_MANAGER,
      { revocation: { pending: null } },
      [],
    ],
    [
      'allowed: retention, audit.prunedThrough',
      'AgentIdentity',
      constants.RETENTION_FIELD_MANAGER,
      { audit: { prunedThrough: '3/ab' } },
      [],
    ],
    [
      'allowed: the audit writer, audit.forged',
      'AgentIdentity',
      constants.AUDIT_FIELD_MANAGER,
      { audit: { forged: { count: 1 } } },
      [],
    ],
    [
      'refused: the AgentIdentity reconciler, status.revocation',
      'AgentIdentity',
      constants.FIELD_MANAGER,
      { revocation: {} },
      ['revocation'],
    ],
    [
      'refused: retention, audit.head',
      'AgentIdentity',
      constants.RETENTION_FIELD_MANAGER,
      { audit: { head: {}, prunedThrough: 'x' } },
      ['audit.head'],
    ],
    [
      'refused: the audit writer, the whole audit object',
      'AgentIdentity',
      constants.AUDIT_FIELD_MANAGER,
      { audit: 'x' },
      ['audit'],
    ],
    [
      'refused: the stats, issuedCount on an AgentIdentity',
      'AgentIdentity',
      constants.STATS_FIELD_MANAGER,
      { issuedCount: 1 },
      ['issuedCount'],
    ],
    [
      'refused: an unknown field manager, anything',
      'CredentialProvider',
      'kubectl',
      { conditions: [] },
      ['conditions'],
    ],
  ])('%s', (_name, kind, manager, status, unowned) => {
    expect(unownedStatusFields(kind, manager, status)).toEqual(unowned);
  });

  it('ignores members left undefined (not sent)', () => {
    expect(unownedStatusFields('AgentIdentity', constants.FIELD_MANAGER, { revocation: undefined })).toEqual(
      [],
    );
  });
});
