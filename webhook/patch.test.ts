import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyPatch, diff, escapePointerToken, RemovalError } from './patch.js';

describe('escapePointerToken (RFC 6901)', () => {
  it.each([
    ['warden.dev/agent', 'warden.dev~1agent'],
    ['a~b', 'a~0b'],
    ['~/', '~0~1'],
    ['plain', 'plain'],
  ])('%s → %s', (input, want) => {
    expect(escapePointerToken(input)).toBe(want);
  });
});

describe('diff', () => {
  it('is empty for equal documents', () => {
    expect(diff({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toEqual([]);
  });

  it('adds a missing map with an escaped key path', () => {
    const ops = diff({ metadata: {} }, { metadata: { labels: { 'warden.dev/agent': 'x' } } });
    expect(ops).toEqual([{ op: 'add', path: '/metadata/labels', value: { 'warden.dev/agent': 'x' } }]);
  });

  it('adds a key to an existing map with RFC 6901 escaping', () => {
    const ops = diff({ m: { a: '1' } }, { m: { a: '1', 'warden.dev/injected': '{}' } });
    expect(ops).toEqual([{ op: 'add', path: '/m/warden.dev~1injected', value: '{}' }]);
  });

  it('inserts at the front of a named list by index and recurses into matched elements', () => {
    const a = { c: [{ name: 'x' }, { name: 'y' }] };
    const b = { c: [{ name: 'new' }, { name: 'x', env: [{ name: 'E', value: '1' }] }, { name: 'y' }] };
    const ops = diff(a, b);
    expect(ops).toEqual([
      { op: 'add', path: '/c/0', value: { name: 'new' } },
      { op: 'add', path: '/c/1/env', value: [{ name: 'E', value: '1' }] },
    ]);
    expect(applyPatch(a, ops)).toEqual(b);
  });

  it('replaces a changed scalar', () => {
    expect(diff({ a: 1 }, { a: 2 })).toEqual([{ op: 'replace', path: '/a', value: 2 }]);
  });

  it('refuses to produce a patch that would remove a map key', () => {
    expect(() => diff({ a: 1, b: 2 }, { a: 1 })).toThrow(RemovalError);
  });

  it('refuses to produce a patch that would remove a list element', () => {
    expect(() => diff({ c: [{ name: 'x' }, { name: 'y' }] }, { c: [{ name: 'x' }] })).toThrow(/\/c\/1/);
  });

  it('turns an object growing keys and lists growing elements into add operations only (property)', () => {
    const value = fc.oneof(fc.string(), fc.integer(), fc.boolean());
    const named = fc.uniqueArray(fc.record({ name: fc.string({ minLength: 1 }), v: value }), {
      selector: (e) => e.name,
      maxLength: 5,
    });
    fc.assert(
      fc.property(named, named, fc.dictionary(fc.string(), value), (base, extra, map) => {
        const names = new Set(base.map((e) => e.name));
        const added = extra.filter((e) => !names.has(e.name));
        const original = { list: base, meta: {} };
        const mutated = { list: [...added.slice(0, 1), ...base, ...added.slice(1)], meta: map };
        const ops = diff(original, mutated);
        expect(ops.every((o) => o.op === 'add')).toBe(true);
        expect(applyPatch(original, ops)).toEqual(mutated);
      }),
      { numRuns: 500 },
    );
  });
});
