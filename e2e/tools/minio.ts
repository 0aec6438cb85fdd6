/**
 * A real MinIO server for tests: S3 with SigV4 verification and an OpenID STS
 * (AssumeRoleWithWebIdentity) configured with Warden's issuer. Built from its Go module by
 * build-minio.sh (cached in ~/.cache/warden/tools), run on a loopback port with its data in its own
 * temporary directory. At start-up MinIO fetches the discovery document named by `configUrl` and
 * the JWKS it points to, and on every AssumeRoleWithWebIdentity it verifies the token's signature
 * (kid → key), `exp` and that `aud` (or `azp`) is its client ID.
 *
 * MinIO is AGPL-3.0: a test harness binary only, never shipped with or linked into Warden (ADR 0017).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalTarget, signAwsRequest } from '../../broker/sigv4.js';
import { connects, ensureTool, freePort } from './local-tool.js';

/** The MinIO binary, built first when the cache lacks it (a cold build takes minutes). */
export function ensureMinio(timeoutMs = 30 * 60_000): Promise<string> {
  return ensureTool('build-minio.sh', 'MINIO', timeoutMs);
}

/**
 * The role ARN MinIO gives an OpenID provider with a role policy: `arn:minio:iam:<region>::role/`
 * and the unpadded base64url SHA-1 of the client ID (internal/config/identity/openid). The test
 * checks it against the ARN MinIO prints at start-up.
 */
export function minioRoleArn(clientId: string, region: string): string {
  const id = createHash('sha1').update(clientId).digest('base64url');
  return `arn:minio:iam:${region}::role/${id}`;
}

export interface MinioOptions {
  /** Warden's discovery document (loopback): <issuer>/.well-known/openid-configuration. */
  readonly configUrl: string;
  /** The OpenID client ID: the `aud` MinIO requires (CredentialProvider spec.aws.audience). */
  readonly clientId: string;
  /** Canned policies every web identity session gets (default: readwrite). */
  readonly rolePolicy?: string;
  readonly region?: string;
}

export interface Minio {
  /** http://127.0.0.1:<port>: S3 and STS. */
  readonly url: string;
  readonly region: string;
  /** The role ARN of the OpenID provider (CredentialProvider spec.aws.roleArn). */
  readonly roleArn: string;
  /** MinIO's own output so far (its start-up banner names the role ARN). */
  output(): string;
  /** A request signed with the root credentials (bucket set-up, reading what the agent wrote). */
  admin(method: string, path: string, body?: Buffer): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

export async function startMinio(o: MinioOptions): Promise<Minio> {
  const bin = await ensureMinio();
  const dir = mkdtempSync(join(tmpdir(), 'warden-minio-'));
  const port = await freePort();
  const region = o.region ?? 'us-east-1';
  const root = { user: `root${randomBytes(6).toString('hex')}`, password: randomBytes(18).toString('hex') };
  const child: ChildProcess = spawn(bin, ['server', join(dir, 'data'), '--address', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      MINIO_ROOT_USER: root.user,
      MINIO_ROOT_PASSWORD: root.password,
      MINIO_SITE_REGION: region,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
      MINIO_IDENTITY_OPENID_CONFIG_URL: o.configUrl,
      MINIO_IDENTITY_OPENID_CLIENT_ID: o.clientId,
      MINIO_IDENTITY_OPENID_ROLE_POLICY: o.rolePolicy ?? 'readwrite',
    },
  });
  let out = '';
  const keep = (c: Buffer) => {
    out = (out + String(c)).slice(-64_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`MinIO did not become ready on ${url}:\n${out}`);
    }
    if (await connects(port)) {
      const ready = await fetch(`${url}/minio/health/ready`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const admin = async (method: string, path: string, body?: Buffer) => {
    const target = canonicalTarget('/', path, '');
    if (!target.ok) throw new Error(target.message);
    const u = new URL(url);
    const headers = await signAwsRequest({
      keys: {
        accessKeyId: root.user,
        secretAccessKey: root.password,
        sessionToken: '',
        region,
        service: 's3',
      },
      method,
      url: u,
      target,
      headers: [],
      body,
      now: new Date(),
    });
    const r = await fetch(`${url}${target.requestTarget}`, {
      method,
      headers: Object.fromEntries(headers.filter(([n]) => n !== 'host' && n !== 'content-length')),
      ...(body ? { body } : {}),
    });
    return { status: r.status, body: await r.text() };
  };
  return {
    url,
    region,
    roleArn: minioRoleArn(o.clientId, region),
    output: () => out,
    admin,
    stop,
  };
}
