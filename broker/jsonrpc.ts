/**
 * Pure JSON-RPC handling for the MCP gateway: turn the bytes an (untrusted) agent POSTs into one
 * validated MCP message, or into the JSON-RPC error the agent should get. Uses the SDK's own zod
 * schemas so the broker accepts exactly what the MCP SDK would.
 *
 * Decisions recorded in docs/adr/0007-broker.md:
 *   - batches (a JSON array) are refused: MCP 2025-06-18 removed JSON-RPC batching, and a batch
 *     would let one POST carry many tool calls past a per-message decision;
 *   - requests with a method the MCP client schema does not know are refused (-32601) instead of
 *     passed through: a future method could reach the upstream without a policy decision;
 *   - the body is read by a strict parser (strict-json.ts): a repeated key, a lone surrogate or a
 *     number parsers read differently is refused, nesting is bounded as it parses; the message is
 *     decided on that one reading and the broker's own serialisation of it is what goes upstream
 *     (`forward`), never the agent's bytes.
 */
import {
  ClientNotificationSchema,
  ClientRequestSchema,
  ErrorCode,
  JSONRPC_VERSION,
  type JSONRPCErrorResponse,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { MAX_BODY_BYTES, MAX_JSON_DEPTH } from './constants.js';
import { parseStrictJson } from './strict-json.js';

/** A schema we only call safeParse on; typed structurally so we depend on no zod internals. */
interface SafeParser {
  safeParse(value: unknown): {
    success: boolean;
    error?: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> };
  };
}
interface MethodSchema extends SafeParser {
  shape: { method: { value: unknown } };
}

function byMethod(options: readonly MethodSchema[]): ReadonlyMap<string, SafeParser> {
  const map = new Map<string, SafeParser>();
  for (const o of options) map.set(String(o.shape.method.value), o);
  return map;
}

/** Client → server requests the broker knows, each with its own schema (clean error paths). */
export const CLIENT_REQUESTS = byMethod(ClientRequestSchema.options as unknown as readonly MethodSchema[]);
/** Client → server notifications the broker knows. */
export const CLIENT_NOTIFICATIONS = byMethod(
  ClientNotificationSchema.options as unknown as readonly MethodSchema[],
);

export type AgentMessage =
  | {
      readonly kind: 'request';
      readonly id: RequestId;
      readonly method: string;
      readonly params: Record<string, unknown> | undefined;
    }
  | { readonly kind: 'notification'; readonly method: string }
  /** A result or error the agent sends back for a server-initiated request (sampling, elicitation, ping). */
  | { readonly kind: 'response'; readonly id: RequestId | undefined };

export type ParseResult =
  | {
      readonly ok: true;
      readonly message: AgentMessage;
      /** The message as parsed: what was decided on (params, tool name and arguments are read from it). */
      readonly json: JSONRPCMessage;
      /** The broker's serialisation of `json`: the only bytes sent upstream (never the agent's). */
      readonly forward: Buffer;
    }
  | { readonly ok: false; readonly status: number; readonly error: JSONRPCErrorResponse };

export function jsonRpcError(
  id: RequestId | undefined,
  code: number,
  message: string,
  data?: unknown,
): JSONRPCErrorResponse {
  const error: JSONRPCErrorResponse['error'] =
    data === undefined ? { code, message } : { code, message, data };
  // JSON-RPC 2.0 wants `id: null` when the id could not be read; the SDK schema models that as absent.
  return id === undefined
    ? ({ jsonrpc: JSONRPC_VERSION, id: null, error } as unknown as JSONRPCErrorResponse)
    : { jsonrpc: JSONRPC_VERSION, id, error };
}

const fail = (status: number, id: RequestId | undefined, code: number, message: string): ParseResult => ({
  ok: false,
  status,
  error: jsonRpcError(id, code, message),
});

function formatIssues(
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> | undefined,
): string {
  return (issues ?? [])
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(message)'}: ${i.message}`)
    .join('; ');
}

const ENVELOPE_KEYS: ReadonlySet<string> = new Set(['jsonrpc', 'id', 'method', 'params']);

/**
 * Whether `value` is a JSON-RPC request the SDK's JSONRPCRequestSchema (strict object: jsonrpc
 * "2.0", id string or integer, method string, params an object) accepts — decided only for the
 * plain case, a subset of what the schema accepts: params without `_meta`, a safe-integer id, no
 * other key. False means "ask the schema", not "invalid". The SDK schema is a zod union of four
 * strict objects tried in turn, ~20 µs per call; this is what every tools/call takes.
 */
export function plainRequestEnvelope(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const m = value as Record<string, unknown>;
  let keys = 0;
  for (const k in m) {
    if (!Object.hasOwn(m, k)) continue;
    if (!ENVELOPE_KEYS.has(k)) return false;
    keys++;
  }
  if (Object.getPrototypeOf(m) !== Object.prototype && Object.getPrototypeOf(m) !== null) return false;
  const { jsonrpc, id, method, params } = m;
  if (jsonrpc !== '2.0' || typeof method !== 'string') return false;
  if (!(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) return false;
  if (!Object.hasOwn(m, 'params')) return keys === 3;
  return (
    params !== null &&
    typeof params === 'object' &&
    !Array.isArray(params) &&
    !Object.hasOwn(params, '_meta') &&
    Object.getPrototypeOf(params) === Object.prototype
  );
}

function readId(value: unknown): RequestId | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const id = (value as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id)) ? id : undefined;
}

/**
 * Strict UTF-8 decoding; decode() without `stream` keeps no state between calls, so one instance
 * serves all. A byte order mark is kept (ignoreBOM) so the JSON parser refuses it, as Python's
 * json does, instead of silently dropping it.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Parse and validate one POSTed MCP message. `body` is at most MAX_BODY_BYTES (the caller bounds the read). */
