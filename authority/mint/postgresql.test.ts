import { describe, expect, it } from 'vitest';
import { adminConnectError, agentRolePrefix, createRoleStatements, roleName } from './postgresql.js';
import { scramSha256Verifier } from './scram-verifier.js';

const agentA = { namespace: 'agents', name: 'support-bot' };

describe('roleName', () => {
  it('is the agent prefix, a user/policy digest and the suffix, within 63 bytes', () => {
    const name = roleName(agentA, { issuer: 'https://idp', sub: 'alice' }, 'agents/p', 'abc123');
    expect(name).toMatch(/^w_support_bot_[0-9a-f]{8}_[0-9a-f]{8}_abc123$/);
    expect(name.startsWith(agentRolePrefix(agentA))).toBe(true);
  });

  it('differs per user, per policy and per agent namespace', () => {
    const base = roleName(agentA, { issuer: 'i', sub: 'alice' }, 'p', 's');
    expect(roleName(agentA, { issuer: 'i', sub: 'bob' }, 'p', 's')).not.toBe(base);
    expect(roleName(agentA, { issuer: 'i', sub: 'alice' }, 'q', 's')).not.toBe(base);
    expect(roleName(agentA, null, 'p', 's')).not.toBe(base);
    expect(roleName({ ...agentA, namespace: 'other' }, { issuer: 'i', sub: 'alice' }, 'p', 's')).not.toBe(
      base,
    );
  });

  it('slugs odd agent names and stays short', () => {
    const name = roleName(
      { namespace: 'n', name: 'A.Very.Long.Agent-Name.With.Dots.And.More.Parts' },
      null,
      undefined,
      'zzzzzz',
    );
    expect(name).toMatch(/^w_[a-z0-9_]+_[0-9a-f]{8}_[0-9a-f]{8}_zzzzzz$/);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
  });
});

describe('createRoleStatements', () => {
  it('quotes identifiers and literals', () => {
    const sql = createRoleStatements(
      'w_x',
      'SCRAM-SHA-256$4096:c2FsdA==$a:b',
      new Date('2026-01-01T00:00:00Z'),
      ['app_read', 'we"ird; DROP ROLE x; --'],
      { agent: "ns/it's" },
    );
    expect(sql).toEqual([
      `CREATE ROLE "w_x" WITH LOGIN INHERIT PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b' VALID UNTIL '2026-01-01T00:00:00.000Z'`,
      `GRANT "app_read", "we""ird; DROP ROLE x; --" TO "w_x"`,
      `COMMENT ON ROLE "w_x" IS '{"managedBy":"warden","agent":"ns/it''s"}'`,
    ]);
  });
});

describe('scramSha256Verifier', () => {
  it('has PostgreSQL’s stored format and depends on password and salt', () => {
    const salt = Buffer.from('0123456789abcdef');
    const v = scramSha256Verifier('pw', salt, 4096);
    expect(v).toMatch(
      /^SCRAM-SHA-256\$4096:MDEyMzQ1Njc4OWFiY2RlZg==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/,
    );
    expect(scramSha256Verifier('pw', salt, 4096)).toBe(v);
    expect(scramSha256Verifier('pw2', salt, 4096)).not.toBe(v);
    expect(scramSha256Verifier('pw')).not.toBe(scramSha256Verifier('pw'));
  });
});

describe('adminConnectError', () => {
  const where = 'CredentialProvider agents/db';
  const target = { host: '10.0.0.5', port: 5432, database: 'app', user: 'warden_admin' };
  const pgErr = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});

  it.each([
    ['connection refused (a socket error code)', pgErr('connect ECONNREFUSED 10.0.0.5:5432', 'ECONNREFUSED')],
    ['connection timeout', pgErr('timeout expired')],
    ['server starting up', pgErr('the database system is starting up', '57P03')],
    ['server shutting down', pgErr('terminating connection due to administrator command', '57P01')],
    ['too many connections', pgErr('sorry, too many clients already', '53300')],
  ])('%s: the database is unreachable, said first, naming the provider and the database', (_, err) => {
    const e = adminConnectError(where, target, err);
    expect(e.reason).toBe('UpstreamUnreachable');
    expect(e.message).toMatch(
      /^CredentialProvider agents\/db: database 10\.0\.0\.5:5432\/app is unreachable \(admin connection as 'warden_admin' failed: .+\); retry once it is back$/,
    );
    expect(e.message).toContain(err.message);
  });

  it.each([
    ['wrong password', pgErr('password authentication failed for user "warden_admin"', '28P01')],
    ['no pg_hba entry', pgErr('no pg_hba.conf entry', '28000')],
    ['missing database', pgErr('database "app" does not exist', '3D000')],
  ])('%s: rejected, a configuration problem, with the SQLSTATE', (_, err) => {
    const e = adminConnectError(where, target, err);
    expect(e.reason).toBe('UpstreamRejected');
    expect(e.message).toBe(
      `CredentialProvider agents/db: admin connection to 10.0.0.5:5432/app as 'warden_admin' failed: ${err.message} (SQLSTATE ${(err as { code: string }).code})`,
    );
  });

  it('a thrown non-Error is still described', () => {
    expect(adminConnectError(where, target, 'boom').message).toContain('failed: boom');
  });
});
