/**
 * PostgreSQL credentials: a temporary LOGIN role per (agent, user, policy), like Vault's dynamic
 * database secrets.
 *
 * - The name is derived deterministically (agent slug + digests of the agent and of
 *   user/policy) plus a random suffix, so all roles of one agent share a prefix (kill switch:
 *   revokeAgent) while two credentials never collide.
 * - The role expires by itself (VALID UNTIL now + ttl): new logins fail after that even if
 *   Warden is down; sweepExpired() (called by the operator) ends its sessions and drops it.
 *   Revoked roles (NOLOGIN) stay until then, so the kill switch's revocation stays idempotent.
 * - The password is random, sent to PostgreSQL only as a SCRAM verifier, and returned only to
 *   the caller (the authority hands it to the broker; it never reaches the agent).
 * - Every identifier and literal goes through pg's escapeIdentifier/escapeLiteral (DDL cannot
 *   take bind parameters); ordinary queries use bind parameters.
 * - Roles carry a COMMENT marking them as Warden's, and the sweeper only ever drops marked roles.
 *
 * Admin credentials come from spec.postgresql.adminSecretRef (connections pooled per login). The admin role needs CREATEROLE,
 * ADMIN OPTION on the granted roles (PostgreSQL ≥ 16) and pg_signal_backend (to end sessions).
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { scramSha256Verifier } from './scram-verifier.js';
import { effectiveTtlMs } from './ttl.js';
import {
  type MintAgent,
  MintError,
  type Minter,
  type MintProvider,
  type MintRequest,
  type MintResult,
  providerRef,
  type SecretsReader,
} from './types.js';

export const DEFAULT_ROLE_TTL = '15m';
export const DEFAULT_PG_PORT = 5432;
/** Every Warden role name starts with this. */
export const ROLE_PREFIX = 'w_';
/** The COMMENT ON ROLE marker the sweeper requires before dropping anything (the JSON's first key). */
export const MANAGED_BY = 'warden';

/** What the minter needs of a database connection (pg.Client satisfies it). */
export interface SqlClient {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}

export interface AdminConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

export type Connect = (cfg: AdminConnection) => Promise<SqlClient>;

/** A connector that also owns resources to release at shutdown. */
export type ClosableConnect = Connect & { close(): Promise<void> };

/**
 * The default connector: a small pg.Pool per admin login, so minting does not pay a TCP + SCRAM
 * login per role. Pools are keyed by (host, port, database, user); when the Secret's password
 * changes the old pool is ended and replaced. Idle connections close after 30 s and never keep
 * the process alive.
 */
export function pooledConnector(max = 4, idleTimeoutMillis = 30_000): ClosableConnect {
  const pools = new Map<string, { passwordDigest: string; pool: pg.Pool }>();
  const connect: Connect = async (cfg) => {
    const key = JSON.stringify([cfg.host, cfg.port, cfg.database, cfg.user]);
    const passwordDigest = createHash('sha256').update(cfg.password).digest('hex');
    let entry = pools.get(key);
    if (entry && entry.passwordDigest !== passwordDigest) {
      entry.pool.end().catch(() => {});
      entry = undefined;
    }
    if (!entry) {
      const pool = new pg.Pool({
        ...cfg,
        max,
        idleTimeoutMillis,
        allowExitOnIdle: true,
        connectionTimeoutMillis: 10_000,
        statement_timeout: 15_000,
      });
      // An idle client dropped by the server (restart, terminate) is simply discarded.
      pool.on('error', () => {});
      entry = { passwordDigest, pool };
      pools.set(key, entry);
    }
    const client = await entry.pool.connect();
    let broken = false;
    return {
      query: async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
        try {
          return await client.query<R>(text, values);
        } catch (err) {
          // No SQLSTATE means the connection itself failed: do not return it to the pool.
          if (!(err as { code?: string }).code) broken = true;
          throw err;
        }
      },
      end: async () => client.release(broken),
    };
  };
  return Object.assign(connect, {
    close: async () => {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((e) => e.pool.end().catch(() => {})));
    },
  });
}

