/**
 * /metrics scraped over HTTP after real traffic, from the two kinds of Warden process:
 *
 * - a broker (composeBroker + createHealthServer, the parts runBroker assembles) in front of a
 *   REAL MCP server, driven by a REAL MCP client: the scrape of its health port shows the allowed
 *   and the denied tool call as decisions and request durations;
 * - a `warden controller` (runController) against the real API server, with a real broker
 *   attesting to its authority (e2e/killswitch-fixture.ts): the scrape of its health port shows
 *   the token exchange, the authority's credential decisions, the credential issued, reconciles
 *   and webhook admissions.
 */
import { request as httpsRequest } from 'node:https';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeServer,
  listen,
  type McpUpstream,
  startMcpUpstream,
  startTestBroker,
  type TestBroker,
} from '../broker/int-fixtures.js';
import { createHealthServer } from '../broker/server.js';
import { provider, snapshot } from '../broker/testing.js';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { type Stack, startStack } from '../e2e/killswitch-fixture.js';
import { admissionReview, agentPod } from '../webhook/test-builders.js';
import { createMetrics } from './metrics.js';
import { scrapedValue } from './testing.js';

async function scrape(url: string): Promise<string> {
  const r = await fetch(url);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.text();
}

/** Scrapes until `check` holds (durations land when responses close; audit and stats are async). */
async function scrapeUntil(url: string, check: (text: string) => boolean): Promise<string> {
  let last = '';
  await expect
    .poll(
      async () => {
        last = await scrape(url);
        return check(last);
      },
      { timeout: 30_000, interval: 100 },
    )
    .toBe(true);
  return last;
}

