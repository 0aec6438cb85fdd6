/** Installs Warden's CRDs (crds/*.yaml) and waits until the API server serves them. */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubectlAt } from './kubectl.js';

export const CRDS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'crds');

export async function installCrds(kubeconfigPath: string): Promise<void> {
  if (!existsSync(CRDS_DIR) || !readdirSync(CRDS_DIR).some((f) => f.endsWith('.yaml'))) return;
  const apply = await kubectlAt(kubeconfigPath, [
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    CRDS_DIR,
  ]);
  if (apply.code !== 0) throw new Error(`installing CRDs failed:\n${apply.stderr}`);
  const wait = await kubectlAt(kubeconfigPath, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    '-f',
    CRDS_DIR,
  ]);
  if (wait.code !== 0) throw new Error(`CRDs not established:\n${wait.stderr}`);
}
