/**
 * Installs Warden into a real-node cluster the way users do: `helm install` of
 * charts/warden with the project's helm (e2e/tools/build-helm.sh), the image pinned by
 * the digest the registry reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHART_DIR, ensureHelm, helmAt } from '../tools/helm.js';
import type { PushedImage } from './oci.js';

export const WARDEN_NAMESPACE = 'warden-system';
export const RELEASE = 'warden';

export interface InstallOptions {
  kubeconfigPath: string;
  image: PushedImage;
  /** Namespaces whose Secrets the controller may read (rbac.agentNamespaces). */
  agentNamespaces?: string[];
  /** Extra `--set` values. */
  set?: string[];
  log?: (line: string) => void;
}

/** The `helm install` arguments (printed by `make cluster` for people to run themselves). */
export function helmInstallArgs(o: Pick<InstallOptions, 'image' | 'agentNamespaces' | 'set'>): string[] {
  const repository = o.image.reference.slice(0, o.image.reference.lastIndexOf(':'));
  return [
    'install',
    RELEASE,
    CHART_DIR,
    '--namespace',
    WARDEN_NAMESPACE,
    '--create-namespace',
    '--set',
    `image.repository=${repository}`,
    '--set',
    `image.digest=${o.image.digest}`,
    ...(o.agentNamespaces ?? []).flatMap((ns, i) => ['--set', `rbac.agentNamespaces[${i}]=${ns}`]),
    ...(o.set ?? []).flatMap((s) => ['--set', s]),
  ];
}

/** `helm install --wait`: returns once the controller Deployment is available. */
export async function installWarden(o: InstallOptions): Promise<{ seconds: number; stdout: string }> {
  const helm = await ensureHelm();
  const home = mkdtempSync(join(tmpdir(), 'warden-helm-'));
  const started = Date.now();
  try {
    const args = [...helmInstallArgs(o), '--wait', '--timeout', '5m'];
    o.log?.(`helm ${args.join(' ')}`);
    const r = await helmAt(helm, home, args, o.kubeconfigPath, 6 * 60_000);
    if (r.code !== 0) throw new Error(`helm install failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    return { seconds: (Date.now() - started) / 1000, stdout: r.stdout };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * `helm upgrade --reuse-values --wait` with extra `--set` values, as docs/runbook.md does to
 * list the namespaces whose provider Secrets Warden may read.
 */
export async function upgradeWarden(o: {
  kubeconfigPath: string;
  set: string[];
  log?: (line: string) => void;
}): Promise<{ seconds: number; stdout: string }> {
  const helm = await ensureHelm();
  const home = mkdtempSync(join(tmpdir(), 'warden-helm-'));
  const started = Date.now();
  try {
    const args = [
      'upgrade',
      RELEASE,
      CHART_DIR,
      '--namespace',
      WARDEN_NAMESPACE,
      '--reuse-values',
      ...o.set.flatMap((s) => ['--set', s]),
      '--wait',
      '--timeout',
      '5m',
    ];
    o.log?.(`helm ${args.join(' ')}`);
    const r = await helmAt(helm, home, args, o.kubeconfigPath, 6 * 60_000);
    if (r.code !== 0) throw new Error(`helm upgrade failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    return { seconds: (Date.now() - started) / 1000, stdout: r.stdout };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
