/**
 * Warden's denials as one typed error. The broker (sidecar or gateway) refuses in three shapes —
 * a JSON-RPC error (MCP), a 403 JSON body (HTTP proxy, or an MCP request refused before it reached
 * a tool) and a PostgreSQL ErrorResponse — and all become a WardenDeniedError an agent can reason
 * about: which reason, which policy, rule and condition decided, and when a retry may help.
 */
import { JSONRPC_POLICY_DENIED, JSONRPC_UPSTREAM_UNAVAILABLE } from './constants.js';

/** One reason a request was denied (the first is the deciding one). */
export interface DenialReason {
  readonly policy: string | null;
  readonly rule: number | null;
  readonly condition: string | null;
  readonly message: string;
}

export interface Denial {
  /** Stable reason string: a policy reason (NoMatchingAllow, ConditionFailed, DeniedByPolicy…) or a broker one (AgentSuspended…). */
  readonly reason: string;
  readonly message: string;
  readonly reasons: readonly DenialReason[];
  /** Seconds after which a retry may succeed (Retry-After, or the denial's own field), when Warden said so. */
  readonly retryAfterSeconds: number | null;
  /** The request id Warden audited the decision under, when known. */
  readonly requestId: string | null;
}

/** Reasons a retry can fix without a policy change: the authority or the upstream was unavailable. */
const TRANSIENT = new Set([
  'AuthorityUnreachable',
  'PolicySnapshotMissing',
  'PolicySnapshotStale',
  'ToolListUnavailable',
]);

export class WardenDeniedError extends Error implements Denial {
  override readonly name = 'WardenDeniedError';
  readonly reason: string;
  readonly reasons: readonly DenialReason[];
  readonly retryAfterSeconds: number | null;
  readonly requestId: string | null;
  /** The AccessPolicy (`namespace/name`) that decided; null when no policy matched or Warden refused before policy. */
  readonly policy: string | null;
  /** Index of the deciding rule in that policy's spec.rules. */
  readonly rule: number | null;
  /** Name of the `when` condition that failed, if one did. */
  readonly condition: string | null;

  constructor(d: Denial) {
    super(d.message);
    this.reason = d.reason;
    this.reasons = d.reasons;
    this.retryAfterSeconds = d.retryAfterSeconds;
    this.requestId = d.requestId;
    this.policy = d.reasons[0]?.policy ?? null;
    this.rule = d.reasons[0]?.rule ?? null;
    this.condition = d.reasons[0]?.condition ?? null;
  }

  /** True when retrying later may succeed without anyone changing policy. */
  get transient(): boolean {
    return this.retryAfterSeconds !== null || TRANSIENT.has(this.reason);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function reasonsOf(v: unknown, fallback: string): DenialReason[] {
  const list = Array.isArray(v) ? v.filter(isRecord) : [];
  const out = list.map((r) => ({
    policy: str(r.policy),
    rule: typeof r.rule === 'number' ? r.rule : null,
    condition: str(r.condition),
    message: str(r.message) ?? fallback,
  }));
  return out.length > 0 ? out : [{ policy: null, rule: null, condition: null, message: fallback }];
}

/** RFC 9110 Retry-After: delay seconds or an HTTP date. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: () => number = Date.now,
): number | null {
  if (!value) return null;
  const t = value.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const when = Date.parse(t);
  if (Number.isNaN(when)) return null;
  return Math.max(0, Math.ceil((when - now()) / 1000));
}

function retryOf(data: Record<string, unknown>): number | null {
  const v = data.retryAfterSeconds ?? data.retryAfter;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null;
}

/**
 * The denial in a broker's JSON body or JSON-RPC error `data` ({reason, reasons, message?}), or
 * null when the value is not one.
 */
export function denialFromData(
  data: unknown,
  message: string | null,
  extra: { retryAfter?: string | null; requestId?: string | null } = {},
): WardenDeniedError | null {
  if (!isRecord(data) || typeof data.reason !== 'string') return null;
  const msg = message ?? str(data.message) ?? data.reason;
  return new WardenDeniedError({
    reason: data.reason,
    message: msg,
    reasons: reasonsOf(data.reasons, msg),
    retryAfterSeconds: retryOf(data) ?? parseRetryAfter(extra.retryAfter ?? null),
    requestId: extra.requestId ?? null,
  });
}

/**
 * A WardenDeniedError for an error an MCP client raised (McpError: `code`, `message`, `data`), or
 * null when it is not a Warden denial. MCP prefixes messages with "MCP error <code>: "; that
 * prefix is removed.
 */
export function denialFromMcpError(err: unknown): WardenDeniedError | null {
  if (err instanceof WardenDeniedError) return err;
  if (!isRecord(err) && !(err instanceof Error)) return null;
  const e = err as unknown as Record<string, unknown>;
  if (e.code !== JSONRPC_POLICY_DENIED && e.code !== JSONRPC_UPSTREAM_UNAVAILABLE && !isRecord(e.data))
    return null;
  const message = str(e.message)?.replace(/^MCP error -?\d+: /, '') ?? null;
  return denialFromData(e.data, message);
}

/** Reads a refused HTTP response (403/429/503 with Warden's JSON body) into a denial, or null. */
export async function denialFromResponse(res: Response): Promise<WardenDeniedError | null> {
  if (res.ok) return null;
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('application/json')) return null;
  let body: unknown;
  try {
    body = await res.clone().json();
  } catch {
    return null;
  }
  // The HTTP proxy's body is the denial; an MCP refusal carries it as a JSON-RPC error's data.
  const rpc = isRecord(body) && isRecord(body.error) ? body.error : null;
  const data = rpc ? rpc.data : body;
  const message = rpc ? str(rpc.message) : null;
  return denialFromData(data, message, {
    retryAfter: res.headers.get('retry-after'),
    requestId: res.headers.get('x-request-id'),
  });
}
