import { describe, expect, it } from 'vitest';
import { publicJwkOf } from '../core/audit/signature.js';
import { mergePublished, parsePublishedKeys, StaticAuditKeys } from './keyset.js';

const a = publicJwkOf(StaticAuditKeys.generate().signingKey());
const b = publicJwkOf(StaticAuditKeys.generate().signingKey());
const now = new Date('2026-12-04T12:00:00.250Z');

describe('mergePublished', () => {
  it('starts the document with the keys and when signing began', () => {
    expect(mergePublished(undefined, [a], now)).toEqual({
      doc: { keys: [a], signingSince: now.toISOString() },
      changed: true,
    });
  });

  it('adds a new key and never removes one that stopped signing', () => {
    const existing = { keys: [a], signingSince: '2026-01-01T00:00:00.000Z' };
    expect(mergePublished(existing, [b], now)).toEqual({
      doc: { keys: [a, b], signingSince: '2026-01-01T00:00:00.000Z' },
      changed: true,
    });
  });

  it('is unchanged when every key is already published', () => {
    const existing = { keys: [a, b], signingSince: '2026-01-01T00:00:00.000Z' };
    expect(mergePublished(existing, [b], now).changed).toBe(false);
  });
});

describe('parsePublishedKeys', () => {
  it('reads keys and signingSince', () => {
    const text = JSON.stringify({ keys: [a], signingSince: '2026-12-04T12:00:00Z' });
    expect(parsePublishedKeys(text, 'cm')).toEqual({
      keys: [a],
      signingSince: Date.parse('2026-12-04T12:00:00Z'),
    });
  });
  it('accepts a plain JWKS (no signingSince: every unsigned record is forged)', () => {
    expect(parsePublishedKeys(JSON.stringify({ keys: [a] }), 'cm')).toEqual({ keys: [a] });
  });
  it('names a bad signingSince', () => {
    expect(() => parsePublishedKeys(JSON.stringify({ keys: [a], signingSince: 'soon' }), 'cm')).toThrow(
      'cm: signingSince must be an RFC 3339 time',
    );
  });
});
