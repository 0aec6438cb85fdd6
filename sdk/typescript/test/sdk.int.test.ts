/**
 * The TypeScript SDK against the real broker (composed exactly as the sidecar composes it, with
 * in-process authority edges), a real MCP server and a real HTTP API: the example agent's run,
 * typed denials from each refusal shape, and the user token forwarded from the request scope.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type McpUpstream,
  startHttpUpstream,
  startMcpUpstream,
  startTestBroker,
  type TestBroker,
} from '../../../broker/int-fixtures.js';
import { provider, snapshot } from '../../../broker/testing.js';
import { supportAgent } from '../examples/support-agent.js';
import { settingsFromEnv, Warden, WardenDeniedError, withUser } from '../src/index.js';

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

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const userToken = (groups: string[]) =>
  `${b64({ alg: 'RS256' })}.${b64({ iss: 'https://idp.test', aud: 'warden', sub: 'olivia', groups, exp: Math.floor(Date.now() / 1000) + 600 })}.c2ln`;

let mcp: McpUpstream;
let api: Awaited<ReturnType<typeof startHttpUpstream>>;
let tb: TestBroker;
let warden: Warden;

beforeAll(async () => {
  mcp = await startMcpUpstream();
  api = await startHttpUpstream();
  tb = await startTestBroker();
  tb.source.set(
    snapshot({
      policies,
      providers: [provider('jira', mcp.url), provider('tickets', api.url, 'HTTP')],
      trustedIssuers: [{ issuer: 'https://idp.test', audiences: ['warden'] }],
    }),
  );
  // What the webhook injects next to the sidecar (the combined listener serves both prefixes).
  warden = Warden.fromEnv({
    WARDEN_MCP_BASE: `${tb.url}/mcp`,
    WARDEN_HTTP_BASE: `${tb.url}/http`,
    WARDEN_USER_TOKEN_HEADER: 'x-warden-user-token',
  });
});
afterAll(async () => {
  await tb?.close();
  await mcp?.close();
  await api?.close();
});

describe('TypeScript SDK through the real broker', () => {
  it('runs the example agent: allowed call, typed tool denial, HTTP read, typed HTTP denial', async () => {
    const lines: string[] = [];
    await supportAgent(warden, userToken(['support']), (l) => lines.push(l));
    expect(lines).toEqual([
      'tools Warden lets me see: jira.get_issue, jira.search',
      'jira.get_issue → issue SUP-42: printer on fire',
      'jira.delete_issue → denied: reason=DeniedByPolicy policy=team-a/no-delete rule=0 condition=null transient=false',
      'GET tickets/api/v1/tickets/SUP-42 → 200 {"ticket":"SUP-42","method":"GET"}',
      expect.stringMatching(
        /^DELETE tickets\/api\/v1\/tickets\/SUP-42 → denied: reason=NoMatchingAllow \(.+\)$/,
      ),
    ]);
    // The credential went upstream; the agent never saw one.
    expect(mcp.seen.some((s) => String(s.headers.authorization).startsWith('Bearer wdn_'))).toBe(true);
    // The user and context of the scope reached the broker's audit.
    const allowed = tb.audit.events.find((e) => e.decision === 'Allow' && e.tool === 'jira.get_issue');
    expect(allowed?.user).toBe('olivia');
  });

  it('names the failed condition when the human lacks the group', async () => {
    const err = await withUser(userToken(['support']), async () => {
      const c = await warden.mcpClient('jira');
      try {
        return await c.callTool({ name: 'jira.admin_reset', arguments: {} }).then(
          () => null,
          (e: unknown) => e,
        );
      } finally {
        await c.close();
      }
    });
    expect(err).toBeInstanceOf(WardenDeniedError);
    expect(err).toMatchObject({
      reason: 'ConditionFailed',
      policy: 'team-a/support-readers',
      rule: 1,
      condition: 'ops-user',
    });
  });

  it('the same call is allowed for an ops user: the token comes from the scope', async () => {
    const res = await withUser(userToken(['ops']), async () => {
      const c = await warden.mcpClient('jira');
      try {
        return await c.callTool({ name: 'jira.admin_reset', arguments: {} });
      } finally {
        await c.close();
      }
    });
    expect(res.content).toEqual([{ type: 'text', text: 'reset' }]);
  });

  it('a refusal before any tool (suspended agent) rejects with a typed error', async () => {
    tb.source.set(
      snapshot({
        version: 'v2',
        suspended: true,
        suspendReason: 'incident 7',
        policies,
        providers: [provider('jira', mcp.url), provider('tickets', api.url, 'HTTP')],
      }),
    );
    try {
      const err = await warden.mcpClient('jira').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WardenDeniedError);
      expect((err as WardenDeniedError).reason).toBe('AgentSuspended');
      const httpErr = await warden.fetch('tickets', '/api/v1/tickets/SUP-1').then(
        () => null,
        (e: unknown) => e,
      );
      expect(httpErr).toMatchObject({ reason: 'AgentSuspended' });
    } finally {
      tb.source.set(
        snapshot({
          version: 'v3',
          policies,
          providers: [provider('jira', mcp.url), provider('tickets', api.url, 'HTTP')],
          trustedIssuers: [{ issuer: 'https://idp.test', audiences: ['warden'] }],
        }),
      );
    }
  });

  it('an upstream’s own error is returned, not turned into a denial', async () => {
    const res = await warden.fetch('tickets', '/api/v1/tickets/../../nothing-here').catch((e: unknown) => e);
    // The broker refuses dot segments itself (a Warden refusal, typed) …
    expect(res).toBeInstanceOf(WardenDeniedError);
    const settings = settingsFromEnv({
      WARDEN_MCP_BASE: `${tb.url}/mcp`,
      WARDEN_HTTP_BASE: `${tb.url}/http`,
    });
    // … while a 404 from the API itself comes back as a Response.
    tb.source.set(
      snapshot({
        version: 'v4',
        policies: [
          {
            name: 'all',
            spec: {
              effect: 'Allow',
              rules: [{ targets: ['tickets'], http: { methods: ['GET'], paths: ['/**'] } }],
            },
          },
        ],
        providers: [provider('tickets', api.url, 'HTTP')],
      }),
    );
    const r = await new Warden(settings).fetch('tickets', '/missing');
    expect(r.status).toBe(404);
  });
});
