/**
 * The Warden image without Docker: the same contents, entry point, user, working directory
 * and environment as the Dockerfile's runtime stage, assembled from this machine's files and
 * written as an OCI image (e2e/cluster/oci.ts). `image-recipe.test.ts` reads the Dockerfile
 * and compares it with WARDEN_IMAGE, so the two recipes cannot drift apart.
 *
 * The base is what the distroless nodejs image provides and Warden uses: the Node binary at
 * /nodejs/bin/node with the shared libraries it links, CA certificates, /etc/passwd and
 * /etc/group with the nonroot user 65532, and /tmp. No shell, no package manager.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { ImageConfig } from '../e2e/cluster/oci.js';

const execFileP = promisify(execFile);

/** Where the Dockerfile's runtime base (distroless nodejs) keeps its Node binary. */
export const NODE_PATH_IN_IMAGE = '/nodejs/bin/node';

/** A file or directory the runtime stage copies in: `from` relative to the build stages' /src. */
export interface ImageCopy {
  /** What the Dockerfile copies (path in its build/deps stage, relative to /src). */
  from: 'package.json' | 'node_modules' | 'dist';
  /** Absolute path in the image. */
  to: string;
}

export interface ImageRecipe {
  config: ImageConfig;
  copies: ImageCopy[];
}

/** The Dockerfile's runtime stage, as data. */
export const WARDEN_IMAGE: ImageRecipe = {
  config: {
    entrypoint: [NODE_PATH_IN_IMAGE, '/app/dist/cli/warden.js'],
    cmd: ['--help'],
    user: '65532:65532',
    workingDir: '/app',
    // NODE_ENV from the Dockerfile; PATH and SSL_CERT_FILE are what the distroless base sets.
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt',
      NODE_ENV: 'production',
    },
  },
  copies: [
    { from: 'package.json', to: '/app/package.json' },
    { from: 'node_modules', to: '/app/node_modules' },
    { from: 'dist', to: '/app/dist' },
    { from: 'package.json', to: '/app/dist/package.json' },
  ],
};

/** Environment variables the distroless base image defines (not written in the Dockerfile). */
export const BASE_IMAGE_ENV = ['PATH', 'SSL_CERT_FILE'];

/** Shared libraries `ldd` reports for a binary (absolute paths, the loader included). */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await execFileP('ldd', [binary]);
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

const PASSWD =
  'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n';

/**
 * Writes the base layer's root filesystem: `nodeBinary` at /nodejs/bin/node, its shared
 * libraries at the paths the loader looks them up, CA certificates, passwd/group, /tmp.
 */
