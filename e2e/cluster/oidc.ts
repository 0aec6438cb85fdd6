/**
 * A real OIDC provider for a real-node cluster (oidc-node.ts run inside the node's network
 * namespace): tokens the agent forwards are verified by the authority in the controller
 * pods against this provider's discovery document and JWKS, over TLS with a CA the chart
 * is given (controller.idpCa). Stopped with the cluster (its pid is recorded for cleanup.sh).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { OidcUser } from '../../authority/oidc-fixture.js';
import type { Cluster } from './cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

export interface NodeOidc {
  /** https://<node uplink IP>:<port>: the iss of its tokens, fetched by the host and by pods. */
  issuer: string;
  /** The client the users sign in to (the audience of their ID tokens). */
  clientId: string;
  /** PEM of the CA that signed the provider's TLS certificate. */
  caPem: string;
  /** Signs `user` in (authorization code + PKCE) and returns the ID token. */
  idToken(user: OidcUser): Promise<string>;
  stop(): Promise<void>;
}

export async function startNodeOidc(cluster: Pick<Cluster, 'netns' | 'dir' | 'uplinkIp'>): Promise<NodeOidc> {
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${cluster.netns}`,
      '--',
      process.execPath,
      '--import',
      'tsx',
      join(here, 'oidc-node.ts'),
      cluster.uplinkIp,
    ],
    // tsx resolves from the repository; stderr goes to the cluster's logs through the parent.
    { cwd: repo, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  // nsenter execs node: this pid is the provider's; cleanup.sh stops it with the cluster.
  writeFileSync(join(cluster.dir, 'pids', 'oidc'), String(child.pid));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const pending = new Map<number, { resolve(t: string): void; reject(e: Error): void }>();
  let ready: (v: { issuer: string; clientId: string; caPem: string }) => void = () => {};
  let failed: (e: Error) => void = () => {};
  const started = new Promise<{ issuer: string; clientId: string; caPem: string }>((res, rej) => {
    ready = res;
    failed = rej;
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg: {
      ready?: boolean;
      issuer?: string;
      clientId?: string;
      caPem?: string;
      id?: number;
      token?: string;
      error?: string;
    };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (msg.ready && msg.issuer && msg.clientId && msg.caPem) {
      ready({ issuer: msg.issuer, clientId: msg.clientId, caPem: msg.caPem });
      return;
    }
    const p = msg.id === undefined ? undefined : pending.get(msg.id);
    if (!p || msg.id === undefined) return;
    pending.delete(msg.id);
    if (msg.token) p.resolve(msg.token);
    else p.reject(new Error(`OIDC sign-in failed: ${msg.error ?? line}`));
  });
  child.on('exit', (code, signal) => {
    const err = new Error(`the node's OIDC provider exited (${signal ?? code}): ${stderr}`);
    failed(err);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  });
  const timer = setTimeout(
    () => failed(new Error(`the node's OIDC provider did not start in 60 s: ${stderr}`)),
    60_000,
  );
  const info = await started.finally(() => clearTimeout(timer));
  let next = 1;
  return {
    ...info,
    idToken: (user) =>
      new Promise<string>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        child.stdin.write(`${JSON.stringify({ id, user })}\n`);
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
