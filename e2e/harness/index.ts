/**
 * What integration and e2e tests use to reach the shared real control plane booted
 * by global-setup.ts. Each test file creates its own namespace with freshNamespace().
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { installCrds as installCrdsAt } from './crds.js';
import { type KubectlOptions, type KubectlResult, kubectlAt } from './kubectl.js';

export { type ControlPlane, startControlPlane } from '../controlplane/controlplane.js';
export type { KubectlResult } from './kubectl.js';

/** Path of the admin kubeconfig of the shared control plane. */
export function kubeconfigPath(): string {
  return inject('kubeconfig');
}

/** A KubeConfig for the shared control plane (admin: system:masters). */
export function kubeConfig(path = kubeconfigPath()): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/**
 * Creates a namespace with a unique name (`<prefix>-<random>`). Namespaces are never
 * deleted: without a controller-manager, deletion stays Terminating forever.
 */
export async function freshNamespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const base = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40);
  const name = `${base}-${randomBytes(3).toString('hex')}`;
  await kubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name, labels } } });
  return name;
}

/** Installs crds/*.yaml (already done once by the global setup; idempotent). */
export async function installCrds(path = kubeconfigPath()): Promise<void> {
  await installCrdsAt(path);
}

/** Runs kubectl against the shared control plane. */
export function kubectl(
  args: string[],
  opts: KubectlOptions & { kubeconfig?: string } = {},
): Promise<KubectlResult> {
  return kubectlAt(opts.kubeconfig ?? kubeconfigPath(), args, opts);
}
