import { describe, expect, it } from 'vitest';
import { agentRevocationState, isActive } from './introspect.js';

const at = (iso: string) => Math.floor(Date.parse(iso) / 1000);

describe('isActive (the stateless revocation rule)', () => {
  const iat = at('2026-11-29T12:00:00Z');
  it.each([
    ['an agent never revoked', { suspended: false }, true],
    ['an agent revoked before the token was issued', { suspended: false, revokedAt: iat - 60 }, true],
    [
      'an agent revoked after the token was issued (revived since)',
      { suspended: false, revokedAt: iat + 60 },
      false,
    ],
    ['an agent revoked in the same second', { suspended: false, revokedAt: iat }, false],
    ['a suspended agent', { suspended: true }, false],
    ['a deleted agent', null, false],
  ])('%s → %s', (_n, state, active) => {
    expect(isActive({ iat }, state)).toBe(active);
  });
});

describe('agentRevocationState', () => {
  it('reads suspension and the latest revocation time', () => {
    expect(
      agentRevocationState({
        spec: { serviceAccountName: 'bot', suspended: true },
        status: { revocation: { requestedAt: '2026-11-29T12:00:00.500Z' } },
      }),
    ).toEqual({ suspended: true, revokedAt: at('2026-11-29T12:00:00Z') });
  });
  it('treats a missing or garbled requestedAt as never revoked', () => {
    expect(
      agentRevocationState({
        spec: { serviceAccountName: 'bot' },
        status: { revocation: { requestedAt: 'soon' } },
      }),
    ).toEqual({ suspended: false });
  });
});
