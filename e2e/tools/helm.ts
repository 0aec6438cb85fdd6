/**
 * The helm CLI for tests: built from its Go module by build-helm.sh (cached in
 * ~/.cache/warden/tools), run as a child process, its rendered output parsed.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const HERE = dirname(fileURLToPath(import.meta.url));
export const BUILD_HELM_SCRIPT = join(HERE, 'build-helm.sh');
/** The chart, relative to this module. */
export const CHART_DIR = join(HERE, '..', '..', 'charts', 'warden');

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

function run(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onStderr?: (chunk: string) => void } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      {
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ stdout, stderr, code });
      },
    );
    if (opts.onStderr) child.stderr?.on('data', (chunk: Buffer | string) => opts.onStderr?.(String(chunk)));
    child.stdin?.end();
  });
}

/**
 * Returns the path of the helm binary, building it first when the cache lacks it
 * (a cold build takes minutes; progress lines go to stderr).
 */
export async function ensureHelm(timeoutMs = 20 * 60_000): Promise<string> {
  const result = await run(BUILD_HELM_SCRIPT, [], {
    timeoutMs,
    onStderr: (chunk) => process.stderr.write(chunk),
  });
  const path = /^HELM=(.+)$/m.exec(result.stdout)?.[1];
  if (result.code !== 0 || !path) {
    throw new Error(
      `e2e/tools/build-helm.sh failed (exit ${result.code}); run it by hand to see why:\n${result.stderr}`,
    );
  }
  return path;
}

/**
 * Runs helm with its own config/cache/data dirs under `home`, so tests never touch the
 * user's repositories or plugins; KUBECONFIG passes through for lookups.
 */
export function helmAt(
  helm: string,
  home: string,
  args: string[],
  kubeconfig?: string,
  timeoutMs?: number,
): Promise<RunResult> {
  return run(helm, args, {
    ...(timeoutMs ? { timeoutMs } : {}),
    env: {
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_DATA_HOME: join(home, 'data'),
      ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
    },
  });
}

/** A Kubernetes object as rendered, with the fields the tests look at. */
export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Splits `helm template` output into objects; fails on YAML errors or documents without kind/name. */
export function parseManifests(text: string): RenderedObject[] {
  const objects: RenderedObject[] = [];
  for (const [i, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0) throw new Error(`rendered document ${i}: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue; // empty document between separators
    const obj = value as Partial<RenderedObject>;
    if (
      typeof obj.kind !== 'string' ||
      typeof obj.apiVersion !== 'string' ||
      typeof obj.metadata?.name !== 'string'
    ) {
      throw new Error(
        `rendered document ${i} is not a Kubernetes object (kind/apiVersion/metadata.name missing)`,
      );
    }
    objects.push(obj as RenderedObject);
  }
  return objects;
}

/** "Kind/name" keys, for readable assertions. */
export function objectKeys(objects: RenderedObject[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}
