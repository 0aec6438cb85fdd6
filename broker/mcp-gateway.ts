/**
 * MCP gateway: `/mcp/<provider>` speaks MCP streamable HTTP to the agent and to the upstream MCP
 * server, as a JSON-RPC-aware pass-through proxy (ADR 0007):
 *   - each POSTed message is read once by a strict parser and validated with the SDK's schemas
 *     (jsonrpc.ts) before anything else; a repeated key is refused; what goes upstream is the
 *     broker's serialisation of the message it decided on, never the agent's bytes;
 *   - `tools/call` is decided by policy before the upstream sees it; a denial is a JSON-RPC error
 *     whose `data` carries {decision, reason, reasons[{policy, rule, condition, message}]};
 *   - every other message needs the session gate (fresh snapshot, agent not suspended, some rule
 *     targets the provider);
 *   - responses (JSON or SSE) are relayed event by event: `tools/list` results are filtered to
 *     tools some rule could allow for this agent and user, and the injected credential is scrubbed;
 *   - Mcp-Session-Id, MCP-Protocol-Version and Last-Event-ID pass through, so sessions,
 *     notifications, server-initiated requests and resumable streams work unchanged.
 * A kill switch (abortAll) ends every in-flight exchange with a structured error.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import {
  type AccessDeps,
  type AccessOutcome,
  authorize,
  type RequestTiming,
  timeRequest,
  upstreamCredentialHeaders,
} from './access.js';
import {
  BrokerDenyReason,
  DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS,
  DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
  DEFAULT_UPSTREAM_STREAM_IDLE_TIMEOUT_MS,
  JSONRPC_POLICY_DENIED,
  JSONRPC_UPSTREAM_UNAVAILABLE,
  MAX_BODY_BYTES,
  MAX_RESPONSE_BUFFER_BYTES,
  MAX_SSE_EVENT_BYTES,
} from './constants.js';
import { type BrokerDecision, brokerDeny } from './decider.js';
import {
  agentResponseHeaders,
  type HeaderList,
  pairs,
  redactString,
  upstreamRequestHeaders,
} from './headers.js';
import { filterToolList, jsonRpcError, parseAgentMessage, toolNameProblem } from './jsonrpc.js';
import type { RequestMeta } from './request-meta.js';
import { SseParser, writeSseEvent } from './sse.js';
import { describeTarget, readLimited, requestUpstream, UpstreamTimeoutError } from './upstream.js';

export interface McpGatewayOptions {
  readonly access: AccessDeps;
  readonly log: Logger;
  readonly headersTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly streamIdleTimeoutMs?: number;
  readonly maxBodyBytes?: number;
}

/** The JSON-RPC error `data` of a denial. */
export function denialData(d: BrokerDecision): Record<string, unknown> {
  return { decision: d.decision, reason: d.reason, reasons: d.reasons };
}

/** One agent ↔ upstream exchange, so the kill switch can end it from outside. */
class Exchange {
  readonly upstream = new AbortController();
  streaming = false;
  done = false;

  constructor(
    readonly res: ServerResponse,
    /** Id of the agent's request this exchange answers (POST of a request), for a final error. */
    readonly requestId: RequestId | undefined,
  ) {}

  replyJson(status: number, body: unknown, headers: HeaderList = []): void {
    if (this.done) return;
    this.done = true;
    if (this.res.headersSent) {
      this.res.end();
      return;
    }
    const payload = JSON.stringify(body);
    this.res.writeHead(status, [
      ...headers.filter(([n]) => !/^(content-type|content-length)$/i.test(n)),
      ['content-type', 'application/json'],
      ['content-length', String(Buffer.byteLength(payload))],
    ]);
    this.res.end(payload);
  }

  /** End with a JSON-RPC error: as an SSE event when the stream has started, else as a JSON body. */
  fail(status: number, code: number, message: string, data?: unknown): void {
    if (this.done) return;
    const error = jsonRpcError(this.requestId, code, message, data);
    if (this.streaming) {
      this.done = true;
      if (this.requestId !== undefined)
        this.res.write(writeSseEvent({ event: 'message', data: JSON.stringify(error) }));
      this.res.end();
      return;
    }
    this.replyJson(this.requestId !== undefined ? 200 : status, error);
  }

  abort(decision: BrokerDecision): void {
    this.upstream.abort();
    this.fail(403, JSONRPC_POLICY_DENIED, decision.message, denialData(decision));
  }
}

export class McpGateway {
  private readonly active = new Set<Exchange>();
  private readonly headersTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly streamIdleTimeoutMs: number;
  private readonly maxBodyBytes: number;

  constructor(private readonly opts: McpGatewayOptions) {
    this.headersTimeoutMs = opts.headersTimeoutMs ?? DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS;
    this.streamIdleTimeoutMs = opts.streamIdleTimeoutMs ?? DEFAULT_UPSTREAM_STREAM_IDLE_TIMEOUT_MS;
    this.maxBodyBytes = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  }

