/**
 * The HTTP reverse proxy against a real HTTP upstream on 127.0.0.1, driven with real HTTP clients
 * (fetch, and a raw socket where fetch would refuse to send the attack).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BrokerDenyReason, ROUTING_HEADERS } from './constants.js';
import { type Seen, startHttpUpstream, startTestBroker, type TestBroker } from './int-fixtures.js';
import { provider, RecordingIssuer, snapshot } from './testing.js';

let upstream: { url: string; seen: Seen[]; close(): Promise<void> };
let tb: TestBroker;

const policies = [
  {
    name: 'tickets',
    spec: {
      rules: [
        {
          targets: ['api'],
          http: {
            methods: ['GET'],
            paths: ['/api/v1/tickets/*', '/echo', '/gzip-echo', '/hang', '/public/**'],
          },
        },
        { targets: ['api'], http: { methods: ['POST'], paths: ['/api/v1/tickets'] } },
      ],
    },
  },
];

async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
  const r = await fetch(`${tb.url}/http/api${path}`, { method, headers });
  const text = await r.text();
  const received = [...[...r.headers].map(([k, v]) => `${k}: ${v}`), text];
  return { status: r.status, text, headers: r.headers, received };
}

/** Sends bytes the fetch API would refuse to send; returns the status line's code. */
async function raw(request: string): Promise<number> {
  return (await rawResponse(request)).status;
}

/** Sends raw bytes (the request must say `Connection: close`); returns the status and the body. */
function rawResponse(request: string): Promise<{ status: number; body: string }> {
  const u = new URL(tb.url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(request));
    let data = '';
    s.on('data', (d) => {
      data += d.toString();
    });
    s.on('error', reject);
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      const at = data.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : 0, body: at < 0 ? '' : data.slice(at + 4) });
    });
  });
}

/** A GET of an allowed path through the broker carrying one extra raw header line. */
function getWithHeader(path: string, header: string): Promise<{ status: number; body: string }> {
  return rawResponse(`GET /http/api${path} HTTP/1.1\r\nHost: x\r\n${header}\r\nConnection: close\r\n\r\n`);
}

function expectNoCredential(received: string[]): void {
  const all = received.join('\n');
  for (const secret of tb.issuer.secrets()) expect(all).not.toContain(secret);
}

beforeAll(async () => {
  upstream = await startHttpUpstream();
  // Issues X-Api-Key credentials, like an APIKey provider.
  tb = await startTestBroker({
    issuer: new RecordingIssuer(300_000, 'X-Api-Key'),
    upstreamHeadersTimeoutMs: 400,
  });
});
afterAll(async () => {
  await tb.close();
  await upstream.close();
});
beforeEach(() => {
  tb.source.set(snapshot({ policies, providers: [provider('api', upstream.url, 'HTTP', 'X-Api-Key')] }));
});

