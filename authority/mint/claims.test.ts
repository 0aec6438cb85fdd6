import { describe, expect, it } from 'vitest';
import { celToJson } from './claims.js';
import { effectiveTtlMs } from './ttl.js';

describe('celToJson', () => {
  it.each([
    { name: 'string', value: 'x', json: 'x' },
    { name: 'small int', value: 42n, json: 42 },
    { name: 'huge int', value: 2n ** 70n, json: (2n ** 70n).toString() },
    { name: 'double', value: 1.5, json: 1.5 },
    { name: 'null', value: null, json: null },
    { name: 'timestamp', value: new Date('2026-01-01T00:00:00Z'), json: '2026-01-01T00:00:00.000Z' },
    { name: 'bytes', value: new Uint8Array([1, 2, 3]), json: 'AQID' },
    {
      name: 'nested map and list',
      value: new Map<string, unknown>([['a', [1n, new Map([['b', true]])]]]),
      json: { a: [1, { b: true }] },
    },
  ])('converts $name', ({ value, json }) => {
    expect(celToJson(value, 'c')).toEqual(json);
  });

  it('rejects non-finite numbers with the field path', () => {
    expect(() => celToJson(Number.POSITIVE_INFINITY, 'spec.jwt.claims.x')).toThrow(
      /spec\.jwt\.claims\.x: .*non-finite/,
    );
  });
});

describe('effectiveTtlMs', () => {
  it('defaults the agent max to 1h', () => {
    expect(effectiveTtlMs({})).toBe(3_600_000);
  });
  it('takes the minimum of the three', () => {
    expect(effectiveTtlMs({ policy: '10m', provider: { value: '5m', field: 'f' }, agentMax: '1h' })).toBe(
      300_000,
    );
  });
  it.each(['0s', 'soon', '-5m', ''])('rejects %j naming the field', (bad) => {
    expect(() => effectiveTtlMs({ policy: bad })).toThrow(
      /AccessPolicy rule credential\.ttl: .* not a positive duration/,
    );
  });
});