/** A connector without pooling: one pg.Client per operation, bounded connect and statement times. */
export const connectPg: Connect = async (cfg) => {
  const client = new pg.Client({ ...cfg, connectionTimeoutMillis: 10_000, statement_timeout: 15_000 });
  // A connection error after connect() is reported by the next query; don't crash the process.
  client.on('error', () => {});
  await client.connect();
  return client;
};

const digest = (s: string, n = 8) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** Lowercase [a-z0-9_] slug of at most `max` characters. */
function slug(s: string, max: number): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, max) || 'agent'
  );
}

/** `w_<agent-slug>_<agent-digest>_`: the prefix every role of this agent carries. */
export function agentRolePrefix(agent: { namespace: string; name: string }): string {
  return `${ROLE_PREFIX}${slug(agent.name, 24)}_${digest(`${agent.namespace}/${agent.name}`)}_`;
}

/** Role name (≤ 63 bytes, PostgreSQL's NAMEDATALEN - 1): agent prefix + user/policy digest + random suffix. */
export function roleName(
  agent: { namespace: string; name: string },
  user: { issuer: string; sub: string } | null,
  policy: string | undefined,
  suffix: string,
): string {
  const who = user ? `${user.issuer}|${user.sub}` : '-';
  return `${agentRolePrefix(agent)}${digest(`${who}|${policy ?? ''}`)}_${suffix}`;
}

/** The DDL that creates a temporary role (pure: name, verifier and expiry are inputs). */
export function createRoleStatements(
  name: string,
  verifier: string,
  validUntil: Date,
  grantRoles: readonly string[],
  comment: Record<string, unknown>,
): string[] {
  const role = pg.escapeIdentifier(name);
  return [
    `CREATE ROLE ${role} WITH LOGIN INHERIT PASSWORD ${pg.escapeLiteral(verifier)} VALID UNTIL ${pg.escapeLiteral(validUntil.toISOString())}`,
    ...(grantRoles.length > 0
      ? [`GRANT ${grantRoles.map((r) => pg.escapeIdentifier(r)).join(', ')} TO ${role}`]
      : []),
    `COMMENT ON ROLE ${role} IS ${pg.escapeLiteral(JSON.stringify({ managedBy: MANAGED_BY, ...comment }))}`,
  ];
}

export type { SweepResult } from '../../core/ports/credentials.js';

import type { SweepResult } from '../../core/ports/credentials.js';

export interface PostgresMinterOptions {
  /** Admin connections; default: pooledConnector() (closed by close()). */
  readonly connect?: Connect;
  readonly now?: () => Date;
  /** Random role-name suffix (6 chars [a-z0-9]) and password sources. */
  readonly random?: { suffix(): string; password(): string };
}

const defaultRandom = {
  suffix: () => randomBytes(8).toString('hex').slice(0, 6),
  password: () => randomBytes(24).toString('base64url'),
};

function pgError(err: unknown): { code?: string; message: string } {
  const e = err as { code?: string; message?: string };
  return { code: e.code, message: e.message ?? String(err) };
}

/** SQLSTATEs of a server that exists but cannot take the connection now (starting up, shutting down, full). */
const NOT_NOW = new Set(['57P03', '57P01', '53300']);

/**
 * Pure: the MintError for a failed admin connection. A refused login (SQLSTATE 28P01/28000), a
 * missing database or any other SQLSTATE is the provider's configuration (UpstreamRejected).
 * No SQLSTATE (refused, reset, timed out) or a server starting up, shutting down or full means
 * the database is unreachable, and the message says so first: that is what the person reading a
 * denial or a RevocationFailed Event needs to know. Names the provider, the database and the
 * admin login, never the password.
 */
