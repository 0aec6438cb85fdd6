/**
 * The broker asks an upstream MCP server for its tools itself (tools/list, every page), on the
 * agent's MCP session and with a session credential, when a tools/call arrives before the broker
 * has seen the upstream's list (tool-catalog.ts). The answer may come as JSON or as an SSE stream
 * (streamable HTTP); other messages on that stream are not for the agent and are dropped.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MAX_RESPONSE_BUFFER_BYTES, MAX_SSE_EVENT_BYTES } from './constants.js';
import type { HeaderList } from './headers.js';
import { SseParser } from './sse.js';
import { describeTarget, readLimited, requestUpstream } from './upstream.js';

/** More pages than this is refused (a server paging forever would hold the call). */
export const MAX_TOOL_LIST_PAGES = 20;

export class ToolListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolListError';
  }
}

export interface FetchToolListOptions {
  readonly url: URL;
  /**
   * Headers for the upstream (session id, protocol version, injected credential; no
   * Content-Length), built per page: a DPoP proof is good for one request only.
   */
  readonly headers: () => HeaderList;
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** Every tool name the upstream lists (all pages). Throws ToolListError saying what went wrong. */
export async function fetchToolList(o: FetchToolListOptions): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_TOOL_LIST_PAGES; page++) {
    const result = await requestPage(o, cursor);
    for (const t of result.tools) {
      const name = t !== null && typeof t === 'object' ? (t as { name?: unknown }).name : undefined;
      if (typeof name === 'string') names.push(name);
    }
    if (typeof result.nextCursor !== 'string') return names;
    cursor = result.nextCursor;
  }
  throw new ToolListError(
    `upstream ${describeTarget(o.url)} lists its tools in more than ${MAX_TOOL_LIST_PAGES} pages`,
  );
}

async function requestPage(
  o: FetchToolListOptions,
  cursor: string | undefined,
): Promise<{ tools: unknown[]; nextCursor?: unknown }> {
  const id = `warden-tools-list-${randomUUID()}`;
  const body = Buffer.from(
    JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'tools/list',
      params: cursor === undefined ? {} : { cursor },
    }),
  );
  const where = describeTarget(o.url);
  const up = await requestUpstream({
    url: o.url,
    method: 'POST',
    path: `${o.url.pathname}${o.url.search}`,
    headers: [...o.headers(), ['content-length', String(body.length)]],
    body,
    headersTimeoutMs: o.headersTimeoutMs,
    idleTimeoutMs: o.idleTimeoutMs,
    signal: o.signal,
  });
  try {
    if (up.status < 200 || up.status > 299) {
      throw new ToolListError(`upstream ${where} answered tools/list with HTTP ${up.status}`);
    }
    const type = (up.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? '').toLowerCase();
    const message = type.startsWith('text/event-stream')
      ? await fromSse(up.body, id)
      : await fromJson(up.body);
    return readResult(message, id, where);
  } finally {
    up.body.destroy();
  }
}

async function fromJson(body: IncomingMessage): Promise<unknown> {
  const buf = await readLimited(body, MAX_RESPONSE_BUFFER_BYTES);
  if (buf === null) throw new ToolListError(`tools/list answer exceeds ${MAX_RESPONSE_BUFFER_BYTES} bytes`);
  return parseOrNull(buf.toString('utf8'));
}

async function fromSse(body: IncomingMessage, id: string): Promise<unknown> {
  const parser = new SseParser(MAX_SSE_EVENT_BYTES);
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    for (const ev of parser.push(decoder.decode(chunk as Buffer, { stream: true }))) {
      if (!ev.data) continue;
      const msg = parseOrNull(ev.data);
      if (msg !== null && typeof msg === 'object' && (msg as { id?: unknown }).id === id) return msg;
    }
  }
  return null;
}

function parseOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function readResult(message: unknown, id: string, where: string): { tools: unknown[]; nextCursor?: unknown } {
  if (message === null || typeof message !== 'object' || (message as { id?: unknown }).id !== id) {
    throw new ToolListError(`upstream ${where} sent no answer to tools/list`);
  }
  const error = (message as { error?: { code?: unknown; message?: unknown } }).error;
  if (error) {
    throw new ToolListError(
      `upstream ${where} answered tools/list with error ${String(error.code)}: ${String(error.message).slice(0, 200)}`,
    );
  }
  const result = (message as { result?: { tools?: unknown; nextCursor?: unknown } }).result;
  if (!result || !Array.isArray(result.tools)) {
    throw new ToolListError(`upstream ${where} answered tools/list without a tools array`);
  }
  return { tools: result.tools, nextCursor: result.nextCursor };
}
