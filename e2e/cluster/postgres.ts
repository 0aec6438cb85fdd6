/**
 * PostgreSQL for the real-node suite, served on the node itself (inside the node's network
 * namespace, on the node IP): pods reach it at 10.244.0.1:5432 like a database outside the
 * cluster, the test process at the node's uplink address. Debian's binaries, run as
 * `nobody`; stopped and removed with the cluster (its data lives in the cluster's work dir).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findPostgresBinaries } from '../harness/postgres.js';
import { type Cluster, NODE_IP } from './cluster.js';

const execFileP = promisify(execFile);
export const NODE_PG_PORT = 5432;

export interface NodePostgres {
  /** Address pods use (the node IP). */
  host: string;
  port: number;
  /** Superuser connection string for the test process (via the uplink). */
  connectionString: string;
}

export async function startNodePostgres(
  cluster: Pick<Cluster, 'dir' | 'uplinkIp' | 'startInNode'>,
): Promise<NodePostgres> {
  const { binDir } = findPostgresBinaries();
  const id = async (flag: string) => Number((await execFileP('id', [flag, 'nobody'])).stdout.trim());
  const [uid, gid] = [await id('-u'), await id('-g')];
  const dir = join(cluster.dir, 'postgres');
  // The work dir is mkdtemp's 0700: let `nobody` traverse it (not list it) to its own dir.
  chmodSync(cluster.dir, 0o711);
  const data = join(dir, 'data');
  const socket = join(dir, 'socket');
  mkdirSync(socket, { recursive: true });
  chownSync(dir, uid, gid);
  chownSync(socket, uid, gid);
  const password = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  chownSync(pwfile, uid, gid);
  const drop = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'];
  await execFileP(
    drop[0] as string,
    [
      ...drop.slice(1),
      join(binDir, 'initdb'),
      `--pgdata=${data}`,
      '--username=postgres',
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ],
    { env: { ...process.env, LC_ALL: 'C' } },
  ).catch((err: Error & { stderr?: string }) => {
    throw new Error(`initdb failed: ${err.stderr?.trim() || err.message}`);
  });
  rmSync(pwfile);
  // Pods connect from the pod network, the test process over the uplink: password auth for both.
  appendFileSync(join(data, 'pg_hba.conf'), 'host all all 0.0.0.0/0 scram-sha-256\n');
  cluster.startInNode('postgres', [
    ...drop,
    join(binDir, 'postgres'),
    `-D${data}`,
    `-p${NODE_PG_PORT}`,
    `-k${socket}`,
    `-clisten_addresses=${NODE_IP},${cluster.uplinkIp}`,
    '-cfsync=off',
    '-csynchronous_commit=off',
    '-cfull_page_writes=off',
  ]);
  const connectionString = `postgres://postgres:${encodeURIComponent(password)}@${cluster.uplinkIp}:${NODE_PG_PORT}/postgres`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL on the node did not accept connections: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  return { host: NODE_IP, port: NODE_PG_PORT, connectionString };
}
