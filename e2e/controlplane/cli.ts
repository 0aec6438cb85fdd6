/**
 * `make controlplane`: starts a local kube-apiserver + etcd in the foreground and
 * prints the KUBECONFIG line so a person can use kubectl against it. Ctrl-C stops
 * everything and removes the temp dir.
 */
import { dirname } from 'node:path';
import { startControlPlane } from './controlplane.js';
import { holdUntilSignal } from './foreground.js';

const log = (line: string) => process.stderr.write(`[controlplane] ${line}\n`);

const cp = await startControlPlane({ log });
process.stdout.write(
  [
    '',
    'A local Kubernetes control plane (kube-apiserver + etcd, no kubelet or controller-manager) is running.',
    'In another shell:',
    '',
    `  export KUBECONFIG=${cp.kubeconfigPath}`,
    `  export PATH=${dirname(cp.binaries.kubectl)}:$PATH   # optional: the kubectl built with it (same version)`,
    '  kubectl get --raw /openid/v1/jwks',
    '',
    'Press Ctrl-C to stop it (its state is discarded).',
    '',
  ].join('\n'),
);

holdUntilSignal(() => cp.stop(), log);
