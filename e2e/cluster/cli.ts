/**
 * `make cluster`: starts a real single-node cluster in the foreground and prints the
 * KUBECONFIG line. Ctrl-C (or the death of this process) stops everything and removes
 * what it made.
 */
import { dirname } from 'node:path';
import { holdUntilSignal } from '../controlplane/foreground.js';
import { ensureHelm } from '../tools/helm.js';
import { startCluster } from './cluster.js';
import { buildClusterImages } from './images.js';
import { helmInstallArgs } from './install.js';

const log = (line: string) => process.stderr.write(`[cluster] ${line}\n`);

const cluster = await startCluster({ log });
let images: Awaited<ReturnType<typeof buildClusterImages>>;
let helm: string;
try {
  images = await buildClusterImages(cluster, log);
  log(`images built and pushed in ${images.seconds.toFixed(1)} s (Node ${images.node})`);
  helm = await ensureHelm();
} catch (err) {
  await cluster.stop();
  throw err;
}
const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
const mib = (b: number) => `${Math.round(b / 1048576)} MiB`;
const memory = cluster.memory();
const total = Object.values(memory).reduce((a, b) => a + b, 0);
process.stdout.write(
  [
    '',
    `A single-node Kubernetes cluster is running (node Ready after ${(cluster.readyMs / 1000).toFixed(1)} s, components ${mib(total)} RSS).`,
    `Images: push to ${cluster.registryPush} (plain http), reference them as 127.0.0.1:5000/<name>:<tag>.`,
    'In another shell:',
    '',
    `  export KUBECONFIG=${cluster.kubeconfigPath}`,
    `  export PATH=${dirname(cluster.binaries.kubectl)}:$PATH   # kubectl of the cluster's version`,
    '  kubectl get nodes -o wide',
    `  ${helm} ${helmInstallArgs({ image: images.warden }).map(quote).join(' ')} --wait`,
    '  kubectl get pods -n warden-system',
    '',
    'Press Ctrl-C to stop it (its state is discarded).',
    '',
  ].join('\n'),
);

holdUntilSignal(() => cluster.stop(), log);
