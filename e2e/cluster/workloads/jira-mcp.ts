/**
 * The sample "Jira" MCP server (e2e/demo/sample-mcp-server.ts) as a pod's main process:
 * it accepts only Warden-minted JWTs, verified against the authority's JWKS in-cluster
 * (the authority's CA comes from NODE_EXTRA_CA_CERTS), and logs one JSON line per
 * request with the caller it verified — never the token.
 *   env ISSUER, JWKS_URL, PORT (default 8080), AUDIENCE (the provider's spec.jwt.audience, default jira-mcp)
 */
import { startSampleMcpServer } from '../../demo/sample-mcp-server.js';

const issuer = process.env.ISSUER;
const jwksUrl = process.env.JWKS_URL;
if (!issuer || !jwksUrl) {
  process.stderr.write('jira-mcp: set ISSUER and JWKS_URL (the Warden authority issuer and its JWKS URL)\n');
  process.exit(2);
}
const server = await startSampleMcpServer({
  issuer,
  jwksUrl,
  audience: process.env.AUDIENCE ?? 'jira-mcp',
  listen: { host: '0.0.0.0', port: Number(process.env.PORT ?? 8080) },
});
process.stdout.write(`${JSON.stringify({ listening: server.url })}\n`);
let reported = 0;
setInterval(() => {
  for (; reported < server.calls.length; reported++) {
    process.stdout.write(`${JSON.stringify({ tool: server.calls[reported] })}\n`);
  }
}, 200);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
