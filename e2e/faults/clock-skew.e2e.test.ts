/**
 * Fault: clocks ±2 minutes apart (docs/faults.md, "Clock skew"). The authority (a real
 * `warden controller`, in-process) keeps the host clock; around it, with their own clocks 2 minutes
 * ahead or behind: an OpenID provider signing the human's ID token, the broker (as runBroker wires
 * it, with a skewed wall clock) and the MCP target verifying Warden JWTs (the demo's sample server
 * with a skewed clock and the documented 120 s leeway). Real tokens throughout: the IdP's ES256 ID
 * token, the API server's projected service-account token, Warden's session and minted JWTs.
 *
 * Each case asserts what the agent sees (the call works, as the human), that the broker never
 * presents a credential with less than its refresh margin left on the issuer's clock (so a target
 * within the budget never sees an expired one), and a negative control showing the skew is real
 * (the same token fails where no leeway is applied).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GRANT_TOKEN_EXCHANGE,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  USER_TOKEN_CLOCK_SKEW_SECONDS,
} from '../../authority/constants.js';
import { Sessions } from '../../authority/session.js';
import { CREDENTIAL_REFRESH_MARGIN_MS } from '../../broker/constants.js';
import { type RunningController, runController } from '../../controller/run.js';
import { HEADER_USER_TOKEN } from '../../core/constants.js';
import { KubeConfigApi } from '../../kube/kube.js';
import { type SampleMcpServer, startSampleMcpServer } from '../demo/sample-mcp-server.js';
import { freshNamespace, kubeConfig } from '../harness/index.js';
import { eventually } from '../killswitch-fixture.js';
import {
  type AgentPod,
  auditEntries,
  createAgentPod,
  createWardenObject,
  ISSUER,
  type SkewedIdp,
  startSkewedBroker,
  startSkewedIdp,
} from './faults-a-fixture.js';

const MIN = 60_000;
/** Credential lifetime: 10 s above the broker's 30 s refresh margin, so a refresh comes within seconds. */
const CREDENTIAL_TTL_S = 40;

interface Case {
  /** Clock offsets from the authority's, in ms. */
  idp: number;
  broker: number;
  upstream: number;
}

const CASES: Array<[string, Case]> = [
  [
    'IdP, broker and target 2 min ahead of the authority',
    { idp: 2 * MIN, broker: 2 * MIN, upstream: 2 * MIN },
  ],
  [
    'IdP, broker and target 2 min behind the authority',
    { idp: -2 * MIN, broker: -2 * MIN, upstream: -2 * MIN },
  ],
  ['IdP 2 min ahead of the broker and the authority', { idp: 2 * MIN, broker: 0, upstream: 0 }],
  ['IdP 2 min behind the broker and the authority', { idp: -2 * MIN, broker: 0, upstream: 0 }],
];

