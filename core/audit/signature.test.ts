import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuditRecordSpec } from '../api/index.js';
import { sealRecord } from './chain.js';
import {
  AUDIT_HEAD_TYP,
  AuditKeySet,
  type AuditSigningKey,
  parseAuditJwks,
  publicJwkOf,
  signHead,
  signRecord,
} from './signature.js';

function testKey(kid: string): AuditSigningKey {
  return { kid, privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
}

const key = testKey('k1');
const other = testKey('k2');
const keys = new AuditKeySet([publicJwkOf(key)]);
const record = (): AuditRecordSpec =>
  sealRecord({
    agent: 'bot',
    sequence: 0,
    previousDigest: '',
    entries: [{ time: '2026-12-04T12:00:00.000Z', kind: 'Decision', decision: 'Allow' }],
  });
const signed = (ns = 'agents', spec = record(), k = key): AuditRecordSpec => ({
  ...spec,
  signature: signRecord(ns, spec, k),
});
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('record signatures', () => {
  it('verifies a record the key signed, naming the key', async () => {
    const spec = signed();
    expect(spec.signature?.jws).toMatch(/^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/);
    expect(await keys.verifyRecord('agents', spec)).toEqual({ ok: true, keyId: 'k1' });
  });

  it.each<[string, () => AuditRecordSpec, string, string, RegExp]>([
    ['no signature', () => record(), 'agents', 'missing', /not signed/],
    [
      'a key nobody published',
      () => signed('agents', record(), other),
      'agents',
      'unknown-key',
      /k2 is not among/,
    ],
    [
      'a record copied into another namespace',
      () => signed('elsewhere'),
      'agents',
      'bad-signature',
      /does not match/,
    ],
    [
      'a different digest than was signed',
      () => ({ ...signed(), digest: 'a'.repeat(64) }),
      'agents',
      'bad-signature',
      /does not match/,
    ],
    [
      'another sequence than was signed',
      () => ({ ...signed(), sequence: 1 }),
      'agents',
      'bad-signature',
      /does not match/,
    ],
    [
      'keyId that differs from the header kid',
      () => {
        const s = signed();
        return { ...s, signature: { keyId: 'k9', jws: s.signature?.jws ?? '' } };
      },
      'agents',
      'malformed',
      /differs from keyId k9/,
    ],
    [
      'an attached (non-detached) JWS',
      () => ({ ...signed(), signature: { keyId: 'k1', jws: 'a.b.c' } }),
      'agents',
      'malformed',
      /detached compact JWS/,
    ],
    [
      'a header that is not JSON',
      () => ({ ...signed(), signature: { keyId: 'k1', jws: 'bm90LWpzb24..c2ln' } }),
      'agents',
      'malformed',
      /not JSON/,
    ],
    [
      'alg none',
      () => ({
        ...signed(),
        signature: {
          keyId: 'k1',
          jws: `${b64({ alg: 'none', kid: 'k1', typ: 'warden-audit-record+jws' })}..AA`,
        },
      }),
      'agents',
      'malformed',
      /does not use ES256/,
    ],
    [
      'a head signature presented as a record signature',
      () => {
        const s = record();
        const h = signHead('agents', 'bot', { sequence: s.sequence, digest: s.digest }, key);
        return { ...s, signature: { keyId: h.keyId, jws: h.jws } };
      },
      'agents',
      'malformed',
      new RegExp(`of type ${AUDIT_HEAD_TYP.replace('+', '\\+')}`),
    ],
  ])('refuses %s', async (_name, make, ns, problem, message) => {
    const v = await keys.verifyRecord(ns, make());
    expect(v.ok).toBe(false);
    expect(v).toMatchObject({ problem });
    expect(v.ok ? '' : v.message).toMatch(message);
  });

  it('verifies records of several keys once all are published (rotation)', async () => {
    const both = new AuditKeySet([publicJwkOf(key), publicJwkOf(other)]);
    expect((await both.verifyRecord('agents', signed('agents', record(), key))).ok).toBe(true);
    expect((await both.verifyRecord('agents', signed('agents', record(), other))).ok).toBe(true);
  });
});

describe('head signatures', () => {
  it('verifies a signed head and refuses it for another agent, sequence or a record signature', async () => {
    const head = signHead('agents', 'bot', { sequence: 4, digest: 'b'.repeat(64) }, key);
    expect(await keys.verifyHead('agents', 'bot', head)).toEqual({ ok: true, keyId: 'k1' });
    expect((await keys.verifyHead('agents', 'other-bot', head)).ok).toBe(false);
    expect((await keys.verifyHead('agents', 'bot', { ...head, sequence: 9 })).ok).toBe(false);
    const spec = { ...record(), sequence: 4, digest: 'b'.repeat(64) };
    const asRecord = signRecord('agents', spec, key);
    expect(
      await keys.verifyHead('agents', 'bot', { sequence: 4, digest: 'b'.repeat(64), ...asRecord }),
    ).toMatchObject({
      ok: false,
      problem: 'malformed',
    });
  });

  it('says a head without a signature is not signed', async () => {
    expect(await keys.verifyHead('agents', 'bot', { sequence: 1, digest: 'c'.repeat(64) })).toMatchObject({
      ok: false,
      problem: 'missing',
    });
  });
});

describe('parseAuditJwks', () => {
  it('reads a published key set', () => {
    const jwk = publicJwkOf(key);
    expect(parseAuditJwks(JSON.stringify({ keys: [jwk] }), 'f')).toEqual([jwk]);
  });
  it.each([
    ['not JSON', '{', /f: not JSON/],
    ['no keys array', '{}', /must be a JWKS/],
    [
      'a key without x',
      JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', kid: 'a', y: 'b' }] }),
      /keys\[0\]\.x is missing/,
    ],
    [
      'an RSA key',
      JSON.stringify({ keys: [{ kty: 'RSA', kid: 'a', x: 'b', y: 'c' }] }),
      /must be an EC P-256 key/,
    ],
  ])('refuses %s, naming where', (_n, text, message) => {
    expect(() => parseAuditJwks(text, 'f')).toThrow(message);
  });
});
