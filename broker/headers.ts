/**
 * Header hygiene (pure). The agent is untrusted: whatever credential it sends is dropped, the
 * broker's own control headers never reach the upstream, hop-by-hop headers are removed, a header
 * that changes how the upstream routes or authorises the request (ROUTING_HEADERS: method
 * overrides, path rewrites, forwarding headers) refuses an HTTP-proxy request, and any value
 * carrying CR, LF or NUL refuses the whole request (a header injection attempt, even though Node's
 * parser already rejects most of them on the wire).
 */
import { HEADER_CONTEXT, HEADER_REQUEST_ID, HEADER_USER_TOKEN } from '../core/constants.js';
import { REDACTED, ROUTING_HEADERS } from './constants.js';

export type HeaderList = Array<[name: string, value: string]>;

/** RFC 9110 §7.6.1 hop-by-hop headers plus the non-standard ones proxies still see. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Headers that carry credentials (a DPoP proof included); never forwarded from the agent. */
export const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'cookie2',
  'dpop',
]);

/**
 * The ROUTING_HEADERS entry a header name stands for, if any: case-insensitive, and `_` read as
 * `-` because CGI, Rack and PHP map `X_HTTP_METHOD_OVERRIDE` and `X-HTTP-Method-Override` to the
 * same variable.
 */
export function routingHeader(name: string): string | undefined {
  return routingHeaderOfLower(name.toLowerCase());
}

/** ROUTING_HEADERS' names: a Set lookup hashes the name, a property lookup would intern it first. */
const ROUTING_HEADER_NAMES: ReadonlySet<string> = new Set(Object.keys(ROUTING_HEADERS));

/** routingHeader of a name already in lower case. */
function routingHeaderOfLower(lower: string): string | undefined {
  const key = lower.includes('_') ? lower.replaceAll('_', '-') : lower;
  return ROUTING_HEADER_NAMES.has(key) ? key : undefined;
}

/** The broker's own headers: consumed by the broker, never forwarded. */
const WARDEN = new Set([HEADER_USER_TOKEN, HEADER_CONTEXT]);

/** Headers the MCP gateway forwards (everything else is dropped): the streamable HTTP transport's own. */
const MCP_FORWARD = new Set([
  'accept',
  'content-type',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
  'user-agent',
  HEADER_REQUEST_ID,
]);

export function hasControlChars(value: string): boolean {
  return /[\r\n\0]/.test(value);
}

/** Pairs from Node's `rawHeaders` (name, value, name, value...). */
export function pairs(rawHeaders: readonly string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) out.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return out;
}

export interface UpstreamHeaderOptions {
  /** 'mcp' forwards only the transport's headers; 'http' forwards everything not stripped. */
  readonly mode: 'mcp' | 'http';
  /** The provider's credential header (CredentialProvider spec.inject.header): stripped from the agent's request. */
  readonly injectHeader: string;
  /** Headers to set (the issued credential); their names are stripped from the agent's request too. */
  readonly inject: ReadonlyArray<readonly [string, string]>;
}

export type UpstreamHeaders =
  | { readonly ok: true; readonly headers: HeaderList; readonly stripped: readonly string[] }
  | { readonly ok: false; readonly message: string };

/**
 * Build the headers sent upstream from the agent's headers: strip, then inject. `stripped` names
 * (never values) what was removed, for the audit trail.
 */