export async function writeNodeBase(root: string, nodeBinary: string): Promise<void> {
  const put = (src: string, dest: string) => {
    mkdirSync(join(root, dirname(dest)), { recursive: true });
    copyFileSync(realpathSync(src), join(root, dest));
  };
  put(nodeBinary, NODE_PATH_IN_IMAGE);
  chmodSync(join(root, NODE_PATH_IN_IMAGE), 0o755);
  for (const lib of await sharedLibraries(nodeBinary)) put(lib, lib);
  put('/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), PASSWD);
  writeFileSync(join(root, 'etc/group'), GROUP);
  for (const d of ['tmp', 'home/nonroot']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  chmodSync(join(root, 'home/nonroot'), 0o700);
  await execFileP('chown', ['65532:65532', join(root, 'home/nonroot')]);
}

/**
 * The dependencies layer: production dependencies (`npm ci --omit=dev --ignore-scripts`, as
 * the Dockerfile's deps stage) at app/node_modules of the returned root, cached by the hash
 * of package.json + package-lock.json under ~/.cache/warden/image. Its own layer, so images
 * that share it (Warden, the e2e workloads) are pushed and pulled once.
 */
export async function dependenciesLayer(repo: string, log: (l: string) => void): Promise<string> {
  const lock = readFileSync(join(repo, 'package-lock.json'));
  const pkg = readFileSync(join(repo, 'package.json'));
  const key = createHash('sha256').update(pkg).update(lock).digest('hex').slice(0, 16);
  const root = join(
    process.env.WARDEN_CACHE_DIR ?? join(homedir(), '.cache', 'warden'),
    'image',
    `deps-${key}`,
  );
  const target = depsTarget();
  if (existsSync(join(root, target))) return root;
  const tmp = `${root}.tmp.${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const work = join(tmp, 'npm');
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'package.json'), pkg);
  writeFileSync(join(work, 'package-lock.json'), lock);
  log('npm ci --omit=dev --ignore-scripts (production dependencies, cached by the lockfile)');
  await execFileP(
    'npm',
    ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
    {
      cwd: work,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  mkdirSync(dirname(join(tmp, target)), { recursive: true });
  renameSync(join(work, 'node_modules'), join(tmp, target));
  rmSync(work, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
  renameSync(tmp, root);
  return root;
}

function depsTarget(): string {
  const copy = WARDEN_IMAGE.copies.find((c) => c.from === 'node_modules');
  if (!copy) throw new Error('WARDEN_IMAGE copies no node_modules');
  return copy.to.replace(/^\//, '');
}

/**
 * Writes the application layer under `root`: every copy of the recipe except node_modules
 * (its own layer), from a fresh `tsc -p tsconfig.build.json` into a staging dir (the
 * worktree's dist/ may be stale).
 */
export async function writeAppLayer(root: string, repo: string, log: (l: string) => void): Promise<void> {
  const staging = `${root}.stage`;
  log('tsc -p tsconfig.build.json');
  await execFileP(
    join(repo, 'node_modules', '.bin', 'tsc'),
    // --noCheck: emit only; `make typecheck` checks the same sources.
    ['-p', 'tsconfig.build.json', '--noCheck', '--outDir', join(staging, 'dist')],
    {
      cwd: repo,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const sources: Record<Exclude<ImageCopy['from'], 'node_modules'>, string> = {
    'package.json': join(repo, 'package.json'),
    dist: join(staging, 'dist'),
  };
  for (const copy of WARDEN_IMAGE.copies) {
    if (copy.from === 'node_modules') continue;
    const dest = join(root, copy.to);
    mkdirSync(dirname(dest), { recursive: true });
    cpSync(sources[copy.from], dest, { recursive: true, verbatimSymlinks: true });
  }
  rmSync(staging, { recursive: true, force: true });
}

/** The runtime (last) stage of a Dockerfile, as the fields the recipe must match. */
export interface RuntimeStage {
  from: string;
  workdir?: string;
  user?: string;
  env: Record<string, string>;
  entrypoint?: string[];
  cmd?: string[];
  /** COPY --from=<stage> /src/<from> <to>, `to` made absolute against WORKDIR. */
  copies: { stage: string; from: string; to: string }[];
}

/** Parses the last stage of a Dockerfile (continuations joined, comments dropped). */
export function dockerfileRuntimeStage(text: string): RuntimeStage {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const lastFrom = lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true);
  if (lastFrom < 0) throw new Error('Dockerfile: no FROM instruction');
  const stage: RuntimeStage = {
    from: (lines[lastFrom] as string).split(/\s+/)[1] ?? '',
    env: {},
    copies: [],
  };
  for (const line of lines.slice(lastFrom + 1)) {
    const [instr = '', ...rest] = line.split(/\s+/);
    const arg = line.slice(instr.length).trim();
    switch (instr.toUpperCase()) {
      case 'WORKDIR':
        stage.workdir = arg;
        break;
      case 'USER':
        stage.user = arg;
        break;
      case 'ENV':
        for (const m of arg.matchAll(/(\w+)=("[^"]*"|\S+)/g))
          stage.env[m[1] as string] = (m[2] as string).replace(/^"|"$/g, '');
        break;
      case 'ENTRYPOINT':
        stage.entrypoint = JSON.parse(arg) as string[];
        break;
      case 'CMD':
        stage.cmd = JSON.parse(arg) as string[];
        break;
      case 'COPY': {
        const fromFlag = rest.find((r) => r.startsWith('--from='));
        const paths = rest.filter((r) => !r.startsWith('--'));
        const to = paths[paths.length - 1] ?? '';
        const abs = to.startsWith('/') ? to : join(stage.workdir ?? '/', to);
        for (const src of paths.slice(0, -1)) {
          stage.copies.push({
            stage: fromFlag?.slice('--from='.length) ?? '',
            from: src.replace(/^\/src\//, ''),
            to: abs.replace(/\/$/, ''),
          });
        }
        break;
      }
      default:
        break;
    }
  }
  return stage;
}

/** What differs between the Dockerfile's runtime stage and the recipe (empty: nothing). */
export function recipeDifferences(stage: RuntimeStage, recipe: ImageRecipe = WARDEN_IMAGE): string[] {
  const diffs: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const c = recipe.config;
  if (!same(stage.entrypoint, c.entrypoint))
    diffs.push(`ENTRYPOINT ${JSON.stringify(stage.entrypoint)} vs recipe ${JSON.stringify(c.entrypoint)}`);
  if (!same(stage.cmd, c.cmd))
    diffs.push(`CMD ${JSON.stringify(stage.cmd)} vs recipe ${JSON.stringify(c.cmd)}`);
  if (stage.user !== c.user) diffs.push(`USER ${stage.user} vs recipe ${c.user}`);
  if (stage.workdir !== c.workingDir) diffs.push(`WORKDIR ${stage.workdir} vs recipe ${c.workingDir}`);
  for (const [k, v] of Object.entries(stage.env)) {
    if (c.env[k] !== v) diffs.push(`ENV ${k}=${v} vs recipe ${k}=${c.env[k] ?? '(unset)'}`);
  }
  for (const k of Object.keys(c.env)) {
    if (!(k in stage.env) && !BASE_IMAGE_ENV.includes(k))
      diffs.push(`recipe sets ENV ${k}, the Dockerfile does not`);
  }
  const copies = stage.copies.map((x) => `${x.from} -> ${x.to}`);
  const wanted = recipe.copies.map((x) => `${x.from} -> ${x.to}`);
  if (!same(copies, wanted)) diffs.push(`COPY ${JSON.stringify(copies)} vs recipe ${JSON.stringify(wanted)}`);
  if (!/distroless\/nodejs/.test(stage.from) && !/RUNTIME_IMAGE/.test(stage.from)) {
    diffs.push(`runtime base ${stage.from}: the recipe replicates distroless nodejs (${NODE_PATH_IN_IMAGE})`);
  }
  return diffs;
}
