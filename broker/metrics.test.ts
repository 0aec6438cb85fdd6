/**
 * What the broker records into its metrics registry (observability/metrics.ts): one decision per
 * audited allow or deny, and one duration sample per request by kind and decision. Driven over
 * real HTTP against an in-process upstream; the series are read back from the registry.
 */
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type WardenMetrics } from '../observability/metrics.js';
import { counterTotal, seriesValue } from '../observability/testing.js';
import { BrokerDenyReason } from './constants.js';
import { closeServer, listen, startHttpUpstream, startTestBroker, type TestBroker } from './int-fixtures.js';
import { createHealthServer } from './server.js';
import { provider, snapshot } from './testing.js';

/** Polls until the series reaches `want` (durations are recorded when the response closes, just after the client has it). */
async function until(read: () => Promise<number>, want: number): Promise<void> {
  await expect.poll(read, { timeout: 10_000, interval: 20 }).toBe(want);
}

const durationCount = (m: WardenMetrics, kind: string, decision: string) =>
  seriesValue(
    m,
    'warden_broker_request_duration_seconds',
    { kind, decision },
    'warden_broker_request_duration_seconds_count',
  );

let upstream: Awaited<ReturnType<typeof startHttpUpstream>>;
let tb: TestBroker;
let metrics: WardenMetrics;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  metrics = createMetrics();
  tb = await startTestBroker({ metrics });
  tb.source.set(
    snapshot({
      policies: [
        {
          name: 'tickets',
          spec: { rules: [{ targets: ['api'], http: { methods: ['GET'], paths: ['/api/v1/tickets/*'] } }] },
        },
        { name: 'jira', spec: { rules: [{ targets: ['jira'], tools: ['jira.get_*'] }] } },
      ],
      providers: [
        provider('api', upstream.url, 'HTTP'),
        // Never contacted: every MCP request below is refused before forwarding.
        provider('jira', 'http://127.0.0.1:9/mcp'),
      ],
    }),
  );
});
afterAll(async () => {
  await tb.close();
  await upstream.close();
});

describe('broker metrics', () => {
  it('an allowed HTTP request: decision allow/Allowed and one http/allow duration', async () => {
    const r = await fetch(`${tb.url}/http/api/api/v1/tickets/7`);
    expect(r.status).toBe(200);
    await r.text();
    expect(
      await seriesValue(metrics, 'warden_decisions_total', {
        component: 'broker',
        decision: 'allow',
        reason: 'Allowed',
      }),
    ).toBe(1);
    await until(() => durationCount(metrics, 'http', 'allow'), 1);
    expect(await durationCount(metrics, 'http', 'deny')).toBe(0);
  });

  it('a denied HTTP request: decision and denial with the policy reason, one http/deny duration', async () => {
    const r = await fetch(`${tb.url}/http/api/admin`, { method: 'DELETE' });
    expect(r.status).toBe(403);
    const reason = ((await r.json()) as { reason: string }).reason;
    expect(reason).toBe('NoMatchingAllow');
    expect(
      await seriesValue(metrics, 'warden_decisions_total', { component: 'broker', decision: 'deny', reason }),
    ).toBe(1);
    expect(await seriesValue(metrics, 'warden_denials_total', { reason })).toBe(1);
    await until(() => durationCount(metrics, 'http', 'deny'), 1);
  });

  it('a request refused before the policy (bad path) counts as an InvalidRequest denial', async () => {
    // An encoded slash: fetch sends it as is, the broker's path check refuses it.
    const r = await fetch(`${tb.url}/http/api/api/v1/tickets/a%2fb`);
    expect(r.status).toBe(400);
    await r.text();
    expect(
      await seriesValue(metrics, 'warden_denials_total', { reason: BrokerDenyReason.InvalidRequest }),
    ).toBe(1);
    await until(() => durationCount(metrics, 'http', 'deny'), 2);
  });

  it('a denied MCP tool call: decision deny with the reason, one mcp/deny duration', async () => {
    const r = await fetch(`${tb.url}/mcp/jira`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'jira.delete_issue', arguments: {} },
      }),
    });
    const body = (await r.json()) as { error: { data: { reason: string } } };
    expect(body.error.data.reason).toBe('NoMatchingAllow');
    expect(
      await seriesValue(metrics, 'warden_decisions_total', {
        component: 'broker',
        decision: 'deny',
        reason: 'NoMatchingAllow',
      }),
    ).toBe(2);
    await until(() => durationCount(metrics, 'mcp', 'deny'), 1);
    expect(await durationCount(metrics, 'mcp', 'allow')).toBe(0);
  });

  it('every audited decision is counted once: decisions total equals audit entries', async () => {
    expect(await counterTotal(metrics, 'warden_decisions_total')).toBe(tb.audit.events.length);
  });

  it('a broker without metrics serves requests as before', async () => {
    const plain = await startTestBroker();
    try {
      plain.source.set(tb.source.snapshot!);
      const r = await fetch(`${plain.url}/http/api/api/v1/tickets/8`);
      expect(r.status).toBe(200);
      await r.text();
    } finally {
      await plain.close();
    }
  });
});

describe('broker request durations', () => {
  it('are measured on the metrics clock and land in the bucket of the elapsed time', async () => {
    // A clock that moves 20 ms per reading: each request (start, stop) takes exactly 20 ms.
    let t = 0;
    const timed = createMetrics({ nowMs: () => (t += 20) });
    const b = await startTestBroker({ metrics: timed });
    try {
      b.source.set(tb.source.snapshot!);
      const r = await fetch(`${b.url}/http/api/api/v1/tickets/9`);
      expect(r.status).toBe(200);
      await r.text();
      const bucket = (le: string) =>
        seriesValue(
          timed,
          'warden_broker_request_duration_seconds',
          { kind: 'http', decision: 'allow', le },
          'warden_broker_request_duration_seconds_bucket',
        );
      await until(() => bucket('+Inf'), 1);
      expect(await bucket('0.01')).toBe(0);
      expect(await bucket('0.025')).toBe(1);
    } finally {
      await b.close();
    }
  });
});

describe('broker health server', () => {
  const ready = () => ({ ready: true, reason: 'ok' });
  let withMetrics: Server;
  let url: string;
  beforeAll(async () => {
    withMetrics = createHealthServer(ready, metrics);
    url = await listen(withMetrics);
  });
  afterAll(() => closeServer(withMetrics));

  it('serves /metrics in the Prometheus text format next to the probes', async () => {
    const r = await fetch(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    expect(text).toContain('warden_decisions_total{component="broker",decision="allow",reason="Allowed"}');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('answers 404 on /metrics when the process has no registry', async () => {
    const plain = createHealthServer(ready);
    const plainUrl = await listen(plain);
    try {
      expect((await fetch(`${plainUrl}/metrics`)).status).toBe(404);
      expect((await fetch(`${plainUrl}/healthz`)).status).toBe(200);
    } finally {
      await closeServer(plain);
    }
  });
});