describe('HTTP proxy', () => {
  it('forwards an allowed request under the target base path with the credential injected', async () => {
    const r = await get('/api/v1/tickets/42?expand=all');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ ticket: '42', method: 'GET' });
    const seen = upstream.seen.at(-1)!;
    expect(seen.url).toBe('/base/api/v1/tickets/42?expand=all');
    expect(seen.headers['x-api-key']).toMatch(/^Bearer wdn_/);
    expect(r.headers.get('set-cookie')).toBeNull();
    expectNoCredential(r.received);
  });

  it('strips the credentials the agent sends', async () => {
    await get('/api/v1/tickets/1', {
      Authorization: 'Bearer agent',
      Cookie: 'a=b',
      'X-Api-Key': 'agent-key',
      'Proxy-Authorization': 'Basic x',
    });
    const h = upstream.seen.at(-1)!.headers;
    expect(h.authorization).toBeUndefined();
    expect(h.cookie).toBeUndefined();
    expect(h['proxy-authorization']).toBeUndefined();
    expect(h['x-api-key']).toMatch(/^Bearer wdn_/);
    const audited = tb.audit.events.at(-1)!;
    expect(audited.stripped).toEqual(['authorization', 'cookie', 'x-api-key', 'proxy-authorization']);
  });

  it('denies by method and path with structured reasons; the upstream sees nothing', async () => {
    const n = upstream.seen.length;
    const del = await get('/api/v1/tickets/1', {}, 'DELETE');
    expect(del.status).toBe(403);
    expect(JSON.parse(del.text)).toMatchObject({
      error: 'access_denied',
      decision: 'Deny',
      reason: 'NoMatchingAllow',
    });
    const admin = await get('/api/v1/admin');
    expect(admin.status).toBe(403);
    expect(upstream.seen.length).toBe(n);
  });

  it.each([
    ['/api/v1/tickets/../../admin', /dot segments/],
    ['/api/v1/tickets/%2e%2e/%2e%2e/admin', /dot segments/],
    ['/api/v1/tickets/a%2f..%2f..%2fadmin', /encoded slash/],
    ['/api/v1/tickets/a%5c..%5cadmin', /encoded slash or backslash/],
    ['/api/v1/tickets/%252e%252e', /double encoding/],
    ['/api/v1/tickets/x%00', /control character/],
    ['//evil.example/api', /"\/\/"/],
  ])('refuses the path %s before deciding', async (path, message) => {
    const n = upstream.seen.length;
    const r = await raw(`GET /http/api${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(r).toBe(400);
    expect(upstream.seen.length).toBe(n);
    const audited = tb.audit.events.at(-1)!;
    expect(audited).toMatchObject({ decision: 'Deny', reason: BrokerDenyReason.InvalidRequest });
    expect(audited.message).toMatch(message);
  });

  it('forwards an allowed GET without routing headers (the baseline the refusals below differ from)', async () => {
    const n = upstream.seen.length;
    const r = await getWithHeader('/api/v1/tickets/7', 'X-Custom: kept');
    expect(r.status).toBe(200);
    expect(upstream.seen.length).toBe(n + 1);
    expect(upstream.seen.at(-1)!.headers['x-custom']).toBe('kept');
  });

  // One test per header of the documented list (broker/constants.ts ROUTING_HEADERS).
  it.each(Object.keys(ROUTING_HEADERS))(
    'refuses a request carrying %s; the upstream never sees it',
    async (name) => {
      const n = upstream.seen.length;
      const value = name === 'forwarded' ? 'for=10.0.0.1;host=admin.internal' : 'DELETE';
      const r = await getWithHeader('/api/v1/tickets/7', `${name}: ${value}`);
      expect(r.status).toBe(400);
      const body = JSON.parse(r.body);
      expect(body).toMatchObject({
        error: 'access_denied',
        decision: 'Deny',
        reason: BrokerDenyReason.InvalidRequest,
      });
      expect(body.message).toContain(`header '${name}' is not allowed`);
      expect(upstream.seen.length).toBe(n);
      const audited = tb.audit.events.at(-1)!;
      expect(audited).toMatchObject({ decision: 'Deny', reason: BrokerDenyReason.InvalidRequest });
      expect(audited.message).toContain(name);
    },
  );

  it.each([
    ['X-HTTP-METHOD-OVERRIDE: DELETE', 'X-HTTP-METHOD-OVERRIDE'],
    ['X_HTTP_Method_Override: DELETE', 'X_HTTP_Method_Override'],
  ])('refuses a routing header spelled %s', async (line, name) => {
    const n = upstream.seen.length;
    const r = await getWithHeader('/api/v1/tickets/7', line);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toContain(`header '${name}' is not allowed`);
    expect(upstream.seen.length).toBe(n);
  });

  it.each([
    ['/api/v1/tickets/7?_method=DELETE', /query parameter '_method' is not allowed/],
    ['/api/v1/tickets/7?x=1;_METHOD=DELETE', /query parameter '_METHOD' is not allowed/],
    ['/api/v1/tickets/7?%5Fmethod=DELETE', /query parameter '%5Fmethod' is not allowed/],
    ['/api/v1/tickets/7?_HttpMethod=PATCH', /query parameter '_HttpMethod' is not allowed/],
  ])('refuses the method-override query %s; the upstream never sees it', async (path, message) => {
    const n = upstream.seen.length;
    const r = await getWithHeader(path, 'Accept: */*');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toMatch(message);
    expect(upstream.seen.length).toBe(n);
  });

  it.each([
    ['/public/..;/private', /contains ';' \(a path parameter\)/],
    ['/public/..;x=1/private', /contains ';'/],
    ['/public/x;jsessionid=1', /contains ';'/],
    ['/public/..%3B/private', /encoded ';' \(%3B\)/],
    ['/public/..%3b/private', /encoded ';' \(%3b\)/],
    ['/public/%EF%BC%8E%EF%BC%8E/private', /NFKC/],
    ['/public/%C0%AE%C0%AE/private', /not valid UTF-8/],
    ['/public/x%2e', /encoded '\.'/],
    ['/public/private.', /ends in '\.'/],
    ['/public/%70rivate', /needless percent-encoding/],
  ])('refuses %s inside an allowed /public/** prefix; the upstream never sees it', async (path, message) => {
    const n = upstream.seen.length;
    const r = await getWithHeader(path, 'Accept: */*');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toMatch(message);
    expect(upstream.seen.length).toBe(n);
  });

  it('still forwards an ordinary path under /public/**', async () => {
    const r = await getWithHeader('/public/docs/readme.txt', 'Accept: */*');
    expect(r.status).toBe(404); // the test upstream has no such page; what matters is that it was asked
    expect(upstream.seen.at(-1)!.url).toBe('/base/public/docs/readme.txt');
  });

  it('refuses CRLF header injection', async () => {
    const n = upstream.seen.length;
    // A CR inside a value is refused by the HTTP parser; a CRLF only ever yields one more header, which is stripped.
    expect(
      await raw(
        'GET /http/api/api/v1/tickets/1 HTTP/1.1\r\nHost: x\r\nX-A: a\rAuthorization: Bearer evil\r\nConnection: close\r\n\r\n',
      ),
    ).toBe(400);
    expect(upstream.seen.length).toBe(n);
    expect(
      await raw(
        'GET /http/api/api/v1/tickets/1 HTTP/1.1\r\nHost: x\r\nX-A: a\r\nAuthorization: Bearer evil\r\nConnection: close\r\n\r\n',
      ),
    ).toBe(200);
    expect(upstream.seen.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('scrubs an echoed credential from body and headers', async () => {
    const r = await get('/echo');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).headers['x-api-key']).toBe('[REDACTED]');
    expect(r.headers.get('x-echo-key')).toBe('[REDACTED]');
    expectNoCredential(r.received);
  });

  it('scrubs a gzip-encoded echo (decompressed before scrubbing)', async () => {
    const r = await get('/gzip-echo');
    expect(r.text).toBe('key=[REDACTED]');
    expect(r.headers.get('content-encoding')).toBeNull();
    expectNoCredential(r.received);
  });

  it('times out an upstream that hangs', async () => {
    const r = await get('/hang');
    expect(r.status).toBe(504);
    expect(JSON.parse(r.text)).toMatchObject({
      error: 'gateway_timeout',
      message: expect.stringMatching(/within 400 ms/),
    });
  });

  it('forwards a POST body and refuses one over the limit', async () => {
    const ok = await fetch(`${tb.url}/http/api/api/v1/tickets`, {
      method: 'POST',
      body: '{"title":"x"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(ok.status).toBe(200);
    expect(upstream.seen.at(-1)!.body).toBe('{"title":"x"}');
    const big = await fetch(`${tb.url}/http/api/api/v1/tickets`, {
      method: 'POST',
      body: 'x'.repeat(2 * 1024 * 1024),
    });
    expect(big.status).toBe(413);
  });

  it('answers a request cut by the kill switch with the suspension, not a gateway error', async () => {
    const slow = await startTestBroker({
      issuer: new RecordingIssuer(300_000, 'X-Api-Key'),
      upstreamHeadersTimeoutMs: 60_000,
    });
    try {
      const providers = [provider('api', upstream.url, 'HTTP', 'X-Api-Key')];
      slow.source.set(snapshot({ policies, providers }));
      const before = upstream.seen.length;
      const pending = fetch(`${slow.url}/http/api/hang`);
      await expect.poll(() => upstream.seen.length, { timeout: 10_000 }).toBe(before + 1);
      slow.source.set(snapshot({ policies, providers, suspended: true }));
      const r = await pending;
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ reason: BrokerDenyReason.AgentSuspended });
    } finally {
      await slow.close();
    }
  });

  it('denies a suspended agent and an unknown provider', async () => {
    tb.source.set(
      snapshot({
        policies,
        suspended: true,
        providers: [provider('api', upstream.url, 'HTTP', 'X-Api-Key')],
      }),
    );
    const r = await get('/api/v1/tickets/1');
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text).reason).toBe(BrokerDenyReason.AgentSuspended);
    const unknown = await fetch(`${tb.url}/http/nope/x`);
    expect(unknown.status).toBe(403);
  });
});
