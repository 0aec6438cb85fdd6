import { describe, expect, it } from 'vitest';
import { entryUser, qualifiedUser } from './user.js';

describe('entryUser: one spelling of the user for broker and authority entries, old records included', () => {
  it.each([
    [
      'a broker entry (subject and issuer)',
      { user: 'alice', userIssuer: 'https://idp.example' },
      'alice',
      'https://idp.example',
    ],
    [
      'an authority entry written today (the same pair)',
      { user: 'alice', userIssuer: 'https://idp.example' },
      'alice',
      'https://idp.example',
    ],
    [
      'an authority entry written before userIssuer',
      { user: 'alice (https://idp.example)' },
      'alice',
      'https://idp.example',
    ],
    [
      'an old entry whose subject has spaces',
      { user: 'Alice Smith (https://idp.example/realms/x)' },
      'Alice Smith',
      'https://idp.example/realms/x',
    ],
    ['an old broker entry (subject only)', { user: 'alice' }, 'alice', undefined],
    ['the agent acting alone', { user: 'agent acting alone' }, 'agent acting alone', undefined],
    ['no user at all', {}, '', undefined],
    [
      'a new entry is never re-read, whatever its subject looks like',
      { user: 'x (https://y)', userIssuer: 'https://idp.example' },
      'x (https://y)',
      'https://idp.example',
    ],
    [
      'parentheses that are not an issuer URL stay part of the subject',
      { user: 'bob (admin)' },
      'bob (admin)',
      undefined,
    ],
  ] as const)('%s', (_name, entry, user, issuer) => {
    expect(entryUser(entry)).toEqual(issuer === undefined ? { user } : { user, issuer });
  });

  it('qualifiedUser names the issuer when there is one', () => {
    expect(qualifiedUser({ user: 'alice', issuer: 'https://idp.example' })).toBe(
      'alice (https://idp.example)',
    );
    expect(qualifiedUser({ user: 'agent acting alone' })).toBe('agent acting alone');
  });
});
