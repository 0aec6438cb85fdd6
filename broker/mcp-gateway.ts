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
 * A kill switch ends every in-flight exchange with a structured error: each exchange is in the
 * broker's one in-flight registry (in-flight.ts, registered through the pipeline's
 * AccessOutcome.track), shared with the HTTP proxy and PostgreSQL.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { AgentRefInput, UserInput } from '../core/policy/types.js';
import {
  type AccessDeps,
  type AccessOutcome,
  authorize,
  type RequestTiming,
  recordRefusal,
  timeRequest,
  upstreamCredentialHeaders,
} from './access.js';
import {
  BrokerDenyReason,
  DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS,
  DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
  DEFAULT_UPSTREAM_STREAM_IDLE_TIMEOUT_MS,
  HEADER_MCP_PROTOCOL_VERSION,
  HEADER_MCP_SESSION_ID,
  JSONRPC_POLICY_DENIED,
  JSONRPC_UPSTREAM_UNAVAILABLE,
  MAX_BODY_BYTES,
  MAX_RESPONSE_BUFFER_BYTES,
  MAX_SSE_EVENT_BYTES,
  MCP_TOOLS_LIST_CHANGED,
} from './constants.js';
import {
  AuthorityUnavailableError,
  CredentialDeniedError,
  type IssuedCredential,
  UserTokenRejectedError,
  userKey,
} from './credentials.js';
import { type BrokerDecision, brokerDeny, keepReplay } from './decider.js';
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
import { type CatalogKey, ToolCatalog } from './tool-catalog.js';
import { fetchToolList, ToolListError } from './tool-list-fetch.js';
import { describeTarget, readLimited, requestUpstream, UpstreamTimeoutError } from './upstream.js';

/**
 * Provider URLs parsed once: a `new URL` per call was ~2 % of the broker's CPU per call. The URL
 * objects are shared, so nothing may modify them (every user only reads).
 */
const parsedUrls = new Map<string, URL>();
function providerUrl(raw: string): URL {
  let url = parsedUrls.get(raw);
  if (!url) {
    if (parsedUrls.size >= 256) parsedUrls.clear();
    url = new URL(raw);
    parsedUrls.set(raw, url);
  }
  return url;
}

export interface McpGatewayOptions {
  readonly access: AccessDeps;
  readonly log: Logger;
  readonly headersTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly streamIdleTimeoutMs?: number;
  readonly maxBodyBytes?: number;
  /** The tools each upstream advertised (a fresh one by default). */
  readonly catalog?: ToolCatalog;
}

/** What a relayed response means for tools/list: filtering, and keeping the tool catalog current. */
interface ListWatch {
  /** Id of the agent's tools/list this response answers (its result is filtered), if any. */
  readonly listId: RequestId | undefined;
  readonly keep: (name: string) => boolean;
  /** Set when the agent asked for the whole list (no cursor): called with every advertised name. */
  readonly record: ((names: string[]) => void) | undefined;
  /** The upstream announced that its tools changed. */
  readonly changed: () => void;
}

/** Agent headers the broker's own tools/list carries (the session it belongs to). */
const LIST_FETCH_HEADERS = new Set([HEADER_MCP_SESSION_ID, HEADER_MCP_PROTOCOL_VERSION, 'user-agent']);

/** The agent's MCP session id ('' when the upstream is stateless or the header is repeated). */
function sessionOf(req: IncomingMessage): string {
  const v = req.headers[HEADER_MCP_SESSION_ID];
  return typeof v === 'string' ? v : '';
}

/** JSON-RPC error code for a refusal: the tool-name ones are InvalidParams, as MCP specifies for unknown tools. */
function refusalCode(reason: string): number {
  if (reason === BrokerDenyReason.InvalidToolName || reason === BrokerDenyReason.UnknownTool)
    return ErrorCode.InvalidParams;
  if (reason === BrokerDenyReason.ToolListUnavailable) return JSONRPC_UPSTREAM_UNAVAILABLE;
  return JSONRPC_POLICY_DENIED;
}

/**
 * HTTP status of a refusal on the MCP listener (ADR 0007, "Errors on the MCP listener"): a
 * provider the broker does not know (or one that is not an MCP server) is no MCP endpoint, so
 * 404 whatever the message; other refusals of a JSON-RPC request are that request's answer
 * (HTTP 200, the error carries its id), and of a notification, response, GET or DELETE 403.
 */
function refusalStatus(d: BrokerDecision): number | null {
  return d.reason === BrokerDenyReason.UnknownTarget ? 404 : null;
}

