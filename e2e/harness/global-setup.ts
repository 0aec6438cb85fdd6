/**
 * Vitest globalSetup for the integration project: boots ONE real control plane per
 * test run, installs the CRDs, and hands the kubeconfig path to test files through
 * `provide('kubeconfig')`. Each test file works in its own namespace.
 */
import type { TestProject } from 'vitest/node';
import { startControlPlane, useBuiltKubectl } from '../controlplane/controlplane.js';
import { installCrds } from './crds.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    apiServer: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => process.stderr.write(`[controlplane] ${line}\n`);
  const cp = await startControlPlane({ log });
  useBuiltKubectl(cp.binaries);
  try {
    await installCrds(cp.kubeconfigPath);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  project.provide('kubeconfig', cp.kubeconfigPath);
  project.provide('apiServer', cp.server);
  // Also export it so child processes started by tests (kubectl, the CLI) find it.
  process.env.KUBECONFIG = cp.kubeconfigPath;
  return async () => {
    await cp.stop();
  };
}
