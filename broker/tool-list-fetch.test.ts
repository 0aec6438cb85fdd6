/**
 * fetchToolList against a small real HTTP server on loopback answering tools/list the ways MCP
 * servers do (JSON, SSE with other messages first, pages) and the ways they break.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchToolList, MAX_TOOL_LIST_PAGES, ToolListError } from './tool-list-fetch.js';

type Handler = (
  msg: { id: string; params: { cursor?: string } },
  res: ServerResponse,
  req: IncomingMessage,
) => void;
let handler: Handler = () => {};
let base = '';
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => handler(JSON.parse(Buffer.concat(chunks).toString()), res, req));
});
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const json = (res: ServerResponse, body: unknown, status = 200) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const fetchIt = () =>
  fetchToolList({
    url: new URL(base),
    headers: () => [
      ['content-type', 'application/json'],
      ['mcp-session-id', 'sess-1'],
    ],
    headersTimeoutMs: 5_000,
    idleTimeoutMs: 5_000,
  });

describe('fetchToolList', () => {
  it('reads a JSON answer, sending the given headers', async () => {
    let session: unknown;
    handler = (m, res, req) => {
      session = req.headers['mcp-session-id'];
      json(res, { jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'a' }, { name: 'b' }, { nope: 1 }] } });
    };
    expect(await fetchIt()).toEqual(['a', 'b']);
    expect(session).toBe('sess-1');
  });

  it('follows nextCursor through every page', async () => {
    handler = (m, res) => {
      const page = Number(m.params.cursor ?? 0);
      json(res, {
        jsonrpc: '2.0',
        id: m.id,
        result: { tools: [{ name: `t${page}` }], ...(page < 2 ? { nextCursor: String(page + 1) } : {}) },
      });
    };
    expect(await fetchIt()).toEqual(['t0', 't1', 't2']);
  });

  it('reads an SSE answer, skipping other messages on the stream', async () => {
    handler = (m, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n`);
      res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 'other', result: {} })}\n\n`);
      res.end(
        `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 's' }] } })}\n\n`,
      );
    };
    expect(await fetchIt()).toEqual(['s']);
  });

  it.each<[string, Handler, RegExp]>([
    ['an HTTP error', (_m, res) => json(res, { error: 'x' }, 500), /answered tools\/list with HTTP 500/],
    [
      'a JSON-RPC error',
      (m, res) =>
        json(res, { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } }),
      /error -32601: Method not found/,
    ],
    [
      'no tools array',
      (m, res) => json(res, { jsonrpc: '2.0', id: m.id, result: {} }),
      /without a tools array/,
    ],
    [
      'an answer to another id',
      (_m, res) => json(res, { jsonrpc: '2.0', id: 'x', result: { tools: [] } }),
      /no answer/,
    ],
    ['not JSON', (_m, res) => res.end('<html>'), /no answer/],
    [
      'pages without end',
      (m, res) => json(res, { jsonrpc: '2.0', id: m.id, result: { tools: [], nextCursor: 'again' } }),
      new RegExp(`more than ${MAX_TOOL_LIST_PAGES} pages`),
    ],
  ])('refuses %s with a ToolListError saying so', async (_n, h, message) => {
    handler = h;
    const err = await fetchIt().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolListError);
    expect((err as Error).message).toMatch(message);
  });
});