export function adminConnectError(
  where: string,
  target: { host: string; port: number; database: string; user: string },
  err: unknown,
): MintError {
  const e = pgError(err);
  const db = `${target.host}:${target.port}/${target.database}`;
  // A SQLSTATE is five digits/capitals; Node's socket errors carry codes like ECONNREFUSED.
  const sqlstate = e.code && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  const detail = `${e.message}${sqlstate ? ` (SQLSTATE ${sqlstate})` : ''}`;
  if (sqlstate && !NOT_NOW.has(sqlstate)) {
    return new MintError(
      'UpstreamRejected',
      `${where}: admin connection to ${db} as '${target.user}' failed: ${detail}`,
    );
  }
  return new MintError(
    'UpstreamUnreachable',
    `${where}: database ${db} is unreachable (admin connection as '${target.user}' failed: ${detail}); retry once it is back`,
  );
}

export class PostgresMinter implements Minter {
  readonly type = 'PostgreSQL' as const;
  private readonly connect: Connect;
  private readonly ownsConnector: ClosableConnect | undefined;
  private readonly now: () => Date;
  private readonly random: { suffix(): string; password(): string };

  constructor(opts: PostgresMinterOptions = {}) {
    this.ownsConnector = opts.connect ? undefined : pooledConnector();
    this.connect = opts.connect ?? (this.ownsConnector as ClosableConnect);
    this.now = opts.now ?? (() => new Date());
    this.random = opts.random ?? defaultRandom;
  }

  /** Ends the pooled admin connections (when the minter created its own connector). */
  async close(): Promise<void> {
    await this.ownsConnector?.close();
  }

  async mint(req: MintRequest): Promise<MintResult> {
    const where = providerRef(req.provider);
    const spec = req.provider.spec.postgresql;
    if (!spec)
      throw new MintError('InvalidProvider', `${where}: spec.postgresql is required for type PostgreSQL`);
    if (spec.grantRoles.length === 0) {
      throw new MintError(
        'InvalidProvider',
        `${where}: spec.postgresql.grantRoles must name at least one role`,
      );
    }
    const now = this.now();
    const ttlMs = effectiveTtlMs({
      policy: req.policy.ttl,
      provider: { value: spec.roleTTL ?? DEFAULT_ROLE_TTL, field: `${where} spec.postgresql.roleTTL` },
      agentMax: req.agent.maxCredentialTTL,
    });
    // The broker is told the expiry on our clock (it converts to its own); VALID UNTIL is set on
    // the database's clock, so a database whose clock is off does not cut the role short.
    const expiresAt = new Date(now.getTime() + ttlMs);
    const user = req.user?.present ? { issuer: req.user.issuer, sub: req.user.sub } : null;
    const name = roleName(req.agent, user, req.policy.policy, this.random.suffix());
    const password = this.random.password();
    const verifier = scramSha256Verifier(password);
    await this.withAdmin(req.provider, req.secrets, async (db) => {
      await db.query('BEGIN');
      try {
        const { rows } = await db.query<{ now: Date }>('SELECT now() AS now');
        const validUntil = new Date((rows[0]?.now ?? now).getTime() + ttlMs);
        const statements = createRoleStatements(name, verifier, validUntil, spec.grantRoles, {
          agent: `${req.agent.namespace}/${req.agent.name}`,
          user: user?.sub ?? null,
          policy: req.policy.policy ?? null,
          expiresAt: validUntil.toISOString(),
        });
        for (const sql of statements) await db.query(sql);
        await db.query('COMMIT');
      } catch (err) {
        await db.query('ROLLBACK').catch(() => {});
        const e = pgError(err);
        // pg error messages name roles, never passwords (the verifier is not echoed either).
        throw new MintError(
          'UpstreamRejected',
          `${where}: creating role ${name} failed: ${e.message}${e.code ? ` (SQLSTATE ${e.code})` : ''}`,
        );
      }
    });
    const { provider, secrets } = req;
    return {
      credential: {
        kind: 'postgresql',
        value: {
          host: spec.host,
          port: spec.port ?? DEFAULT_PG_PORT,
          database: spec.database,
          user: name,
          password,
        },
        expiresAt,
        id: name,
        standing: false,
      },
      revoke: () => this.revokeRole(provider, secrets, name),
    };
  }

