/**
 * A real PostgreSQL server for integration tests, started from Debian's package binaries
 * (/usr/lib/postgresql/<version>/bin) as a child process on a free loopback port.
 *
 * - initdb with scram-sha-256 for every connection and a random superuser password, so tests
 *   exercise the same authentication the broker performs against production databases;
 * - data and unix socket in a fresh temp dir; fsync off (throwaway data);
 * - postgres refuses to run as root, so as root it runs as `nobody` through setpriv (an exec,
 *   not a fork: the supervised pid *is* the postmaster);
 * - supervised by the control plane's watchdog: when this Node process dies, even by SIGKILL,
 *   the server is stopped and the temp dir removed — nothing is left listening;
 * - fault tests take the server down and bring it back on the same port and data dir
 *   (stopServer/startServer): sessions end, new connections are refused meanwhile, data stays.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { CredentialProviderSpec } from '../../core/api/generated/credential-provider.js';
import { createCertificateAuthority } from '../../core/x509.js';
import {
  freePort,
  type Supervised,
  stopSupervised,
  supervise,
  waitFor,
} from '../controlplane/controlplane.js';

const execFileP = promisify(execFile);

const PG_ROOT = '/usr/lib/postgresql';
/** Overrides the binary directory (e.g. a non-Debian install). */
export const ENV_PG_BINDIR = 'WARDEN_PG_BINDIR';

export interface PostgresServer {
  host: string;
  port: number;
  superuser: string;
  password: string;
  /** postgres://superuser:password@127.0.0.1:port/postgres */
  connectionString: string;
  /** Temp dir holding data, socket and server log; removed by stop(). */
  dir: string;
  /** PostgreSQL major version of the binaries used. */
  version: string;
  /** PEM of the CA that signed the server certificate (only with `tls: true`). */
  caPem?: string;
  /**
   * Fault tests: fast shutdown of the server only (sessions terminated, new connections refused);
   * the data dir and port are kept for startServer(). Idempotent.
   */
  stopServer(): Promise<void>;
  /** Starts the server again on the same port and data dir; resolves once it accepts a query. */
  startServer(): Promise<void>;
  /** Fast shutdown (active sessions are terminated), then removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Progress lines; defaults to silence. */
  log?: (line: string) => void;
  /** Keep the temp dir after stop (debugging). */
  keepDir?: boolean;
  /** Also accept TLS (ssl=on) with a certificate for 127.0.0.1 from a throwaway CA. */
  tls?: boolean;
}

/**
 * Finds initdb and postgres: $WARDEN_PG_BINDIR, else the highest version under
 * /usr/lib/postgresql. Throws a message that says how to install them.
 */
export function findPostgresBinaries(root = PG_ROOT): { binDir: string; version: string } {
  const override = process.env[ENV_PG_BINDIR];
  const candidates: { binDir: string; version: string }[] = [];
  if (override) candidates.push({ binDir: override, version: 'custom' });
  else if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    for (const v of versions) candidates.push({ binDir: join(root, v, 'bin'), version: v });
  }
  const found = candidates.find(
    (c) => existsSync(join(c.binDir, 'initdb')) && existsSync(join(c.binDir, 'postgres')),
  );
  if (!found) {
    const where = override ? `${ENV_PG_BINDIR}=${override}` : `${root}/<version>/bin`;
    throw new Error(
      `PostgreSQL server binaries (initdb, postgres) not found in ${where}; ` +
        'install them with `apt-get install postgresql` (.ci/run does this on CI)',
    );
  }
  return found;
}

