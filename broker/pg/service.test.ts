import { describe, expect, it } from 'vitest';
import { BrokerDenyReason } from '../constants.js';
import { brokerDeny } from '../decider.js';
import { pgDenial, pgRefusal, settingMessage } from './service.js';

describe('settingMessage', () => {
  it('names the connection option instead of the header it stands in for', () => {
    expect(
      settingMessage('x-warden-context: not valid JSON (expected an object like {"ticketId":"SUP-1"})'),
    ).toBe('warden.context: not valid JSON (expected an object like {"ticketId":"SUP-1"})');
    expect(settingMessage('x-warden-user-token: not a bearer token')).toBe(
      'warden.user_token: not a bearer token',
    );
    expect(settingMessage('something else')).toBe('something else');
  });
});

describe('pgDenial', () => {
  it('carries the policy reasons as the DETAIL psql prints under the error', () => {
    expect(
      pgDenial({
        message: 'denied by AccessPolicy ns/db-hours rule 0',
        reasons: [
          { policy: 'ns/db-hours', rule: 0, message: "condition 'business-hours' is false" },
          { policy: 'ns/ro', rule: null, message: 'no rule matched' },
        ],
      }),
    ).toEqual({
      message: 'denied by AccessPolicy ns/db-hours rule 0',
      detail: "ns/db-hours rule 0: condition 'business-hours' is false; ns/ro: no rule matched",
    });
  });

  it('has no DETAIL for a broker-level denial (no policy involved)', () => {
    expect(
      pgDenial({
        message: 'agent ns/bot is suspended',
        reasons: [{ policy: null, rule: null, message: 'x' }],
      }),
    ).toEqual({ message: 'agent ns/bot is suspended' });
  });

  it('a QuotaExceeded denial is SQLSTATE 53400 with a HINT saying when to retry', () => {
    expect(
      pgDenial({
        reason: 'QuotaExceeded',
        message: 'quota exceeded: AccessPolicy ns/db rules[0].limits[0] allows 5 call(s) per 1m per agent',
        reasons: [{ policy: null, rule: null, message: 'x' }],
        retryAfterMs: 12_300,
      }),
    ).toEqual({
      message: 'quota exceeded: AccessPolicy ns/db rules[0].limits[0] allows 5 call(s) per 1m per agent',
      code: '53400',
      hint: 'retry in 13 s, when the quota window resets',
    });
  });
});

describe('pgRefusal', () => {
  const info = { user: 'agent', database: 'orders' };

  it.each([
    [BrokerDenyReason.AuthorityUnreachable, '08006'],
    [BrokerDenyReason.PolicySnapshotMissing, '08006'],
    [BrokerDenyReason.PolicySnapshotStale, '08006'],
    [BrokerDenyReason.AgentSuspended, '28000'],
    [BrokerDenyReason.CredentialDenied, '28000'],
    [BrokerDenyReason.UnknownTarget, '28000'],
  ])('%s answers SQLSTATE %s (class 08: clients retry)', (reason, code) => {
    expect(pgRefusal(brokerDeny(reason, 'why'), info)).toMatchObject({ allow: false, code, message: 'why' });
  });

  it('QuotaExceeded answers SQLSTATE 53400 with a HINT saying when the window resets', () => {
    const d = { ...brokerDeny(BrokerDenyReason.QuotaExceeded, 'quota exceeded: …'), retryAfterMs: 1_500 };
    expect(pgRefusal(d, info)).toEqual({
      allow: false,
      code: '53400',
      message: 'quota exceeded: …',
      hint: 'retry in 2 s, when the quota window resets',
    });
  });

  it("an unknown provider named like the user says the database name is the provider's (psql's default)", () => {
    const r = pgRefusal(brokerDeny(BrokerDenyReason.UnknownTarget, "no CredentialProvider 'root' …"), {
      user: 'root',
      database: 'root',
    });
    expect(r.allow ? '' : r.message).toBe(
      `no CredentialProvider 'root' …; the database name is the CredentialProvider's name, and none was given (psql and libpq then use the user name 'root'): connect with psql "$WARDEN_PG_BASE/<provider>" or -d <provider>`,
    );
  });
});
