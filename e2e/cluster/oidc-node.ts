/**
 * The project's OIDC provider fixture (authority/oidc-fixture.ts: oidc-provider over real
 * TLS, users signed in through the authorization-code flow with PKCE) run as a process
 * inside a real-node cluster's network namespace, listening on the node's uplink address.
 * That one address is reachable from both sides, so the issuer URL in every token is the
 * URL everyone fetches: the test process on the host reaches it over the uplink veth, and
 * the controller pods reach it as an address of their node (traffic to the node itself is
 * not forwarded, so the rule that keeps pods on the node does not apply) — like an
 * identity provider outside the cluster.
 *
 * Run by startNodeOidc() (oidc.ts); talks JSON lines on stdin/stdout:
 *   → {"ready":true,"issuer":…,"clientId":…,"caPem":…}          once listening
 *   ← {"id":1,"user":{"sub":"alice","groups":["support"]}}      sign a user in
 *   → {"id":1,"token":"<ID token>"} | {"id":1,"error":"…"}
 * It exits when stdin closes (its parent is gone) or on SIGTERM.
 *   oidc-node.ts <listen-ip>
 */
import { createInterface } from 'node:readline';
import { type OidcUser, startOidcProvider } from '../../authority/oidc-fixture.js';

const host = process.argv[2];
if (!host) {
  process.stderr.write('usage: oidc-node.ts <listen-ip>\n');
  process.exit(2);
}
const write = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const idp = await startOidcProvider({ host });
const stop = () => void idp.stop().finally(() => process.exit(0));
process.on('SIGTERM', stop);
write({ ready: true, issuer: idp.issuer, clientId: idp.clientId, caPem: idp.caPem });
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let req: { id?: unknown; user?: OidcUser };
  try {
    req = JSON.parse(line) as typeof req;
  } catch {
    write({ error: `not a JSON line: ${line.slice(0, 100)}` });
    return;
  }
  if (!req.user?.sub) {
    write({ id: req.id, error: 'expected {"id":…,"user":{"sub":…}}' });
    return;
  }
  idp.idToken(req.user).then(
    (token) => write({ id: req.id, token }),
    (err: unknown) => write({ id: req.id, error: String(err) }),
  );
});
lines.on('close', stop);