/** What a refusal tells the agent: for an unknown provider, also where the name comes from. */
function refusalMessage(d: BrokerDecision): string {
  if (d.reason !== BrokerDenyReason.UnknownTarget) return d.message;
  return `${d.message}; the provider is the path segment of the MCP URL (<base>/<provider>, or <base>/<provider>/mcp)`;
}

/** The JSON-RPC error `data` of a denial. */
export function denialData(d: BrokerDecision): Record<string, unknown> {
  return {
    decision: d.decision,
    reason: d.reason,
    reasons: d.reasons,
    // QuotaExceeded: when the agent may try again (the limit's window resets).
    ...(d.retryAfterMs !== undefined
      ? { retryAfterSeconds: Math.max(1, Math.ceil(d.retryAfterMs / 1000)) }
      : {}),
  };
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
  private readonly headersTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly streamIdleTimeoutMs: number;
  private readonly maxBodyBytes: number;
  readonly catalog: ToolCatalog;

  constructor(private readonly opts: McpGatewayOptions) {
    this.catalog = opts.catalog ?? new ToolCatalog();
    this.headersTimeoutMs = opts.headersTimeoutMs ?? DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS;
    this.streamIdleTimeoutMs = opts.streamIdleTimeoutMs ?? DEFAULT_UPSTREAM_STREAM_IDLE_TIMEOUT_MS;
    this.maxBodyBytes = opts.maxBodyBytes ?? MAX_BODY_BYTES;
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
        const message = 'use POST, GET or DELETE (MCP streamable HTTP)';
        await this.refuse(meta, target, message, (req.method ?? '').slice(0, 16));
        new Exchange(res, undefined).replyJson(
          405,
          jsonRpcError(undefined, ErrorCode.InvalidRequest, message),
          [['allow', 'GET, POST, DELETE']],
        );
      }
    }
  }

  /** A message refused before any decision: audited and counted like every denial (access.ts). */
  private async refuse(meta: RequestMeta, target: string, message: string, method: string): Promise<void> {
    await recordRefusal(this.opts.access, { meta, target, message, auditFields: { method } });
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
      const message = `request body exceeds the broker's ${this.maxBodyBytes}-byte limit; send smaller tool arguments`;
      await this.refuse(meta, target, message, 'POST');
      new Exchange(res, undefined).replyJson(
        413,
        jsonRpcError(undefined, ErrorCode.InvalidRequest, message),
        [['connection', 'close']],
      );
      req.resume();
      return;
    }
    const parsed = parseAgentMessage(body, this.maxBodyBytes);
    if (!parsed.ok) {
      await this.refuse(meta, target, parsed.error.error.message, 'POST');
      new Exchange(res, undefined).replyJson(parsed.status, parsed.error);
      return;
    }
    const msg = parsed.message;
    const ex = new Exchange(res, msg.kind === 'request' ? msg.id : undefined);
    const decider = this.opts.access.decider;
    const catalogKey: CatalogKey = { target, session: sessionOf(req), user: userKey(meta.userToken) };
    let outcome: AccessOutcome;
    if (msg.kind === 'request' && msg.method === 'tools/call') {
      const name = String(msg.params?.name ?? '');
      const args = msg.params?.arguments;
      const problem = toolNameProblem(name);
      outcome = await authorize(this.opts.access, {
        meta,
        target,
        protocol: 'MCP',
        credential: { kind: 'mcp', tool: name },
        auditFields: { tool: name.slice(0, 256) },
        decide: async (user, chain) => {
          if (problem) {
            return brokerDeny(
              BrokerDenyReason.InvalidToolName,
              `tool name '${name.slice(0, 64)}' refused: ${problem}`,
            );
          }
          const d = decider.decideTool(target, name, args, user, meta.context, chain);
          // Policy first: a denied call never makes the broker contact the upstream.
          if (d.decision === 'Deny') return d;
          return this.checkAdvertised(d, catalogKey, name, req, meta, user, chain);
        },
      });
    } else {
      outcome = await authorize(this.opts.access, {
        meta,
        target,
        protocol: 'MCP',
        credential: { kind: 'mcp' },
        auditFields: msg.kind === 'response' ? {} : { tool: undefined, method: msg.method },
        decide: (user, chain) => decider.decideSession(target, user, meta.context, chain),
        notACall: true,
      });
    }
    if (!outcome.ok) {
      const d = outcome.decision;
      const status = refusalStatus(d);
      if (status !== null)
        ex.replyJson(
          status,
          jsonRpcError(undefined, refusalCode(d.reason), refusalMessage(d), denialData(d)),
        );
      else ex.fail(403, refusalCode(d.reason), d.message, denialData(d));
      return;
    }
    timing.allow();
    const listing = msg.kind === 'request' && msg.method === 'tools/list';
    const watch = this.listWatch(catalogKey, outcome, {
      listId: listing ? msg.id : undefined,
      // Only the whole list (no cursor) is a catalog; a page is not.
      complete: listing && msg.params?.cursor === undefined,
    });
    // The broker's serialisation of the message it decided on, never the agent's bytes (issue 15).
    await this.forward(req, ex, outcome, parsed.forward, watch, meta.requestId);
  }

  /**
   * An allowed tools/call must name a tool the upstream advertised (issue 15, item 5): looked up
   * in the catalog, fetched from the upstream when unknown; a list that cannot be read denies.
   */
  private async checkAdvertised(
    allowed: BrokerDecision,
    key: CatalogKey,
    name: string,
    req: IncomingMessage,
    meta: RequestMeta,
    user: UserInput | null,
    chain: readonly AgentRefInput[] | undefined,
  ): Promise<BrokerDecision> {
    const found = await this.catalog.lookup(key, name, () =>
      this.fetchTools(req, key.target, meta, user, chain),
    );
    if (!found.ok) {
      return keepReplay(
        brokerDeny(
          BrokerDenyReason.ToolListUnavailable,
          `could not read the tools '${key.target}' advertises (${found.message}); the broker refuses calls it cannot check against that list`,
          allowed.snapshotVersion,
        ),
        allowed,
      );
    }
    if (!found.advertised) {
      return keepReplay(
        brokerDeny(
          BrokerDenyReason.UnknownTool,
          `unknown tool '${name.slice(0, 64)}': '${key.target}' does not advertise it in tools/list; tool names must match exactly, case included (list the tools to see them)`,
          allowed.snapshotVersion,
        ),
        allowed,
      );
    }
    return allowed;
  }

  /**
   * The upstream's tools, asked for by the broker on the agent's session with a session credential:
   * the credential of the rule that allows this caller's session traffic (decideSession, the same
   * question the authority asks before minting it), cached under that rule like authorize() does.
   */
  private async fetchTools(
    req: IncomingMessage,
    target: string,
    meta: RequestMeta,
    user: UserInput | null,
    chain: readonly AgentRefInput[] | undefined,
  ): Promise<string[]> {
    const decider = this.opts.access.decider;
    const gate = decider.gate(target, 'MCP');
    if (!gate.ok) throw new ToolListError(gate.decision.message);
    const session = decider.decideSession(target, user, meta.context, chain);
    if (session.decision !== 'Allow' || session.policy === null) {
      throw new ToolListError(`no session credential: ${session.message}`);
    }
    const provider = gate.provider;
    const url = providerUrl(provider.url);
    let credential: IssuedCredential;
    try {
      credential = await this.opts.access.credentials.get(
        {
          target,
          kind: 'mcp',
          userToken: meta.userToken,
          context: meta.context,
          requestId: meta.requestId,
        },
        `${session.policy}#${session.rule}`,
      );
    } catch (err) {
      const known =
        err instanceof CredentialDeniedError ||
        err instanceof AuthorityUnavailableError ||
        err instanceof UserTokenRejectedError;
      throw new ToolListError(
        `no session credential from the Warden authority: ${known ? err.message : errName(err)}`,
      );
    }
    const agent = pairs(req.rawHeaders).filter(([n]) => LIST_FETCH_HEADERS.has(n.toLowerCase()));
    const headers = (): HeaderList => {
      const built = upstreamRequestHeaders(
        [...agent, ['content-type', 'application/json'], ['accept', 'application/json, text/event-stream']],
        {
          mode: 'mcp',
          injectHeader: provider.inject.header,
          inject: upstreamCredentialHeaders(credential, 'POST', url),
        },
      );
      if (!built.ok) throw new ToolListError(built.message);
      return built.headers;
    };
    try {
      return await fetchToolList({
        url,
        headers,
        headersTimeoutMs: this.headersTimeoutMs,
        idleTimeoutMs: this.idleTimeoutMs,
      });
    } catch (err) {
      if (err instanceof ToolListError) throw err;
      throw new ToolListError(`tools/list to ${describeTarget(url)} failed (${errName(err)})`);
    }
  }

  private listWatch(
    key: CatalogKey,
    outcome: Extract<AccessOutcome, { ok: true }>,
    list: { listId: RequestId | undefined; complete: boolean },
  ): ListWatch {
    const { user } = outcome;
    return {
      listId: list.listId,
      keep: (name) => this.opts.access.decider.couldAllowTool(key.target, name, user),
      record: list.complete ? (names) => this.catalog.record(key, names) : undefined,
      changed: () => this.catalog.invalidate(key.target, key.session),
    };
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
      decide: (user, chain) => this.opts.access.decider.decideSession(target, user, meta.context, chain),
      notACall: true,
    });
    if (!outcome.ok) {
      const d = outcome.decision;
      ex.replyJson(
        refusalStatus(d) ?? 403,
        jsonRpcError(undefined, JSONRPC_POLICY_DENIED, refusalMessage(d), denialData(d)),
      );
      return;
    }
    timing.allow();
    const key: CatalogKey = { target, session: sessionOf(req), user: userKey(meta.userToken) };
    // A GET stream may carry notifications/tools/list_changed; a DELETE ends the session's list.
    if (req.method === 'DELETE') this.catalog.invalidate(target, key.session);
    await this.forward(
      req,
      ex,
      outcome,
      undefined,
      this.listWatch(key, outcome, { listId: undefined, complete: false }),
      meta.requestId,
    );
  }

  private async forward(
    req: IncomingMessage,
    ex: Exchange,
    outcome: Extract<AccessOutcome, { ok: true }>,
    body: Buffer | undefined,
    watch: ListWatch,
    requestId: string,
  ): Promise<void> {
    const { provider, secrets } = outcome;
    const target = provider.name;
    const url = providerUrl(provider.url);
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
    const release = outcome.track((why) => ex.abort(why));
    ex.res.on('close', () => {
      // The agent went away: stop the upstream work too.
      if (!ex.res.writableFinished) ex.upstream.abort();
      release();
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
      if (contentType.startsWith('text/event-stream')) {
        // A tool call may work silently for minutes; SSE gets the stream idle bound.
        up.setIdleTimeout(this.streamIdleTimeoutMs);
        await this.relaySse(ex, up.status, headers, up.body, secrets, watch, url);
      } else {
        await this.relayBuffered(ex, up.status, headers, up.body, secrets, watch, url);
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
      release();
    }
  }

  private async relayBuffered(
    ex: Exchange,
    status: number,
    headers: HeaderList,
    body: IncomingMessage,
    secrets: readonly string[],
    watch: ListWatch,
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
    const out = relayedBody(buf, secrets, watch);
    ex.done = true;
    const res = ex.res;
    headers.push(['content-length', String(out.length)]);
    res.writeHead(status, headers);
    res.end(out);
  }

  private async relaySse(
    ex: Exchange,
    status: number,
    headers: HeaderList,
    body: IncomingMessage,
    secrets: readonly string[],
    watch: ListWatch,
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
          if (ev.data && (watch.listId !== undefined || ev.data.includes(MCP_TOOLS_LIST_CHANGED)))
            ev.data = relayedMessage(ev.data, watch);
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

/**
 * A buffered upstream answer as the agent gets it: decoded as UTF-8, the tools/list result
 * filtered, the credential scrubbed, encoded again. An answer that needs none of it — not a
 * listing, no secret in it — and is valid UTF-8 (so encoding the decoded text gives the same
 * bytes) is relayed as it came, without the copy.
 */
function relayedBody(buf: Buffer, secrets: readonly string[], watch: ListWatch): Buffer {
  let text = buf.toString('utf8');
  if (watch.listId !== undefined && text.length > 0) text = relayedMessage(text, watch);
  else if (!secrets.some((s) => s.length > 0 && text.includes(s)) && isUtf8(buf)) return buf;
  return Buffer.from(redactString(text, secrets));
}

/**
 * One upstream message on its way to the agent: a tools/list result answering `watch.listId` is
 * recorded in the catalog (all names, when the list is complete) and filtered; a
 * tools/list_changed notification drops the catalog's list. Anything else passes unchanged.
 */
function relayedMessage(text: string, watch: ListWatch): string {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return text;
  }
  if (msg === null || typeof msg !== 'object') return text;
  const m = msg as { id?: unknown; method?: unknown; result?: { tools?: unknown; nextCursor?: unknown } };
  if (m.method === MCP_TOOLS_LIST_CHANGED && m.id === undefined) {
    watch.changed();
    return text;
  }
  if (watch.listId === undefined || m.id !== watch.listId) return text;
  const tools = m.result?.tools;
  if (watch.record && Array.isArray(tools) && m.result?.nextCursor === undefined) {
    watch.record(
      tools.flatMap((t: unknown) => {
        const name = t !== null && typeof t === 'object' ? (t as { name?: unknown }).name : undefined;
        return typeof name === 'string' ? [name] : [];
      }),
    );
  }
  return JSON.stringify(filterToolList(msg, watch.keep).message);
}

function errName(err: unknown): string {
  if (err instanceof UpstreamTimeoutError) return err.message;
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'error';
}
