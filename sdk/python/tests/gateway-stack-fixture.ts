/**
 * The real gateway chain for the Python SDK's gateway test (started by tests/stack.py): a local
 * API server, a `warden controller`, one `warden gateway` on TLS, a real MCP server and HTTP API,
 * and an agent pod without a sidecar (e2e/gateway-fixture.ts). Prints one JSON line with the
 * gateway environment an agent would get (URL, token file, CA file), then waits; ends when stdin
 * closes. Commands (one per line, answered with one JSON line): none besides end of input.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../../../e2e/controlplane/controlplane.js';
import { startGatewayStack } from '../../../e2e/gateway-fixture.js';
import { installCrds } from '../../../e2e/harness/crds.js';

const cp = await startControlPlane();
await installCrds(cp.kubeconfigPath);
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
const namespace = 'sdk-python-gateway';
await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
const stack = await startGatewayStack({ kubeConfig: kc, namespace, replicas: 1 });
const caFile = join(cp.kubeconfigPath, '..', 'gateway-ca.crt');
writeFileSync(caFile, stack.ca);
process.stdout.write(
  `${JSON.stringify({
    WARDEN_GATEWAY_URL: stack.urls[0],
    WARDEN_GATEWAY_TOKEN_FILE: stack.agentTokenFile,
    WARDEN_GATEWAY_CA_FILE: caFile,
    NAMESPACE: namespace,
  })}\n`,
);
process.stdin.resume();
process.stdin.on('end', () => {
  void (async () => {
    await stack.stop();
    await cp.stop();
    process.exit(0);
  })();
});
