/**
 * The bytes of a buffered MCP answer on their way to the agent (mcp-gateway.ts relayedBody): an
 * answer with nothing to filter or scrub is relayed byte for byte; one that is not valid UTF-8 is
 * decoded and encoded again (invalid sequences become U+FFFD), as every answer was before the relay
 * kept valid ones as they came; a credential in an answer is scrubbed. A raw upstream (node:http,
 * JSON responses) so the test controls every byte; the agent is a plain fetch.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDACTED } from './constants.js';
import { closeServer, listen, startTestBroker, type TestBroker } from './int-fixtures.js';
import { provider, RecordingIssuer, snapshot } from './testing.js';

/** The tools/call answers by the `q` argument, as raw bytes around the JSON-RPC id. */
const ANSWERS = {
  // Multi-byte characters (2, 3 and 4 bytes), JSON escapes and odd spacing: kept as sent.
  utf8: (id) =>
    Buffer.from(
      `{"jsonrpc":"2.0", "id":${id},"result":{"content":[{"type":"text","text":"café ✓ 🖨 \\u00e9\\n"}]}}`,
    ),
  // 0xff is never valid UTF-8.
  invalid: (id) =>
    Buffer.concat([
      Buffer.from(`{"jsonrpc":"2.0","id":${id},"result":{"content":[{"type":"text","text":"a`),
      Buffer.from([0xff]),
      Buffer.from('b"}]}}'),
    ]),
  secret: (id, token) =>
    Buffer.from(
      `{"jsonrpc":"2.0","id":${id},"result":{"content":[{"type":"text","text":"token ${token}"}]}}`,
    ),
} satisfies Record<string, (id: string, token: string) => Buffer>;

async function startRawMcp(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString() || '{}') as {
        id?: number;
        method?: string;
        params?: { arguments?: { q?: string } };
      };
      if (msg.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const body =
        msg.method === 'tools/call'
          ? (ANSWERS[(msg.params?.arguments?.q ?? 'utf8') as keyof typeof ANSWERS] ?? ANSWERS.utf8)(
              String(msg.id),
              token,
            )
          : Buffer.from(
              JSON.stringify({
                jsonrpc: '2.0',
                id: msg.id,
                result:
                  msg.method === 'tools/list'
                    ? { tools: [{ name: 'raw.echo', inputSchema: { type: 'object' } }] }
                    : {
                        protocolVersion: '2025-06-18',
                        capabilities: { tools: {} },
                        serverInfo: { name: 'raw', version: '1' },
                      },
              }),
            );
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  });
  return { url: `${await listen(server)}/mcp`, close: () => closeServer(server) };
}

let upstream: Awaited<ReturnType<typeof startRawMcp>>;
let tb: TestBroker;

beforeAll(async () => {
  upstream = await startRawMcp();
  tb = await startTestBroker({ issuer: new RecordingIssuer(300_000, 'Authorization') });
  tb.source.set(
    snapshot({
      policies: [{ name: 'raw', spec: { rules: [{ targets: ['raw'], tools: ['raw.echo'] }] } }],
      providers: [provider('raw', upstream.url)],
    }),
  );
});
afterAll(async () => {
  await tb.close();
  await upstream.close();
});

async function call(q: string): Promise<{ status: number; bytes: Buffer; length: string | null }> {
  const r = await fetch(`${tb.url}/mcp/raw`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'raw.echo', arguments: { q } },
    }),
  });
  return {
    status: r.status,
    bytes: Buffer.from(await r.arrayBuffer()),
    length: r.headers.get('content-length'),
  };
}

describe('a buffered MCP answer reaches the agent', () => {
  it('byte for byte when it is valid UTF-8 with nothing to scrub', async () => {
    const r = await call('utf8');
    expect(r.status).toBe(200);
    expect(r.bytes.equals(ANSWERS.utf8('7'))).toBe(true);
    expect(r.length).toBe(String(r.bytes.length));
  });

  it('decoded and encoded again when it is not valid UTF-8 (U+FFFD in place of the bad byte)', async () => {
    const r = await call('invalid');
    expect(r.status).toBe(200);
    const text = r.bytes.toString('utf8');
    expect(text).toContain('a\uFFFDb');
    expect(r.bytes.includes(Buffer.from([0xff]))).toBe(false);
    expect(r.length).toBe(String(r.bytes.length));
  });

  it('with the injected credential scrubbed', async () => {
    const r = await call('secret');
    expect(r.status).toBe(200);
    const token = tb.issuer.issued.at(-1)?.token ?? '';
    expect(token.length).toBeGreaterThan(8);
    const text = r.bytes.toString('utf8');
    expect(text).not.toContain(token);
    expect(text).toContain(REDACTED);
    expect(r.length).toBe(String(r.bytes.length));
  });
});
