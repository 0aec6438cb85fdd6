import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPostgresBinaries, type PostgresServer, startPostgres } from './postgres.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');

async function query<T extends pg.QueryResultRow>(connectionString: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** True when something accepts TCP connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
}

describe('postgres harness', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves authenticated queries on loopback with the superuser password', async () => {
    expect(server.host).toBe('127.0.0.1');
    const [row] = await query<{ v: string; me: string }>(
      server.connectionString,
      'SELECT version() AS v, current_user AS me',
    );
    expect(row?.v).toMatch(/^PostgreSQL /);
    expect(row?.me).toBe(server.superuser);
  });

  it('requires scram-sha-256 for every connection', async () => {
    const rules = await query<{ auth_method: string }>(
      server.connectionString,
      'SELECT auth_method FROM pg_hba_file_rules',
    );
    expect(rules.length).toBeGreaterThan(0);
    expect(new Set(rules.map((r) => r.auth_method))).toEqual(new Set(['scram-sha-256']));
  });

  it('rejects a wrong password', async () => {
    const client = new pg.Client({
      host: server.host,
      port: server.port,
      user: server.superuser,
      password: 'not-the-password',
      database: 'postgres',
    });
    await expect(client.connect()).rejects.toMatchObject({ code: '28P01' });
  });

  it('stop() shuts the server down, removes the temp dir and is idempotent', async () => {
    const other = await startPostgres();
    const [row] = await query<{ one: number }>(other.connectionString, 'SELECT 1 AS one');
    expect(row?.one).toBe(1);
    // A session left open must not keep the server alive (fast shutdown).
    const lingering = new pg.Client({ connectionString: other.connectionString });
    lingering.on('error', () => {});
    await lingering.connect();
    await other.stop();
    await other.stop();
    expect(await listening(other.port)).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
    await lingering.end().catch(() => {});
  });

  it('does not orphan the server when the process that started it is killed', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'warden-pg-orphan-'));
    try {
      const script = join(scratch, 'start.mts');
      writeFileSync(
        script,
        `import { startPostgres } from ${JSON.stringify(join(here, 'postgres.ts'))};
const s = await startPostgres();
process.stdout.write(JSON.stringify({ port: s.port, dir: s.dir }) + '\\n');
setInterval(() => {}, 1000);
`,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const started = await new Promise<{ port: number; dir: string }>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] as string));
        });
        child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
      });
      expect(await listening(started.port)).toBe(true);
      child.kill('SIGKILL');
      await eventually('the orphaned server stopping', async () => !(await listening(started.port)));
      await eventually('the temp dir being removed', async () => !existsSync(started.dir));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('serves TLS with a certificate from its own CA when asked', async () => {
    const tlsServer = await startPostgres({ tls: true });
    try {
      expect(tlsServer.caPem).toMatch(/BEGIN CERTIFICATE/);
      const client = new pg.Client({
        connectionString: tlsServer.connectionString,
        ssl: { ca: tlsServer.caPem, rejectUnauthorized: true },
      });
      await client.connect();
      const { rows } = await client.query<{ ssl: boolean }>(
        'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      await client.end();
      expect(rows[0]?.ssl).toBe(true);
    } finally {
      await tlsServer.stop();
    }
  });

  it('says how to install PostgreSQL when the binaries are missing', () => {
    expect(() => findPostgresBinaries('/nonexistent/postgresql')).toThrow(/apt-get install postgresql/);
  });
});
