/**
 * A real OCI registry for tests: the CNCF distribution registry (cmd/registry, built by
 * build-registry.sh and cached in ~/.cache/warden/tools) on a loopback port, storing in its own
 * temporary directory. Helpers push small images over the registry's HTTP API (distribution spec
 * v2: blob uploads, manifest PUT) and sign them the way `cosign sign --key` does: a simple-signing
 * JSON payload as the layer of an OCI manifest tagged `sha256-<hex>.sig`, its ECDSA P-256
 * signature (base64 DER) in the layer's `dev.cosignproject.cosign/signature` annotation.
 */
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import {
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIGNATURE_TYPE,
  COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
} from '../../core/constants.js';
import { connects, ensureTool, freePort } from './local-tool.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

/** The registry binary, built first when the cache lacks it. */
export function ensureRegistry(timeoutMs = 20 * 60_000): Promise<string> {
  return ensureTool('build-registry.sh', 'REGISTRY', timeoutMs);
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Registry {
  /** `127.0.0.1:<port>`: the host part of image references. */
  host: string;
  /** Its storage directory (another registry can serve the same content, see startRegistry). */
  storage: string;
  /** Pushes a blob (if absent) and returns its digest. */
  pushBlob(repo: string, content: Buffer): Promise<string>;
  /** PUTs a manifest under `reference` (a tag or its digest) and returns its digest. */
  putManifest(repo: string, reference: string, manifest: Buffer, mediaType?: string): Promise<string>;
  /** Pushes a one-layer image with random content, tags it, and returns its manifest digest. */
  pushImage(repo: string, tag: string): Promise<string>;
  /** Signs `repo@digest` as `cosign sign --key` does, adding to the signatures already there. */
  sign(
    repo: string,
    digest: string,
    key: KeyObject,
    claims?: { digest?: string; reference?: string },
  ): Promise<void>;
  /** Stops the registry (its port then refuses connections); `start` runs it again on the same port and data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/** The simple-signing payload cosign signs for `reference` (repository, no tag) at `digest`. */
export function simpleSigningPayload(reference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': reference },
        image: { 'docker-manifest-digest': digest },
        type: COSIGN_SIGNATURE_TYPE,
      },
      optional: null,
    }),
  );
}

/**
 * Starts a registry. `storage`: serve another registry's storage directory (read-only use: push
 * through the other one). `tokenAuth`: require bearer tokens from that token server (the
 * distribution token spec, as Docker Hub and ghcr.io do), so only a client that does the token
 * dance gets anything.
 */
