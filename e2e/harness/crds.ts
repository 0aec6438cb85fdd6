/**
 * Installs Warden's CRDs (crds/*.yaml) and the chart's kill-switch user policy, and waits until the
 * API server serves them. Client-side `kubectl apply`, so the objects carry the
 * last-applied-configuration annotation and a user's later `kubectl apply -f crds/` prints no
 * "missing the last-applied-configuration annotation" warning.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubectlAt } from './kubectl.js';

export const CRDS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'crds');
/** The chart's template; its only templating (name, labels) is substituted by killSwitchPolicy(). */
export const KILL_SWITCH_POLICY = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'charts/warden/templates/killswitch-user-policy.yaml',
);

/** The chart's kill-switch user policy as the release "warden" renders it, minus the labels. */
export function killSwitchPolicy(): string {
  return readFileSync(KILL_SWITCH_POLICY, 'utf8')
    .replaceAll('{{ include "warden.fullname" . }}', 'warden')
    .replace(/^\s*labels:\n\s*\{\{- include "warden.baseLabels" \. \| nindent 4 \}\}\n/gm, '');
}

export async function installCrds(kubeconfigPath: string): Promise<void> {
  if (!existsSync(CRDS_DIR) || !readdirSync(CRDS_DIR).some((f) => f.endsWith('.yaml'))) return;
  const apply = await kubectlAt(kubeconfigPath, ['apply', '-f', CRDS_DIR, '-f', '-'], {
    input: killSwitchPolicy(),
  });
  if (apply.code !== 0) throw new Error(`installing CRDs failed:\n${apply.stderr}`);
  const wait = await kubectlAt(kubeconfigPath, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    '-f',
    CRDS_DIR,
  ]);
  if (wait.code !== 0) throw new Error(`CRDs not established:\n${wait.stderr}`);
  // Established can come a moment before the API server serves the kinds (a create then answers
  // 503 "Resource kind … not found"): wait until every kind lists.
  const kinds =
    'agentidentities.warden.dev,accesspolicies.warden.dev,credentialproviders.warden.dev,auditrecords.warden.dev';
  for (let attempt = 0; ; attempt++) {
    const r = await kubectlAt(kubeconfigPath, ['get', kinds, '-A', '--request-timeout=10s']);
    if (r.code === 0) return;
    if (attempt >= 60) throw new Error(`CRDs established but not served:\n${r.stderr}`);
    await new Promise((done) => setTimeout(done, 500));
  }
}