/** As root, the command prefix that drops to `nobody` (postgres will not run as root). */
async function unprivileged(): Promise<{ prefix: string[]; uid: number; gid: number } | null> {
  if (process.getuid?.() !== 0) return null;
  const id = async (flag: string) => Number((await execFileP('id', [flag, 'nobody'])).stdout.trim());
  const [uid, gid] = [await id('-u'), await id('-g')];
  return { prefix: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'], uid, gid };
}

async function canQuery(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 1000 });
  // A refused connection also emits 'error' on the client; the rejected connect() reports it.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Starts a fresh PostgreSQL server; resolves once it accepts an authenticated query. */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const log = opts.log ?? (() => {});
  const { binDir, version } = findPostgresBinaries();
  const drop = await unprivileged();
  const dir = mkdtempSync(join(tmpdir(), 'warden-pg-'));
  const own = (path: string) => {
    if (drop) chownSync(path, drop.uid, drop.gid);
  };
  own(dir);
  const superuser = 'postgres';
  const password = randomBytes(18).toString('base64url');
  const host = '127.0.0.1';
  let server: Supervised | undefined;
  let stopped = false;
  const dataDir = join(dir, 'data');
  const logPath = join(dir, 'postgres.log');

  // SIGINT is postgres's "fast" shutdown; the watchdog's SIGTERM would be "smart" and wait for
  // every client to disconnect. The postmaster pid is the first line of postmaster.pid.
  const stopServer = async () => {
    const running = server;
    if (!running || running.child.exitCode !== null || running.child.signalCode !== null) return;
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGINT');
    } catch {
      // Not started far enough to write its pid file: the watchdog's stop handles it.
    }
    const exited = await Promise.race([
      running.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref()),
    ]);
    if (!exited) await stopSupervised(running);
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopServer();
    if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
  };
  /** Set once the port and arguments are known (below); startServer() re-runs it. */
  let launch: (() => Promise<void>) | undefined;

  try {
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    own(pwfile);
    const socketDir = join(dir, 'socket');
    mkdirSync(socketDir, { mode: 0o700 });
    own(socketDir);
    const run = (bin: string, args: string[]) => [...(drop?.prefix ?? []), join(binDir, bin), ...args];

    log(`initdb (PostgreSQL ${version}) in ${dataDir}`);
    const [initCmd, ...initArgs] = run('initdb', [
      `--pgdata=${dataDir}`,
      `--username=${superuser}`,
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ]);
    await execFileP(initCmd as string, initArgs, { env: { ...process.env, LC_ALL: 'C' } }).catch(
      (err: Error & { stderr?: string }) => {
        throw new Error(`initdb failed: ${err.stderr?.trim() || err.message}`);
      },
    );
    rmSync(pwfile);

    const tlsArgs: string[] = [];
    let caPem: string | undefined;
    if (opts.tls) {
      const ca = await createCertificateAuthority('warden test PostgreSQL CA', 24 * 3600_000);
      const leaf = await ca.issue({
        commonName: host,
        ipAddresses: [host],
        validityMs: 24 * 3600_000,
        usage: 'server',
      });
      caPem = ca.certPem;
      // postgres requires the key to be private to the server's user.
      for (const [file, content] of [
        ['server.crt', leaf.certPem],
        ['server.key', leaf.keyPem],
      ] as const) {
        writeFileSync(join(dir, file), content, { mode: 0o600 });
        own(join(dir, file));
      }
      tlsArgs.push(
        '-cssl=on',
        `-cssl_cert_file=${join(dir, 'server.crt')}`,
        `-cssl_key_file=${join(dir, 'server.key')}`,
      );
    }

    const port = await freePort();
    const connectionString = `postgres://${superuser}:${encodeURIComponent(password)}@${host}:${port}/postgres`;
    const postgresArgs = run('postgres', [
      `-D${dataDir}`,
      `-p${port}`,
      `-k${socketDir}`,
      `-clisten_addresses=${host}`,
      '-cfsync=off',
      '-csynchronous_commit=off',
      '-cfull_page_writes=off',
      '-cmax_connections=200',
      ...tlsArgs,
    ]);
    launch = async () => {
      log(`starting postgres on ${host}:${port}`);
      const proc = supervise('postgres', postgresArgs, logPath, opts.keepDir ? '' : dir);
      server = proc;
      await waitFor(
        'postgres',
        () => canQuery(connectionString),
        30_000,
        () => proc.child.exitCode !== null,
        logPath,
      );
    };
    await launch();
    log('postgres ready');
    return {
      host,
      port,
      superuser,
      password,
      connectionString,
      dir,
      version,
      stopServer,
      startServer: async () => {
        if (stopped) throw new Error('startServer(): this PostgreSQL server was stopped for good (stop())');
        if (server && server.child.exitCode === null && server.child.signalCode === null) return;
        await (launch as () => Promise<void>)();
      },
      stop,
      ...(caPem ? { caPem } : {}),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface WardenAdminOptions {
  /** The admin login CredentialProviders name in adminSecretRef (default warden_admin). */
  user?: string;
  password: string;
  /** Roles temporary logins are granted; created NOLOGIN here. */
  grantRoles: readonly string[];
}

/**
 * The least-privilege admin login Warden mints temporary roles with (docs/adr/0008): CREATEROLE,
 * ADMIN OPTION on each granted role (PostgreSQL 16+ requires it to grant them) and
 * pg_signal_backend (to end sessions on revocation). `db` must be a superuser session.
 */
export async function createWardenAdmin(db: pg.Client, o: WardenAdminOptions): Promise<void> {
  const admin = pg.escapeIdentifier(o.user ?? 'warden_admin');
  const roles = o.grantRoles.map((r) => pg.escapeIdentifier(r));
  for (const role of roles) await db.query(`CREATE ROLE ${role} NOLOGIN`);
  await db.query(`CREATE ROLE ${admin} LOGIN CREATEROLE PASSWORD ${pg.escapeLiteral(o.password)}`);
  if (roles.length > 0) await db.query(`GRANT ${roles.join(', ')} TO ${admin} WITH ADMIN OPTION`);
  await db.query(`GRANT pg_signal_backend TO ${admin}`);
}

/**
 * The spec of a PostgreSQL CredentialProvider for this server's `postgres` database, with the
 * admin login in Secret `adminSecret` (default pg-admin) as createWardenAdmin made it.
 */
export function postgresProviderSpec(
  server: { readonly port: number },
  o: { readonly grantRoles: readonly string[]; readonly adminSecret?: string; readonly roleTTL?: string },
): CredentialProviderSpec {
  return {
    type: 'PostgreSQL',
    target: { url: `postgres://127.0.0.1:${server.port}/postgres`, protocol: 'PostgreSQL' },
    postgresql: {
      host: '127.0.0.1',
      port: server.port,
      database: 'postgres',
      adminSecretRef: { name: o.adminSecret ?? 'pg-admin' },
      grantRoles: [...o.grantRoles],
      ...(o.roleTTL !== undefined ? { roleTTL: o.roleTTL } : {}),
    },
  };
}