  /** In-flight exchanges (for tests and metrics). */
  get inFlight(): number {
    return this.active.size;
  }

  /** Kill switch / policy loss: end every in-flight exchange with `decision` and cut the upstreams. */
  abortAll(decision: BrokerDecision): void {
    for (const ex of [...this.active]) ex.abort(decision);
    this.active.clear();
  }

  async handle(req: IncomingMessage, res: ServerResponse, target: string, meta: RequestMeta): Promise<void> {
    const timing = timeRequest(this.opts.access.metrics, 'mcp', res);
    switch (req.method) {
      case 'POST':
        return this.post(req, res, target, meta, timing);
      case 'GET':
      case 'DELETE':
        return this.session(req, res, target, meta, timing);
      default: {
        const ex = new Exchange(res, undefined);
        ex.replyJson(
          405,
          jsonRpcError(undefined, ErrorCode.InvalidRequest, 'use POST, GET or DELETE (MCP streamable HTTP)'),
          [['allow', 'GET, POST, DELETE']],
        );
      }
    }
  }

  private async post(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    meta: RequestMeta,
    timing: RequestTiming,
  ): Promise<void> {
    const declared = Number(req.headers['content-length']);
    const body =
      Number.isFinite(declared) && declared > this.maxBodyBytes
        ? null
        : await readLimited(req, this.maxBodyBytes, false);
    if (body === null) {
      new Exchange(res, undefined).replyJson(
        413,
        jsonRpcError(
          undefined,
          ErrorCode.InvalidRequest,
          `request body exceeds the broker's ${this.maxBodyBytes}-byte limit; send smaller tool arguments`,
        ),
        [['connection', 'close']],
      );
      req.resume();
      return;
    }
    const parsed = parseAgentMessage(body, this.maxBodyBytes);
    if (!parsed.ok) {
      new Exchange(res, undefined).replyJson(parsed.status, parsed.error);
      return;
    }
    const msg = parsed.message;
    const ex = new Exchange(res, msg.kind === 'request' ? msg.id : undefined);
    const decider = this.opts.access.decider;
    let outcome: AccessOutcome;
    let invalidTool = false;
    if (msg.kind === 'request' && msg.method === 'tools/call') {
      const name = String(msg.params?.name ?? '');
      const args = msg.params?.arguments;
      const problem = toolNameProblem(name);
      invalidTool = problem !== null;
      outcome = await authorize(this.opts.access, {
        meta,
        target,
        protocol: 'MCP',
        credential: { kind: 'mcp', tool: name },
        auditFields: { tool: name.slice(0, 256) },
        decide: (user) =>
          problem
            ? brokerDeny(
                BrokerDenyReason.InvalidToolName,
                `tool name '${name.slice(0, 64)}' refused: ${problem}`,
              )
            : decider.decideTool(target, name, args, user, meta.context),
      });
    } else {
      outcome = await authorize(this.opts.access, {
        meta,
        target,
        protocol: 'MCP',
        credential: { kind: 'mcp' },
        auditFields: msg.kind === 'response' ? {} : { tool: undefined, method: msg.method },
        decide: () => decider.decideSession(target),
      });
    }
    if (!outcome.ok) {
      const d = outcome.decision;
      ex.fail(403, invalidTool ? ErrorCode.InvalidParams : JSONRPC_POLICY_DENIED, d.message, denialData(d));
      return;
    }
    timing.allow();
    const listId = msg.kind === 'request' && msg.method === 'tools/list' ? msg.id : undefined;
    // The broker's serialisation of the message it decided on, never the agent's bytes (issue 15).
    await this.forward(req, ex, target, outcome, parsed.forward, listId, meta.requestId);
  }

  private async session(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    meta: RequestMeta,
    timing: RequestTiming,
  ): Promise<void> {
    const ex = new Exchange(res, undefined);
    const outcome = await authorize(this.opts.access, {
      meta,
      target,
      protocol: 'MCP',
      credential: { kind: 'mcp' },
      auditFields: { method: req.method },
      decide: () => this.opts.access.decider.decideSession(target),
    });
    if (!outcome.ok) {
      ex.replyJson(
        403,
        jsonRpcError(
          undefined,
          JSONRPC_POLICY_DENIED,
          outcome.decision.message,
          denialData(outcome.decision),
        ),
      );
      return;
    }
    timing.allow();
    await this.forward(req, ex, target, outcome, undefined, undefined, meta.requestId);
  }

