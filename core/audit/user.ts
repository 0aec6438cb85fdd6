/**
 * Who an audit entry was for, in one spelling for every producer (pure). An entry names the human
 * by `user` (the token's `sub`, or "agent acting alone") and, when there is one, `userIssuer` (the
 * trusted issuer that vouched for it): the broker's Decision entries and the authority's
 * Credential entries of one call carry the same pair, so `kubectl warden audit --user alice`
 * finds both.
 *
 * Records written before `userIssuer` existed stay readable: the authority then spelled the user
 * `alice (https://idp.example)` in `user` alone. entryUser reads that spelling back into the pair
 * (only for an entry without `userIssuer`: a new entry's `user` is always the bare subject).
 */
import type { AuditEntry } from '../api/index.js';
import { AGENT_ACTING_ALONE } from '../identity/user.js';

export interface EntryUser {
  /** The subject, "agent acting alone", or "" when the entry names nobody. */
  readonly user: string;
  readonly issuer?: string;
}

/** The authority's spelling before userIssuer: `<sub> (<issuer URL>)`. */
const LEGACY = /^(.+) \(([a-z][a-z0-9+.-]*:\/\/[^\s()]+)\)$/i;

/** The entry's user in the canonical spelling, old records included. */
export function entryUser(e: Pick<AuditEntry, 'user' | 'userIssuer'>): EntryUser {
  const user = e.user ?? '';
  if (e.userIssuer !== undefined) return { user, issuer: e.userIssuer };
  const legacy = user === AGENT_ACTING_ALONE ? null : LEGACY.exec(user);
  if (legacy) return { user: legacy[1] as string, issuer: legacy[2] as string };
  return { user };
}

/** `alice (https://idp.example)`: the user with the issuer that vouched for it, for wide views. */
export function qualifiedUser(u: EntryUser): string {
  return u.issuer ? `${u.user} (${u.issuer})` : u.user;
}
