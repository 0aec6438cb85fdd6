/**
 * OCI images without a container engine: a layer is a directory packed by GNU tar
 * (sorted names, mtime 0, owner root, so the same files give the same digest), an image
 * is its layers plus a config (entrypoint, user, workdir, env), and it is pushed to a
 * registry over the distribution API (`/v2/`). No daemon, no base image, no pull.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** What the image runs and as whom: the runtime part of an OCI image config. */
export interface ImageConfig {
  entrypoint: string[];
  cmd?: string[];
  /** "uid:gid", numeric so the kubelet can check runAsNonRoot. */
  user: string;
  workingDir: string;
  env: Record<string, string>;
  labels?: Record<string, string>;
}

export interface Layer {
  /** Path of the gzipped tar (a temp file until the image is pushed). */
  path: string;
  /** sha256 of the compressed blob (the layer's name in the registry). */
  digest: string;
  /** sha256 of the uncompressed tar (rootfs.diff_ids in the config). */
  diffId: string;
  size: number;
}

export interface PushedImage {
  /** <registry>/<repository>:<tag> as given. */
  reference: string;
  /** sha256 digest of the manifest: what the kubelet reports in status.imageID. */
  digest: string;
  bytes: number;
}

/**
 * Packs `dir` (its contents become the image's /) into a reproducible gzipped tar.
 * Owner and group are 0 as with a Dockerfile COPY without --chown; modes are kept.
 */
export async function layerFromDir(dir: string, workDir: string): Promise<Layer> {
  const path = join(workDir, `layer-${Date.now()}-${Math.random().toString(16).slice(2)}.tar.gz`);
  const tar = spawn(
    'tar',
    [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '-C',
      dir,
      '-cf',
      '-',
      '.',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => tar.on('exit', resolve));
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  const gzip = createGzip({ level: 6 });
  tar.stdout.on('data', (d: Buffer) => diff.update(d));
  gzip.on('data', (d: Buffer) => blob.update(d));
  await pipeline(tar.stdout, gzip, createWriteStream(path));
  const code = await exited;
  if (code !== 0) throw new Error(`tar of ${dir} failed (exit ${code}): ${stderr.trim()}`);
  return {
    path,
    digest: `sha256:${blob.digest('hex')}`,
    diffId: `sha256:${diff.digest('hex')}`,
    size: statSync(path).size,
  };
}

/** The OCI image config document for `layers` (no history, created at epoch: reproducible). */
export function imageConfigDocument(config: ImageConfig, layers: Layer[]): Record<string, unknown> {
  return {
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: {
      User: config.user,
      WorkingDir: config.workingDir,
      Entrypoint: config.entrypoint,
      ...(config.cmd ? { Cmd: config.cmd } : {}),
      Env: Object.entries(config.env).map(([k, v]) => `${k}=${v}`),
      ...(config.labels ? { Labels: config.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  };
}

/** Splits "host:port/repo/name:tag" into the registry base URL, repository and tag. */
export function parseReference(reference: string): { registry: string; repository: string; tag: string } {
  const slash = reference.indexOf('/');
  const colon = reference.lastIndexOf(':');
  if (slash < 0 || colon < slash) {
    throw new Error(`image reference ${JSON.stringify(reference)}: expected <host:port>/<repository>:<tag>`);
  }
  return {
    registry: reference.slice(0, slash),
    repository: reference.slice(slash + 1, colon),
    tag: reference.slice(colon + 1),
  };
}

async function pushBlob(
  base: string,
  repository: string,
  digest: string,
  body: () => Buffer | NodeJS.ReadableStream,
  size: number,
): Promise<void> {
  const head = await fetch(`${base}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
  if (head.status === 200) return;
  const start = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location');
  if (start.status !== 202 || !location) {
    throw new Error(
      `registry ${base}: starting the upload of ${digest} answered ${start.status} ${await start.text()}`,
    );
  }
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  const content = body();
  const put = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: content as never,
    ...(Buffer.isBuffer(content) ? {} : { duplex: 'half' }),
  } as RequestInit);
  if (put.status !== 201) {
    throw new Error(`registry ${base}: upload of ${digest} answered ${put.status} ${await put.text()}`);
  }
}

/**
 * Pushes layers + config as `reference` (http://<host:port>, the harness's own registry)
 * and returns the manifest digest the registry — and then the kubelet — report.
 */
export async function pushImage(
  reference: string,
  pushHost: string,
  layers: Layer[],
  config: ImageConfig,
): Promise<PushedImage> {
  const { repository, tag } = parseReference(reference);
  const base = `http://${pushHost}`;
  for (const layer of layers) {
    await pushBlob(base, repository, layer.digest, () => createReadStream(layer.path), layer.size);
  }
  const configBytes = Buffer.from(JSON.stringify(imageConfigDocument(config, layers)));
  const configDigest = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
  await pushBlob(base, repository, configDigest, () => configBytes, configBytes.length);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
    }),
  );
  const put = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: manifest,
  });
  if (put.status !== 201) {
    throw new Error(
      `registry ${base}: manifest ${repository}:${tag} answered ${put.status} ${await put.text()}`,
    );
  }
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  return { reference, digest, bytes: layers.reduce((n, l) => n + l.size, 0) + configBytes.length };
}

/** Builds an image from root-filesystem directories (one layer each) and pushes it. */
export async function buildAndPush(
  reference: string,
  pushHost: string,
  layerDirs: string[],
  config: ImageConfig,
): Promise<PushedImage> {
  const work = mkdtempSync(join(tmpdir(), 'warden-oci-'));
  try {
    const layers: Layer[] = [];
    for (const dir of layerDirs) layers.push(await layerFromDir(dir, work));
    return await pushImage(reference, pushHost, layers, config);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