describe('a broker health port serves /metrics after real MCP traffic', () => {
  let upstream: McpUpstream;
  let tb: TestBroker;
  let health: ReturnType<typeof createHealthServer>;
  let healthUrl: string;

  beforeAll(async () => {
    upstream = await startMcpUpstream();
    const metrics = createMetrics({ processMetrics: true, defaultLabels: { pod: 'support-bot-0' } });
    tb = await startTestBroker({ metrics, podName: 'support-bot-0' });
    tb.source.set(
      snapshot({
        policies: [{ name: 'jira-readers', spec: { rules: [{ targets: ['jira'], tools: ['jira.get_*'] }] } }],
        providers: [provider('jira', upstream.url)],
      }),
    );
    health = createHealthServer(() => ({ ready: true, reason: 'ok' }), metrics);
    healthUrl = await listen(health);
  });
  afterAll(async () => {
    await closeServer(health);
    await tb.close();
    await upstream.close();
  });

  it('counts the allowed and the denied tool call, with durations per kind and decision', async () => {
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${tb.url}/mcp/jira`)));
    const ok = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-1' } });
    expect(ok.isError).toBeFalsy();
    await expect(client.callTool({ name: 'jira.delete_issue', arguments: { key: 'SUP-1' } })).rejects.toThrow(
      /no AccessPolicy rule allows it/,
    );
    await client.close();
    expect(upstream.calls).toEqual(['jira.get_issue']);

    const text = await scrapeUntil(
      `${healthUrl}/metrics`,
      (t) =>
        (scrapedValue(t, 'warden_broker_request_duration_seconds_count', { kind: 'mcp', decision: 'deny' }) ??
          0) >= 1,
    );
    const broker = { component: 'broker', pod: 'support-bot-0' };
    // The tool call plus the session traffic (initialize, notifications, close) are allows.
    expect(
      scrapedValue(text, 'warden_decisions_total', { ...broker, decision: 'allow', reason: 'Allowed' }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      scrapedValue(text, 'warden_decisions_total', {
        ...broker,
        decision: 'deny',
        reason: 'NoMatchingAllow',
      }),
    ).toBe(1);
    expect(scrapedValue(text, 'warden_denials_total', { reason: 'NoMatchingAllow' })).toBe(1);
    expect(
      scrapedValue(text, 'warden_broker_request_duration_seconds_count', { kind: 'mcp', decision: 'allow' }),
    ).toBeGreaterThanOrEqual(2);
    expect(scrapedValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    // Label values stay enums: no tool name ever becomes one.
    expect(text).not.toMatch(/jira\.(get_issue|delete_issue)/);
  });
});

describe('the controller health port serves /metrics after real traffic', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ kubeConfig: kubeConfig(), namespace: await freshNamespace('metrics') });
    await stack.waitReady();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** One AdmissionReview to the webhook over HTTPS, trusting its own CA bundle. */
  function admit(review: unknown): Promise<number> {
    const body = JSON.stringify(review);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: stack.controller.webhookPort,
          path: '/mutate',
          method: 'POST',
          ca: stack.controller.webhook.material().caBundlePem,
          servername: 'localhost',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('shows the token exchange, the credential decisions, issuance, reconciles and admissions', async () => {
    expect((await stack.call('GET')).status).toBe(200);
    expect((await stack.call('POST')).status).toBe(403);
    const ns = stack.namespace;
    const known = agentPod({ name: 'bot-1', agent: stack.agent, sa: stack.agent });
    known.metadata!.namespace = ns;
    expect(await admit(admissionReview(known, { namespace: ns }))).toBe(200);
    const unknown = agentPod({ name: 'ghost-1', agent: 'ghost', sa: 'ghost' });
    unknown.metadata!.namespace = ns;
    expect(await admit(admissionReview(unknown, { namespace: ns }))).toBe(200);

    const url = `http://127.0.0.1:${stack.controller.healthPort}/metrics`;
    const text = await scrapeUntil(
      url,
      (t) =>
        (scrapedValue(t, 'warden_webhook_admission_duration_seconds_count', { outcome: 'rejected' }) ?? 0) >=
        1,
    );
    // The broker attested once (its session refresh may add `refreshed` later).
    expect(scrapedValue(text, 'warden_token_exchanges_total', { result: 'issued' })).toBeGreaterThanOrEqual(
      1,
    );
    expect(scrapedValue(text, 'warden_credentials_issued_total', { type: 'Session' })).toBeGreaterThanOrEqual(
      1,
    );
    // The allowed GET reached the authority's central decision and got a minted JWT.
    expect(
      scrapedValue(text, 'warden_decisions_total', {
        component: 'authority',
        decision: 'allow',
        reason: 'Allowed',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(scrapedValue(text, 'warden_credentials_issued_total', { type: 'JWT' })).toBeGreaterThanOrEqual(1);
    // The denied POST never left the broker: no authority denial for it.
    expect(
      scrapedValue(text, 'warden_decisions_total', { component: 'authority', decision: 'deny' }),
    ).toBeUndefined();
    // Admissions: the known agent's pod injected, the unknown one rejected with its reason.
    expect(
      scrapedValue(text, 'warden_decisions_total', {
        component: 'webhook',
        decision: 'allow',
        reason: 'Injected',
      }),
    ).toBe(1);
    expect(
      scrapedValue(text, 'warden_decisions_total', {
        component: 'webhook',
        decision: 'deny',
        reason: 'AgentIdentityNotFound',
      }),
    ).toBe(1);
    expect(
      scrapedValue(text, 'warden_webhook_admission_duration_seconds_count', { outcome: 'injected' }),
    ).toBe(1);
    // The operator reconciled the stack's objects.
    expect(
      scrapedValue(text, 'warden_reconcile_duration_seconds_count', { controller: 'agentidentity' }),
    ).toBeGreaterThanOrEqual(1);
    expect(scrapedValue(text, 'warden_workqueue_depth', { controller: 'agentidentity' })).toBeDefined();
    expect(scrapedValue(text, 'warden_reconcile_errors_total', { controller: 'revocation' })).toBeDefined();
    expect(scrapedValue(text, 'nodejs_eventloop_lag_seconds')).toBeDefined();
  });
});
