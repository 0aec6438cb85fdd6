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
  // Established comes before the API server serves writes of the kinds: a create answers 503
  // "Resource kind … not found" until admission (the kill-switch user policy above) has the
  // kind's schema, even while lists already work. Wait until a server-side dry-run create of
  // each kind gets past that (a validation error is fine: the kind is served; nothing is stored).
  const probes = ['AgentIdentity', 'AccessPolicy', 'CredentialProvider', 'AuditRecord']
    .map(
      (kind) =>
        `apiVersion: warden.dev/v1alpha1\nkind: ${kind}\nmetadata:\n  name: served-probe\n  namespace: default\n`,
    )
    .join('---\n');
  for (let attempt = 0; ; attempt++) {
    const r = await kubectlAt(kubeconfigPath, ['create', '--dry-run=server', '-o', 'name', '-f', '-'], {
      input: probes,
    });
    if (!/ServiceUnavailable|could not find the requested resource|no matches for kind/.test(r.stderr))
      return;
    if (attempt >= 120) throw new Error(`CRDs established but not served for writes:\n${r.stderr}`);
    await new Promise((done) => setTimeout(done, 500));
  }
}
