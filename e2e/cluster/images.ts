/**
 * The images the real-node cluster runs, built from this repository without Docker and
 * pushed to the cluster's registry:
 *   warden       — the product image (scripts/image-recipe.ts: the Dockerfile's recipe)
 *   warden-e2e   — the e2e workloads: the agent (a real MCP + PostgreSQL client) and the
 *                  sample "Jira" MCP server, compiled from e2e/cluster/workloads
 * All share the base layer (Node + its shared libraries) and the dependencies layer.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { dependenciesLayer, WARDEN_IMAGE, writeAppLayer, writeNodeBase } from '../../scripts/image-recipe.js';
import type { Cluster } from './cluster.js';
import type { PushedImage } from './oci.js';

const execFileP = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Environment variable naming the Node binary to put in the images (default: see nodeBinary()). */
export const ENV_IMAGE_NODE = 'WARDEN_IMAGE_NODE';

/**
 * The Node binary the images carry: $WARDEN_IMAGE_NODE, else the project's pinned Node
 * (`make -s which-node`, when the Makefile has it), else the Node running this process.
 */
export async function nodeBinary(): Promise<string> {
  const override = process.env[ENV_IMAGE_NODE];
  if (override) {
    if (!existsSync(override)) throw new Error(`${ENV_IMAGE_NODE}=${override}: no such file`);
    return override;
  }
  try {
    const { stdout } = await execFileP('make', ['-s', '-C', repo, 'which-node']);
    const path = stdout.trim().split(/\s+/)[0];
    if (path && existsSync(path)) return path;
  } catch {
    // no which-node target (yet): the running Node
  }
  return process.execPath;
}

export interface ClusterImages {
  warden: PushedImage;
  workloads: PushedImage;
  /** Seconds spent building and pushing. */
  seconds: number;
  node: string;
}

/** Compiles the e2e workloads (and the sample MCP server they import) to JavaScript. */
async function compileWorkloads(outDir: string): Promise<void> {
  await execFileP(
    join(repo, 'node_modules', '.bin', 'tsc'),
    [
      // The files are named here; the project's tsconfig.json (noEmit, every folder) does not apply.
      '--ignoreConfig',
      '--outDir',
      outDir,
      '--rootDir',
      repo,
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--strict',
      '--skipLibCheck',
      // Emit only: `make typecheck` checks these files with the project's settings.
      '--noCheck',
      '--types',
      'node',
      join(repo, 'e2e', 'cluster', 'workloads', 'agent.ts'),
      join(repo, 'e2e', 'cluster', 'workloads', 'jira-mcp.ts'),
    ],
    { cwd: repo, maxBuffer: 16 * 1024 * 1024 },
  ).catch((err: Error & { stdout?: string }) => {
    throw new Error(`compiling e2e/cluster/workloads failed:\n${err.stdout ?? err.message}`);
  });
}

/** Builds and pushes the Warden image and the e2e workloads image to `cluster`'s registry. */
export async function buildClusterImages(
  cluster: Pick<Cluster, 'push'> & Partial<Pick<Cluster, 'dir'>>,
  log: (line: string) => void = () => {},
): Promise<ClusterImages> {
  const started = Date.now();
  const node = await nodeBinary();
  // Inside the cluster's work dir when there is one: if this process dies mid-build, the
  // cluster's watchdog removes the layers with everything else.
  const work = mkdtempSync(join(cluster.dir ?? tmpdir(), cluster.dir ? 'images-' : 'warden-images-'));
  try {
    const base = join(work, 'base');
    log(`base layer: ${node} and its shared libraries`);
    await writeNodeBase(base, node);
    const deps = await dependenciesLayer(repo, log);
    const app = join(work, 'app');
    await writeAppLayer(app, repo, log);
    const warden = await cluster.push('warden:dev', [base, deps, app], WARDEN_IMAGE.config);
    log(`warden image ${warden.digest} (${(warden.bytes / 1048576).toFixed(1)} MiB compressed)`);

    const wl = join(work, 'workloads');
    await compileWorkloads(join(wl, 'app'));
    writeFileSync(
      join(wl, 'app', 'package.json'),
      JSON.stringify({ name: 'warden-e2e-workloads', private: true, type: 'module' }),
    );
    mkdirSync(join(wl, 'app'), { recursive: true });
    const workloads = await cluster.push('warden-e2e:dev', [base, deps, wl], {
      ...WARDEN_IMAGE.config,
      entrypoint: [WARDEN_IMAGE.config.entrypoint[0] as string],
      cmd: ['/app/e2e/cluster/workloads/agent.js', 'serve'],
    });
    log(`e2e workloads image ${workloads.digest}`);
    return { warden, workloads, seconds: (Date.now() - started) / 1000, node };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
