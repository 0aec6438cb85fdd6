/**
 * The real broker stack for the Python SDK's tests (started by tests/stack.py with `npx tsx`): a
 * real MCP server, a real HTTP API and the broker composed exactly as the sidecar composes it,
 * fed a policy snapshot in-process. Prints one JSON line with the sidecar environment, then obeys
 * one command per stdin line, answering each with one JSON line:
 *   suspend | resume      flip the agent's kill switch
 *   audit                 the broker's audit events so far
 * Ends when stdin closes.
 */
import { createInterface } from 'node:readline';
import { startHttpUpstream, startMcpUpstream, startTestBroker } from '../../../broker/int-fixtures.js';
import { provider, snapshot } from '../../../broker/testing.js';

const policies = [
  {
    name: 'support-readers',
    spec: {
      effect: 'Allow',
      rules: [
        { targets: ['jira'], tools: ['jira.get_*', 'jira.search', 'jira.delete_*'] },
        {
          targets: ['jira'],
          tools: ['jira.admin_reset'],
          when: [{ name: 'ops-user', expression: "user.present && 'ops' in user.groups" }],
        },
        { targets: ['tickets'], http: { methods: ['GET'], paths: ['/api/v1/tickets/*'] } },
      ],
    },
  },
  { name: 'no-delete', spec: { effect: 'Deny', rules: [{ targets: ['*'], tools: ['*.delete_*'] }] } },
];

const mcp = await startMcpUpstream();
const api = await startHttpUpstream();
const tb = await startTestBroker();
let version = 0;
const publish = (suspended: boolean): void => {
  version += 1;
  tb.source.set(
    snapshot({
      version: `v${version}`,
      suspended,
      ...(suspended ? { suspendReason: 'incident 7' } : {}),
      policies,
      providers: [provider('jira', mcp.url), provider('tickets', api.url, 'HTTP')],
      trustedIssuers: [{ issuer: 'https://idp.test', audiences: ['warden'] }],
    }),
  );
};
publish(false);

const out = (v: unknown): void => {
  process.stdout.write(`${JSON.stringify(v)}\n`);
};
out({
  WARDEN_MCP_BASE: `${tb.url}/mcp`,
  WARDEN_HTTP_BASE: `${tb.url}/http`,
  WARDEN_USER_TOKEN_HEADER: 'x-warden-user-token',
});

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'suspend' || cmd === 'resume') {
    publish(cmd === 'suspend');
    out({ ok: true });
  } else if (cmd === 'audit') {
    out({
      events: tb.audit.events,
      upstreamAuthorization: mcp.seen.map((s) => s.headers.authorization ?? null),
    });
  } else {
    out({ ok: false, error: `unknown command ${JSON.stringify(cmd)}` });
  }
});
lines.on('close', () => {
  void (async () => {
    await tb.close();
    await mcp.close();
    await api.close();
    process.exit(0);
  })();
});