export function upstreamRequestHeaders(agent: HeaderList, opts: UpstreamHeaderOptions): UpstreamHeaders {
  // Indexed loops, each name lower-cased once, sets only when needed: this runs for every proxied
  // request, and its allocations were the largest share of Warden's own per call (docs/perf/broker-cpu.md).
  const injected = [opts.injectHeader.toLowerCase()];
  for (let i = 0; i < opts.inject.length; i++)
    injected.push((opts.inject[i] as readonly [string, string])[0].toLowerCase());
  const lowers = new Array<string>(agent.length);
  let connectionListed: Set<string> | undefined;
  for (let i = 0; i < agent.length; i++) {
    const h = agent[i] as [string, string];
    const name = h[0];
    const value = h[1];
    if (hasControlChars(value) || hasControlChars(name)) {
      return { ok: false, message: `header '${name.slice(0, 64)}' contains CR, LF or NUL` };
    }
    const lower = name.toLowerCase();
    lowers[i] = lower;
    const routing = routingHeaderOfLower(lower);
    // HTTP proxy: refused, not stripped (ADR 0007). MCP mode forwards an allow-list, so it is dropped below.
    if (routing && opts.mode === 'http') {
      return {
        ok: false,
        message:
          `header '${name.slice(0, 64)}' is not allowed: ${ROUTING_HEADERS[routing]}, so the upstream ` +
          'would act on something other than the method and path the broker decided; send the request without it',
      };
    }
    if (lower === 'connection') {
      connectionListed ??= new Set<string>();
      for (const token of value.split(',')) connectionListed.add(token.trim().toLowerCase());
    }
  }
  const headers: HeaderList = [];
  const stripped: string[] = [];
  for (let i = 0; i < agent.length; i++) {
    const lower = lowers[i] as string;
    // Routing headers never get here: refused above in 'http' mode, off the allow-list in 'mcp' mode.
    const drop =
      HOP_BY_HOP.has(lower) ||
      connectionListed?.has(lower) === true ||
      CREDENTIAL_HEADERS.has(lower) ||
      injected.includes(lower) ||
      lower === 'host' ||
      WARDEN.has(lower) ||
      lower === 'accept-encoding' ||
      (opts.mode === 'mcp' && !MCP_FORWARD.has(lower) && lower !== 'content-length');
    if (drop) {
      if (CREDENTIAL_HEADERS.has(lower) || injected.includes(lower)) stripped.push(lower);
      continue;
    }
    const h = agent[i] as [string, string];
    const name = h[0];
    const value = h[1];
    headers.push([name, value]);
  }
  // Plain bodies only: the scrubber must see the bytes it scrubs.
  headers.push(['accept-encoding', 'identity']);
  for (const [name, value] of opts.inject) {
    if (hasControlChars(value) || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
      // The credential came from the authority; never echo it, even in an error.
      return { ok: false, message: 'the issued credential cannot be sent as a header' };
    }
    headers.push([name, value]);
  }
  return { ok: true, headers, stripped };
}

/**
 * Response headers for the agent: hop-by-hop and Set-Cookie dropped (a session cookie is a
 * credential too), Content-Length dropped when the body may be rewritten, values carrying a
 * secret redacted.
 */
export function agentResponseHeaders(
  upstream: HeaderList,
  secrets: readonly string[],
  opts: { readonly bodyRewritten: boolean },
): HeaderList {
  let connectionListed: Set<string> | undefined;
  const lowers = new Array<string>(upstream.length);
  for (let i = 0; i < upstream.length; i++) {
    const h = upstream[i] as [string, string];
    const name = h[0];
    const value = h[1];
    const lower = name.toLowerCase();
    lowers[i] = lower;
    if (lower === 'connection') {
      connectionListed ??= new Set<string>();
      for (const t of value.split(',')) connectionListed.add(t.trim().toLowerCase());
    }
  }
  const out: HeaderList = [];
  for (let i = 0; i < upstream.length; i++) {
    const lower = lowers[i] as string;
    if (HOP_BY_HOP.has(lower) || connectionListed?.has(lower) === true) continue;
    if (lower === 'set-cookie' || lower === 'set-cookie2') continue;
    if (
      opts.bodyRewritten &&
      (lower === 'content-length' || lower === 'content-encoding' || lower === 'etag')
    )
      continue;
    const h = upstream[i] as [string, string];
    const name = h[0];
    const value = h[1];
    out.push([name, redactString(value, secrets)]);
  }
  return out;
}

/** Replace every occurrence of each secret (longest first, so a formatted value wins over its token). */
export function redactString(text: string, secrets: readonly string[]): string {
  // Most text (every header of every response) holds none: find that out before sorting a copy.
  if (!secrets.some((s) => s.length > 0 && text.includes(s))) return text;
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length > 0 && out.includes(s)) out = out.split(s).join(REDACTED);
  }
  return out;
}