  private async forward(
    req: IncomingMessage,
    ex: Exchange,
    target: string,
    outcome: Extract<AccessOutcome, { ok: true }>,
    body: Buffer | undefined,
    listId: RequestId | undefined,
    requestId: string,
  ): Promise<void> {
    const { provider, secrets, user } = outcome;
    const url = new URL(provider.url);
    const built = upstreamRequestHeaders(pairs(req.rawHeaders), {
      mode: 'mcp',
      injectHeader: provider.inject.header,
      inject: upstreamCredentialHeaders(outcome.credential, req.method ?? 'POST', url),
    });
    if (!built.ok) {
      ex.fail(400, ErrorCode.InvalidRequest, built.message);
      return;
    }
    // The body is the broker's own serialisation: its length, not the agent's Content-Length.
    const upstreamHeaders: HeaderList =
      body === undefined
        ? built.headers
        : [
            ...built.headers.filter(([n]) => n.toLowerCase() !== 'content-length'),
            ['content-length', String(body.length)],
          ];
    this.active.add(ex);
    ex.res.on('close', () => {
      // The agent went away: stop the upstream work too.
      if (!ex.res.writableFinished) ex.upstream.abort();
      this.active.delete(ex);
    });
    try {
      const up = await requestUpstream({
        url,
        method: req.method ?? 'POST',
        path: `${url.pathname}${url.search}`,
        headers: upstreamHeaders,
        body,
        headersTimeoutMs: this.headersTimeoutMs,
        idleTimeoutMs: req.method === 'GET' ? this.streamIdleTimeoutMs : this.idleTimeoutMs,
        signal: ex.upstream.signal,
      });
      if (ex.done) {
        up.body.destroy();
        return;
      }
      const contentType = (
        up.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? ''
      ).toLowerCase();
      const headers = agentResponseHeaders(up.headers, secrets, { bodyRewritten: true });
      const keep = (name: string): boolean => this.opts.access.decider.couldAllowTool(target, name, user);
      if (contentType.startsWith('text/event-stream')) {
        // A tool call may work silently for minutes; SSE gets the stream idle bound.
        up.setIdleTimeout(this.streamIdleTimeoutMs);
        await this.relaySse(ex, up.status, headers, up.body, secrets, listId, keep, url);
      } else {
        await this.relayBuffered(ex, up.status, headers, up.body, secrets, listId, keep, url);
      }
    } catch (err) {
      if (ex.done) return;
      const timeout = err instanceof UpstreamTimeoutError;
      this.opts.log.warn({ target, err: errName(err), requestId }, 'upstream MCP request failed');
      ex.fail(
        timeout ? 504 : 502,
        JSONRPC_UPSTREAM_UNAVAILABLE,
        timeout
          ? (err as Error).message
          : `upstream MCP server ${describeTarget(url)} failed (${errName(err)})`,
      );
    } finally {
      this.active.delete(ex);
    }
  }

  private async relayBuffered(
    ex: Exchange,
    status: number,
    headers: HeaderList,
    body: IncomingMessage,
    secrets: readonly string[],
    listId: RequestId | undefined,
    keep: (name: string) => boolean,
    url: URL,
  ): Promise<void> {
    const buf = await readLimited(body, MAX_RESPONSE_BUFFER_BYTES);
    if (ex.done) return;
    if (buf === null) {
      ex.fail(
        502,
        JSONRPC_UPSTREAM_UNAVAILABLE,
        `upstream ${describeTarget(url)} response exceeds ${MAX_RESPONSE_BUFFER_BYTES} bytes`,
      );
      return;
    }
    let text = buf.toString('utf8');
    if (listId !== undefined && text.length > 0) text = filterListText(text, listId, keep);
    text = redactString(text, secrets);
    ex.done = true;
    const out = Buffer.from(text);
    const res = ex.res;
    res.writeHead(status, [...headers, ['content-length', String(out.length)]]);
    res.end(out);
  }

  private async relaySse(
    ex: Exchange,
    status: number,
    headers: HeaderList,
    body: IncomingMessage,
    secrets: readonly string[],
    listId: RequestId | undefined,
    keep: (name: string) => boolean,
    url: URL,
  ): Promise<void> {
    const res = ex.res;
    res.writeHead(status, headers);
    res.flushHeaders();
    ex.streaming = true;
    const parser = new SseParser(MAX_SSE_EVENT_BYTES);
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) {
        if (ex.done) return;
        for (const ev of parser.push(decoder.decode(chunk as Buffer, { stream: true }))) {
          if (listId !== undefined && ev.data) ev.data = filterListText(ev.data, listId, keep);
          res.write(redactString(writeSseEvent(ev), secrets));
        }
      }
      if (!ex.done) {
        ex.done = true;
        res.end();
      }
    } catch (err) {
      if (ex.done) return;
      ex.fail(
        502,
        JSONRPC_UPSTREAM_UNAVAILABLE,
        `upstream ${describeTarget(url)} stream failed (${errName(err)})`,
      );
    }
  }
}

/** Filter a tools/list result carried in `text` (one JSON-RPC message) when it answers `listId`. */
function filterListText(text: string, listId: RequestId, keep: (name: string) => boolean): string {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return text;
  }
  if (msg === null || typeof msg !== 'object' || (msg as { id?: unknown }).id !== listId) return text;
  return JSON.stringify(filterToolList(msg, keep).message);
}

function errName(err: unknown): string {
  if (err instanceof UpstreamTimeoutError) return err.message;
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'error';
}
