/**
 * `make demo`: the Warden story on an embedded local control plane, narrated step by
 * step. It boots kube-apiserver + etcd, installs the CRDs, applies the samples and
 * shows what Warden reports, then cleans up and exits 0.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, useBuiltKubectl } from '../controlplane/controlplane.js';
import { installCrds } from '../harness/crds.js';
import { kubectlAt } from '../harness/kubectl.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const say = (line: string) => process.stdout.write(`\n==> ${line}\n`);
const show = (text: string) => process.stdout.write(text.replace(/^/gm, '    '));

const t0 = Date.now();
say('Starting a local Kubernetes control plane (kube-apiserver + etcd built from source)');
const cp = await startControlPlane({ log: (l) => process.stdout.write(`    ${l}\n`) });
useBuiltKubectl(cp.binaries);
let failed = false;
try {
  const k = (args: string[]) => kubectlAt(cp.kubeconfigPath, args);

  say("Installing Warden's custom resource definitions");
  await installCrds(cp.kubeconfigPath);
  show((await k(['get', 'crds', '-o', 'name'])).stdout);

  const samples = join(root, 'samples');
  if (existsSync(samples)) {
    say('Applying the samples: an agent identity, access policies and credential providers');
    await k(['create', 'namespace', 'demo']);
    const applied = await k(['apply', '-n', 'demo', '-f', samples]);
    show(applied.stdout + applied.stderr);
    if (applied.code !== 0) throw new Error('applying the samples failed');

    say('Everything Warden manages in the namespace (`kubectl get warden -n demo`)');
    show((await k(['get', 'warden', '-n', 'demo'])).stdout);
  }
} catch (err) {
  failed = true;
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
} finally {
  say('Stopping the control plane and removing its temp dir');
  await cp.stop();
}
say(`Done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