export function parseAgentMessage(body: Uint8Array, maxBytes = MAX_BODY_BYTES): ParseResult {
  if (body.byteLength > maxBytes) {
    return fail(
      413,
      undefined,
      ErrorCode.InvalidRequest,
      `request body exceeds the broker's ${maxBytes}-byte limit; send smaller tool arguments`,
    );
  }
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return fail(400, undefined, ErrorCode.ParseError, 'request body is not valid UTF-8');
  }
  const read = parseStrictJson(text, { maxDepth: MAX_JSON_DEPTH });
  if (!read.ok) {
    const { problem } = read;
    if (problem.kind === 'syntax') {
      return fail(400, undefined, ErrorCode.ParseError, `request body is not valid JSON: ${problem.message}`);
    }
    // The id is echoed only when the message has exactly one (a repeated "id" is itself the problem).
    const id = problem.kind === 'duplicate-key' && problem.path !== '$.id' ? readId(read.value) : undefined;
    return fail(400, id, ErrorCode.InvalidRequest, problem.message);
  }
  const value = read.value;
  if (Array.isArray(value)) {
    return fail(
      400,
      undefined,
      ErrorCode.InvalidRequest,
      'JSON-RPC batches are not supported (MCP 2025-06-18 removed batching); send one message per POST',
    );
  }
  const id = readId(value);
  // The common message, a request with a plain envelope, is checked by hand; everything else
  // (and every refusal, for its message) goes through the SDK schema. The per-method params
  // schema below runs either way.
  const parsed = plainRequestEnvelope(value)
    ? { success: true as const }
    : JSONRPCMessageSchema.safeParse(value);
  if (!parsed.success) {
    return fail(
      400,
      id,
      ErrorCode.InvalidRequest,
      `not a valid JSON-RPC 2.0 message: ${formatIssues(parsed.error.issues)}`,
    );
  }
  // Decide on (and forward) the parsed value itself, not zod's copy of it: zod may drop or
  // re-create keys, and what goes upstream must be exactly what was decided.
  const json = value as JSONRPCMessage;
  const forward = Buffer.from(JSON.stringify(json));
  if ('method' in json && 'id' in json) {
    const schema = CLIENT_REQUESTS.get(json.method);
    if (!schema) {
      // 200 like any JSON-RPC error response: the agent correlates it by id.
      return fail(
        200,
        json.id,
        ErrorCode.MethodNotFound,
        `method '${json.method.slice(0, 100)}' is not an MCP client request the broker forwards`,
      );
    }
    const checked = schema.safeParse({ method: json.method, params: json.params });
    if (!checked.success) {
      return fail(
        200,
        json.id,
        ErrorCode.InvalidParams,
        `invalid params for ${json.method}: ${formatIssues(checked.error?.issues)}`,
      );
    }
    return {
      ok: true,
      json,
      forward,
      message: {
        kind: 'request',
        id: json.id,
        method: json.method,
        params: json.params as Record<string, unknown> | undefined,
      },
    };
  }
  if ('method' in json) {
    const schema = CLIENT_NOTIFICATIONS.get(json.method);
    if (!schema) {
      return fail(
        400,
        undefined,
        ErrorCode.MethodNotFound,
        `notification '${json.method.slice(0, 100)}' is not an MCP client notification the broker forwards`,
      );
    }
    const checked = schema.safeParse({ method: json.method, params: json.params });
    if (!checked.success) {
      return fail(
        400,
        undefined,
        ErrorCode.InvalidParams,
        `invalid params for ${json.method}: ${formatIssues(checked.error?.issues)}`,
      );
    }
    return { ok: true, json, forward, message: { kind: 'notification', method: json.method } };
  }
  return { ok: true, json, forward, message: { kind: 'response', id: 'id' in json ? json.id : undefined } };
}

/**
 * Tool names the broker lets through: 1..128 characters of [A-Za-z0-9_.-], not starting with
 * `.` or `-`, and without `..`. Policy globs let `*` match any character, so a name like
 * `jira.get_x/../../admin` would match `jira.get_*`; an upstream that maps names to paths or
 * handlers could then be tricked. Refusing such names keeps glob matching and upstream routing in step.
 */
export function toolNameProblem(name: string): string | null {
  if (name.length === 0) return 'tool name is empty';
  if (name.length > 128) return `tool name is ${name.length} characters long; the limit is 128`;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
    return 'tool name may contain only letters, digits, "_", "." and "-" (and must not start with "." or "-")';
  }
  if (name.includes('..')) return 'tool name must not contain ".."';
  return null;
}

/**
 * tools/list filtering (pure): keep only tools whose name is well-formed and that `keep` accepts.
 * `message` is a parsed upstream JSON-RPC message; anything that is not a result with a `tools`
 * array is returned unchanged.
 */
export function filterToolList(
  message: unknown,
  keep: (toolName: string) => boolean,
): { message: unknown; hidden: number } {
  if (message === null || typeof message !== 'object' || Array.isArray(message))
    return { message, hidden: 0 };
  const result = (message as { result?: unknown }).result;
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return { message, hidden: 0 };
  const tools = (result as { tools?: unknown }).tools;
  if (!Array.isArray(tools)) return { message, hidden: 0 };
  const kept = tools.filter((t: unknown) => {
    const name = t !== null && typeof t === 'object' ? (t as { name?: unknown }).name : undefined;
    return typeof name === 'string' && toolNameProblem(name) === null && keep(name);
  });
  return {
    message: { ...(message as object), result: { ...(result as object), tools: kept } },
    hidden: tools.length - kept.length,
  };
}