export async function startRegistry(
  opts: { storage?: string; tokenAuth?: TokenServer } = {},
): Promise<Registry> {
  const bin = await ensureRegistry();
  const dir = mkdtempSync(join(tmpdir(), 'warden-registry-'));
  const storage = opts.storage ?? join(dir, 'data');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  const t = opts.tokenAuth;
  if (t) writeFileSync(join(dir, 'jwks.json'), JSON.stringify(t.jwks));
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
      ...(t
        ? [
            'auth:',
            '  token:',
            `    realm: ${t.realm}`,
            `    service: ${t.service}`,
            `    issuer: ${t.issuer}`,
            `    jwks: ${join(dir, 'jwks.json')}`,
            '    signingalgorithms: [ES256]',
          ]
        : []),
      '',
    ].join('\n'),
  );
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';
  const start = async () => {
    // Its OpenTelemetry tracing is off: the test sends nothing anywhere but this loopback port.
    const c = spawn(bin, ['serve', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '', OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'none' },
    });
    child = c;
    c.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + String(b)).slice(-8000);
    });
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const deadline = Date.now() + 60_000;
    while (!(await connects(port))) {
      if (c.exitCode !== null || Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`the distribution registry did not start listening on ${host}:\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start().catch((err) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const base = `http://${host}/v2`;

  const pushBlob = async (repo: string, content: Buffer): Promise<string> => {
    const digest = sha256(content);
    if ((await fetch(`${base}/${repo}/blobs/${digest}`, { method: 'HEAD' })).status === 200) return digest;
    const init = await fetch(`${base}/${repo}/blobs/uploads/`, { method: 'POST' });
    const location = init.headers.get('location');
    if (init.status !== 202 || !location) throw new Error(`blob upload to ${repo}: HTTP ${init.status}`);
    const url = new URL(location, `http://${host}`);
    url.searchParams.set('digest', digest);
    const put = await fetch(url, {
      method: 'PUT',
      body: content,
      headers: { 'content-type': 'application/octet-stream' },
    });
    if (put.status !== 201) throw new Error(`blob PUT to ${repo}: HTTP ${put.status} ${await put.text()}`);
    return digest;
  };

  const putManifest = async (repo: string, reference: string, manifest: Buffer, mediaType = OCI_MANIFEST) => {
    const res = await fetch(`${base}/${repo}/manifests/${reference}`, {
      method: 'PUT',
      body: manifest,
      headers: { 'content-type': mediaType },
    });
    if (res.status !== 201)
      throw new Error(`manifest PUT ${repo}:${reference}: HTTP ${res.status} ${await res.text()}`);
    return sha256(manifest);
  };

  const manifestOf = (config: { digest: string; size: number; mediaType: string }, layers: object[]) =>
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }));

  return {
    host,
    storage,
    pushBlob,
    putManifest,
    async pushImage(repo, tag) {
      const config = Buffer.from(
        JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
      );
      // Random content: every pushed image has its own digest.
      const layer = randomBytes(512);
      const configDigest = await pushBlob(repo, config);
      const layerDigest = await pushBlob(repo, layer);
      return putManifest(
        repo,
        tag,
        manifestOf({ mediaType: OCI_CONFIG, digest: configDigest, size: config.length }, [
          { mediaType: OCI_LAYER, digest: layerDigest, size: layer.length },
        ]),
      );
    },
    async sign(repo, digest, key, claims = {}) {
      const payload = simpleSigningPayload(claims.reference ?? `${host}/${repo}`, claims.digest ?? digest);
      const signature = sign('sha256', payload, key).toString('base64');
      const tag = `${digest.replace(':', '-')}.sig`;
      // cosign appends to the signatures already under the tag.
      const existing = await fetch(`${base}/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
      const layers: object[] =
        existing.status === 200 ? ((await existing.json()) as { layers: object[] }).layers : [];
      const empty = Buffer.from('{}');
      const emptyDigest = await pushBlob(repo, empty);
      layers.push({
        mediaType: COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
        digest: await pushBlob(repo, payload),
        size: payload.length,
        annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature },
      });
      await putManifest(
        repo,
        tag,
        manifestOf({ mediaType: EMPTY_CONFIG, digest: emptyDigest, size: 2 }, layers),
      );
    },
    stop,
    start,
    async close() {
      await stop();
      // The data directory too, unless it is another registry's storage (that one removes it).
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A token server of the distribution token spec that grants pull to anyone (anonymous, as for public images). */
export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** The public key the registry verifies tokens with. */
  jwks: { keys: object[] };
  /** The `scope` parameter of every token request so far. */
  scopes: string[];
  close(): Promise<void>;
}

export async function startTokenServer(): Promise<TokenServer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'warden-test-token-key';
  const service = 'warden-test-registry';
  const issuer = 'warden-test-token-issuer';
  const scopes: string[] = [];
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const scope = url.searchParams.get('scope') ?? '';
    scopes.push(scope);
    // repository:<name>:<actions>: anonymous callers get pull, never push.
    const m = /^repository:([^:]+):(.+)$/.exec(scope);
    const access =
      m && url.searchParams.get('service') === service && m[2]?.split(',').includes('pull')
        ? [{ type: 'repository', name: m[1], actions: ['pull'] }]
        : [];
    const now = Math.floor(Date.now() / 1000);
    void new SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(issuer)
      .setAudience(service)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 300)
      .setJti(randomBytes(8).toString('hex'))
      .sign(privateKey)
      .then((token) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token, expires_in: 300 }));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] },
    scopes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
