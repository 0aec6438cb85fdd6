/**
 * `make controlplane`: starts a local kube-apiserver + etcd in the foreground and
 * prints the KUBECONFIG line so a person can use kubectl against it. Ctrl-C stops
 * everything and removes the temp dir.
 */
import { dirname } from 'node:path';
import { startControlPlane } from './controlplane.js';

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

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  await cp.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// Keep the event loop alive until a signal arrives.
setInterval(() => {}, 1 << 30);
