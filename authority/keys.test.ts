import { describe, expect, it } from 'vitest';
import {
  type KeyRing,
  loadKey,
  parseKeyRing,
  planRotation,
  publishedKeysOf,
  type RotationPolicy,
  signingKeyOf,
} from './keys.js';
import { countingGenerator } from './testing.js';

const H = 3600_000;
const policy: RotationPolicy = { rotationPeriodMs: 24 * H, prepublishMs: 1 * H, maxTokenLifetimeMs: 2 * H };
const at = (hours: number) => new Date(Date.UTC(2026, 0, 1) + hours * H);
const kids = (ring: KeyRing) => ring.keys.map((k) => k.kid);

/** Runs the rotation plan hour by hour, like the periodic sync does. */
function simulate(hours: number): Array<{ hour: number; signing: string | undefined; published: string[] }> {
  const gen = countingGenerator();
  let ring: KeyRing = { keys: [] };
  const out = [];
  for (let h = 0; h <= hours; h++) {
    ring = planRotation(ring, at(h), policy, gen).ring;
    out.push({
      hour: h,
      signing: signingKeyOf(ring, at(h))?.kid,
      published: publishedKeysOf(ring, at(h), policy).map((k) => k.kid),
    });
  }
  return out;
}

describe('key rotation plan', () => {
  it('creates a first key that signs immediately', () => {
    const { ring, changed } = planRotation({ keys: [] }, at(0), policy, countingGenerator());
    expect(changed).toBe(true);
    expect(signingKeyOf(ring, at(0))?.kid).toBe('k1');
  });

  it('changes nothing while the signing key is young', () => {
    const gen = countingGenerator();
    const first = planRotation({ keys: [] }, at(0), policy, gen).ring;
    expect(planRotation(first, at(10), policy, gen)).toEqual({ ring: first, changed: false });
  });

  it('pre-publishes the next key an hour before it signs, and keeps the old one until its tokens expire', () => {
    const timeline = simulate(30);
    expect(timeline[22]).toEqual({ hour: 22, signing: 'k1', published: ['k1'] });
    expect(timeline[23]).toEqual({ hour: 23, signing: 'k1', published: ['k1', 'k2'] }); // pre-published
    expect(timeline[24]).toEqual({ hour: 24, signing: 'k2', published: ['k1', 'k2'] }); // k1 still verifies
    expect(timeline[25]).toEqual({ hour: 25, signing: 'k2', published: ['k1', 'k2'] });
    expect(timeline[26]).toEqual({ hour: 26, signing: 'k2', published: ['k2'] }); // k1's tokens are expired
  });

  it('never publishes more than three keys and always has a signing key over a week', () => {
    for (const step of simulate(24 * 7)) {
      expect(step.signing).toBeDefined();
      expect(step.published).toContain(step.signing);
      expect(step.published.length).toBeLessThanOrEqual(3);
    }
  });

  it('recovers after a long outage: every key expired → a new key signs at once', () => {
    const gen = countingGenerator();
    const old = planRotation({ keys: [] }, at(0), policy, gen).ring;
    const second = planRotation(old, at(23), policy, gen).ring; // k2 pending for hour 24
    const { ring } = planRotation(second, at(24 * 30), policy, gen);
    expect(signingKeyOf(ring, at(24 * 30))?.kid).toBeDefined();
    expect(kids(ring)).not.toContain('k1');
  });
});

describe('parseKeyRing', () => {
  it.each([
    ['not an object', '[]', 'must be {"keys": [...]}'],
    ['missing kid', '{"keys":[{"createdAt":"2026-01-01T00:00:00Z"}]}', 'keys[0].kid'],
    [
      'bad date',
      '{"keys":[{"kid":"a","createdAt":"x","activateAt":"x","privateKeyPem":"p"}]}',
      'keys[0].createdAt',
    ],
  ])('rejects %s with the field path', (_name, json, message) => {
    expect(() => parseKeyRing(json)).toThrow(message);
  });

  it('loads a stored key into a public JWK', () => {
    const key = countingGenerator()(at(0), at(0));
    const loaded = loadKey(parseKeyRing(JSON.stringify({ keys: [key] })).keys[0]!);
    expect(loaded.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: 'k1' });
    expect(loaded.publicJwk).not.toHaveProperty('d');
  });
});