describe('fault: clock skew of ±2 minutes between components', () => {
  let ns: string;
  let api: KubeConfigApi;
  let idp: SkewedIdp;
  let controller: RunningController;
  let pod: AgentPod;
  let authorityUrl: string;
  const upstreams: SampleMcpServer[] = [];

  beforeAll(async () => {
    ns = await freshNamespace('faults-clock');
    const kc = kubeConfig();
    api = new KubeConfigApi(kc);
    idp = await startSkewedIdp();
    controller = await runController({
      kubeConfig: kc,
      log: pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' }),
      namespace: ns,
      watchNamespace: ns,
      identity: `clock-skew-${randomBytes(3).toString('hex')}`,
      leaderElection: false,
      host: '127.0.0.1',
      webhookPort: 0,
      authorityPort: 0,
      healthPort: 0,
      tlsNames: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
      webhookConfigurationName: null,
      issuer: ISSUER,
      authorityTls: false,
      broker: {
        image: 'warden:e2e',
        imagePullPolicy: 'IfNotPresent',
        resources: { requests: { cpu: '20m', memory: '48Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
      },
      tlsSecret: `warden-tls-${randomBytes(3).toString('hex')}`,
      version: '0.0.0-e2e',
      idpCaPem: idp.caPem,
      audit: { maxEntries: 50, maxBytes: 256 * 1024, maxAgeMs: 300 },
    });
    authorityUrl = `http://127.0.0.1:${controller.authorityPort}`;
    pod = await createAgentPod(kc, api, {
      namespace: ns,
      agent: 'bot',
      identitySpec: {
        userContext: { mode: 'Required', trustedIssuers: [{ issuer: idp.issuer, audiences: ['warden'] }] },
      },
    });
    // One MCP target per case, each on its own (skewed) clock, accepting only Warden JWTs.
    for (const [i, [, c]] of CASES.entries()) {
      const upstream = await startSampleMcpServer({
        issuer: ISSUER,
        jwksUrl: `${authorityUrl}/.well-known/jwks.json`,
        now: () => new Date(Date.now() + c.upstream),
        audience: 'jira',
      });
      upstreams.push(upstream);
      await createWardenObject(api, ns, 'CredentialProvider', `jira-${i}`, {
        target: { url: upstream.url, protocol: 'MCP' },
        type: 'JWT',
        jwt: { audience: 'jira', defaultTTL: '5m' },
      });
    }
    await createWardenObject(api, ns, 'AccessPolicy', 'support-reads-jira', {
      agentSelector: { names: ['bot'] },
      effect: 'Allow',
      rules: [
        {
          targets: CASES.map((_, i) => `jira-${i}`),
          tools: ['jira.get_issue'],
          when: [{ name: 'support-staff', expression: "user.present && 'support' in user.groups" }],
          credential: { ttl: `${CREDENTIAL_TTL_S}s` },
        },
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await controller?.stop();
    for (const u of upstreams) await u.close();
    await idp?.stop();
  });

  it.each(CASES.map(([name, c], i) => [name, c, i] as const))(
    '%s: the agent acts as the human, never on an expired credential',
    async (_name, c, i) => {
      const upstream = upstreams[i]!;
      // A token the IdP just issued (ahead), or one with 55 s left on the IdP's clock (behind):
      // on the authority's clock the first is from the future, the second expired 65 s ago.
      const userToken = await idp.token({
        sub: 'alice',
        groups: ['support'],
        offsetMs: c.idp,
        lifetimeSeconds: c.idp < 0 ? 55 : 600,
      });
      // Negative control: the skew is real — with the previous 60 s leeway this token is refused.
      expect(await idp.verifies(userToken, 60)).toBe(false);
      expect(await idp.verifies(userToken, USER_TOKEN_CLOCK_SKEW_SECONDS)).toBe(true);

      const broker = await startSkewedBroker({
        tokenFile: pod.tokenFile,
        authorityUrl,
        podName: pod.podName,
        wallOffsetMs: c.broker,
      });
      try {
        // Staleness is on the monotonic clock: a skewed wall clock does not make the snapshot stale.
        await eventually(
          'the skewed broker attested, with a fresh snapshot',
          async () => broker.client.attested && broker.broker.decider.current().ok,
          30_000,
        );

        let requestId = `skew-${i}-connect`;
        const client = new Client({ name: 'agent', version: '1.0.0' });
        const transport = new StreamableHTTPClientTransport(new URL(`${broker.url}/mcp/jira-${i}`), {
          fetch: (url, init) => {
            const headers = new Headers(init?.headers);
            headers.set('x-request-id', requestId);
            headers.set(HEADER_USER_TOKEN, userToken);
            return fetch(url, { ...init, headers });
          },
        });
        await client.connect(transport);

        // Call until the broker has moved on to a second credential; every call works, as alice,
        // and every credential the target received had at least the refresh margin left on the
        // authority's clock when the call returned (less 5 s for a loaded machine).
        const uses = new Map<string, number>();
        let n = 0;
        const callStarted = Date.now();
        const deadline = callStarted + 60_000;
        while (uses.size < 2) {
          if (Date.now() > deadline) throw new Error('the broker never refreshed its credential');
          requestId = `skew-${i}-call-${n++}`;
          const r = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-7' } });
          expect(r.isError ?? false).toBe(false);
          expect(JSON.stringify(r.content)).toContain('served to');
          expect(JSON.stringify(r.content)).toContain('alice');
          const jwt = (upstream.credentialsSeen.at(-1) ?? '').replace(/^Bearer /, '');
          const claims = decodeJwt(jwt) as { exp: number; jti: string };
          const left = claims.exp - Date.now() / 1000;
          expect(left, `credential ${claims.jti} presented with ${left.toFixed(1)} s left`).toBeGreaterThan(
            CREDENTIAL_REFRESH_MARGIN_MS / 1000 - 5,
          );
          uses.set(claims.jti, (uses.get(claims.jti) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 500));
        }
        // ...and the first credential was reused until then (a broker ahead no longer discards it).
        expect([...uses.values()][0]).toBeGreaterThan(1);

        if (c.upstream !== 0) {
          // Negative control: the target's own clock, without the documented leeway, refuses the
          // Warden JWT it accepted (behind: nbf in its future; ahead: already expired for it).
          const jwt = (upstream.credentialsSeen.at(-1) ?? '').replace(/^Bearer /, '');
          const jwks = createRemoteJWKSet(new URL(`${authorityUrl}/.well-known/jwks.json`));
          await expect(
            jwtVerify(jwt, jwks, { issuer: ISSUER, currentDate: new Date(Date.now() + c.upstream) }),
          ).rejects.toThrow(c.upstream > 0 ? /"exp" claim/ : /"nbf" claim/);
        }

        // Audit: the broker's decisions carry the broker's clock (documented: order by the chain's
        // sequence, not by time), and none was lost.
        const entries = await eventually('the decisions in the audit trail', async () => {
          const got = (await auditEntries(api, ns, 'bot')).filter(
            (e) => e.kind === 'Decision' && e.requestId?.startsWith(`skew-${i}-call-`),
          );
          return got.length >= n && got;
        });
        expect(new Set(entries.map((e) => e.requestId)).size).toBe(n);
        for (const e of entries) {
          expect(e).toMatchObject({ decision: 'Allow', user: expect.stringContaining('alice') });
          expect(Math.abs(Date.parse(e.time) - (callStarted + c.broker))).toBeLessThan(60_000);
        }
        await client.close().catch(() => {});
      } finally {
        await broker.close();
      }
    },
    90_000,
  );

  it.each([
    ['2 min ahead', 2 * MIN],
    ['2 min behind', -2 * MIN],
  ])(
    'a session from a replica %s: refused with a clear reason or accepted, and a fresh attestation always works',
    async (_name, offset) => {
      const sessions = new Sessions({
        issuer: ISSUER,
        keys: controller.authority.keys,
        now: () => new Date(Date.now() + offset),
      });
      const skewed = sessions.issue({
        namespace: ns,
        agent: 'bot',
        serviceAccount: 'bot',
        pod: pod.podName,
        podUID: pod.podUID,
      }).token;
      const userToken = await idp.token({
        sub: 'alice',
        groups: ['support'],
        offsetMs: 0,
        lifetimeSeconds: 600,
      });
      const credentials = (session: string) =>
        fetch(`${authorityUrl}/v1/credentials`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${session}`,
            'content-type': 'application/json',
            [HEADER_USER_TOKEN]: userToken,
          },
          body: JSON.stringify({ target: 'jira-0', kind: 'mcp', tool: 'jira.get_issue' }),
        });
      const r = await credentials(skewed);
      if (offset > 0) {
        // Beyond the 30 s session leeway: 401 naming the cause; the broker attests again on 401.
        expect(r.status).toBe(401);
        expect(((await r.json()) as { error_description: string }).error_description).toContain(
          'not valid yet',
        );
      } else {
        expect(r.status).toBe(200);
        await r.arrayBuffer();
      }
      // The broker's recovery path (AuthorityClient: on 401, exchange the service-account token
      // again and retry once): a session from this authority's own clock works.
      const exchange = await fetch(`${authorityUrl}/v1/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: GRANT_TOKEN_EXCHANGE,
          subject_token: readFileSync(pod.tokenFile, 'utf8'),
          subject_token_type: TOKEN_TYPE_JWT,
          requested_token_type: TOKEN_TYPE_ACCESS_TOKEN,
        }).toString(),
      });
      expect(exchange.status).toBe(200);
      const fresh = ((await exchange.json()) as { access_token: string }).access_token;
      const again = await credentials(fresh);
      expect(again.status).toBe(200);
      expect(((await again.json()) as { decision: string }).decision).toBe('Allow');
    },
  );
});