  /** Ends a role now: no new logins, current sessions terminated. A role already gone is fine. */
  async revokeRole(provider: MintProvider, secrets: SecretsReader, name: string): Promise<void> {
    await this.withAdmin(provider, secrets, async (db) => {
      try {
        await db.query(`ALTER ROLE ${pg.escapeIdentifier(name)} NOLOGIN`);
      } catch (err) {
        if (pgError(err).code !== '42704') throw err; // undefined_object: already swept
      }
      await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [name]);
    });
  }

  /** Kill switch: revokes every Warden role of the agent in this provider's database. */
  async revokeAgent(
    provider: MintProvider,
    secrets: SecretsReader,
    agent: Pick<MintAgent, 'namespace' | 'name'>,
  ): Promise<string[]> {
    const roles = await this.withAdmin(provider, secrets, (db) =>
      this.managedRoles(db, agentRolePrefix(agent), false),
    );
    for (const role of roles) await this.revokeRole(provider, secrets, role);
    return roles;
  }

  /**
   * Drops Warden roles past VALID UNTIL, ending their sessions first. A revoked (NOLOGIN) role is
   * kept until then: it can do nothing, and while it exists revokeAgent finds and counts it again,
   * so a revocation re-run by a replica that took over mid-way (or after a crash) reports every
   * credential once — dropping it early made the new leader under-count what the kill revoked.
   */
  async sweepExpired(provider: MintProvider, secrets: SecretsReader): Promise<SweepResult> {
    const result: SweepResult = { dropped: [], failed: [] };
    await this.withAdmin(provider, secrets, async (db) => {
      for (const role of await this.managedRoles(db, ROLE_PREFIX, true)) {
        try {
          await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
          await db.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
          result.dropped.push(role);
        } catch (err) {
          // e.g. 2BP01: the role owns objects; leave it for a person to look at, keep sweeping.
          const e = pgError(err);
          result.failed.push({ role, message: `${e.message}${e.code ? ` (SQLSTATE ${e.code})` : ''}` });
        }
      }
    });
    return result;
  }

  /** Roles with the prefix and Warden's marker; `expiredOnly` limits to those past VALID UNTIL. */
  private async managedRoles(db: SqlClient, prefix: string, expiredOnly: boolean): Promise<string[]> {
    const { rows } = await db.query<{ rolname: string }>(
      `SELECT rolname FROM pg_roles
        WHERE starts_with(rolname, $1)
          AND shobj_description(oid, 'pg_authid') LIKE $2
          AND (NOT $3::boolean OR rolvaliduntil < now())
        ORDER BY rolname`,
      [prefix, `{"managedBy":"${MANAGED_BY}",%`, expiredOnly],
    );
    return rows.map((r) => r.rolname);
  }

  private async withAdmin<T>(
    provider: MintProvider,
    secrets: SecretsReader,
    fn: (db: SqlClient) => Promise<T>,
  ): Promise<T> {
    const where = providerRef(provider);
    const spec = provider.spec.postgresql;
    if (!spec)
      throw new MintError('InvalidProvider', `${where}: spec.postgresql is required for type PostgreSQL`);
    const ref = spec.adminSecretRef;
    const user = await secrets.read(provider.namespace, ref.name, ref.usernameKey ?? 'username');
    const password = await secrets.read(provider.namespace, ref.name, ref.passwordKey ?? 'password');
    let db: SqlClient;
    try {
      db = await this.connect({
        host: spec.host,
        port: spec.port ?? DEFAULT_PG_PORT,
        database: spec.database,
        user,
        password,
      });
    } catch (err) {
      throw adminConnectError(
        where,
        { host: spec.host, port: spec.port ?? DEFAULT_PG_PORT, database: spec.database, user },
        err,
      );
    }
    try {
      return await fn(db);
    } finally {
      await db.end().catch(() => {});
    }
  }
}
