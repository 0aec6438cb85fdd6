/**
 * How the shared gateway authenticates its callers and tells unauthenticated MCP clients where to
 * get a token (pure): the bearer token of a request, its kind, RFC 9728 Protected Resource
 * Metadata per MCP provider, and the RFC 6750 `WWW-Authenticate` challenge pointing to it (the
 * MCP authorization specification's discovery path).
 */
import { AGENT_TOKEN_TYP, TOKEN_TYPE_AGENT, WELL_KNOWN_PROTECTED_RESOURCE } from '../../core/constants.js';
import { TOKEN_TYPE_JWT } from '../authority-client.js';
import { providerNameProblem } from '../path.js';
/** Largest caller token the gateway forwards to the authority (the authority's own bound). */
export const MAX_CALLER_TOKEN_CHARS = 8192;

export type Bearer =
  | { readonly ok: true; readonly token: string; readonly type: string; readonly expiresAtMs: number | null }
  | { readonly ok: false; readonly missing: boolean; readonly message: string };

/** The caller's bearer token (RFC 6750 §2.1), its RFC 8693 type and its unverified expiry. */
export function bearerOf(authorization: string | string[] | undefined): Bearer {
  if (authorization === undefined || authorization === '') {
    return {
      ok: false,
      missing: true,
      message:
        'the gateway needs the agent’s token: send Authorization: Bearer <projected token with audience warden.dev/gateway, or a Warden agent token>',
    };
  }
  if (Array.isArray(authorization))
    return { ok: false, missing: false, message: 'Authorization: send the header once' };
  const m = /^Bearer +(\S+)$/i.exec(authorization.trim());
  if (!m) return { ok: false, missing: false, message: 'Authorization: expected "Bearer <token>"' };
  return callerToken(m[1]!, 'Authorization');
}

/**
 * A caller token as it arrived (the bearer token of an HTTP request, or the password of a
 * PostgreSQL session): its RFC 8693 type and unverified expiry, or what is wrong with it, the
 * message starting with `where`. The authority verifies it; this only refuses what cannot be one.
 */
export function callerToken(token: string, where: string): Bearer {
  if (!/^[A-Za-z0-9._~+/-]+=*$/.test(token)) {
    return { ok: false, missing: false, message: `${where}: the token is not a JWT` };
  }
  if (token.length > MAX_CALLER_TOKEN_CHARS) {
    return {
      ok: false,
      missing: false,
      message: `${where}: token longer than ${MAX_CALLER_TOKEN_CHARS} characters`,
    };
  }
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, missing: false, message: `${where}: the token is not a JWT` };
  const header = decodePart(parts[0]!);
  const payload = decodePart(parts[1]!);
  if (!header || !payload) return { ok: false, missing: false, message: `${where}: the token is not a JWT` };
  const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : null;
  return {
    ok: true,
    token,
    type: header.typ === AGENT_TOKEN_TYP ? TOKEN_TYPE_AGENT : TOKEN_TYPE_JWT,
    expiresAtMs: exp,
  };
}

function decodePart(part: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString());
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The MCP provider whose RFC 9728 metadata a path asks for (`/.well-known/oauth-protected-resource/mcp/<p>`), or null. */
export function protectedResourceProvider(path: string): string | null {
  const m = new RegExp(`^${WELL_KNOWN_PROTECTED_RESOURCE}/mcp/([^/?#]+)(?:/mcp)?/?$`).exec(path);
  if (!m || providerNameProblem(m[1]!) !== null) return null;
  return m[1]!;
}

/** Where an MCP provider's metadata is: RFC 9728 §3.1 inserts the well-known prefix before the resource's path. */
export function protectedResourceMetadataUrl(publicUrl: string, provider: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${WELL_KNOWN_PROTECTED_RESOURCE}/mcp/${provider}`;
}

/**
 * RFC 9728 metadata of one MCP provider behind the gateway: the resource (its MCP endpoint), the
 * authorization server that issues tokens for it (the Warden authority), bearer tokens in the
 * Authorization header only.
 */
export function protectedResourceMetadata(
  publicUrl: string,
  provider: string,
  authorizationServer: string,
): Record<string, unknown> {
  return {
    resource: `${publicUrl.replace(/\/+$/, '')}/mcp/${provider}`,
    authorization_servers: [authorizationServer],
    bearer_methods_supported: ['header'],
    resource_name: `${provider} (MCP, through the Warden gateway)`,
    resource_documentation: 'https://warden.dev/docs/gateway',
  };
}

/** RFC 6750 §3 challenge, with RFC 9728 §5.1 resource_metadata for MCP providers. */
export function wwwAuthenticate(o: {
  readonly resourceMetadata?: string | undefined;
  readonly error?: 'invalid_token' | 'invalid_request' | undefined;
  readonly description?: string | undefined;
}): string {
  const params = ['realm="warden-gateway"'];
  if (o.resourceMetadata) params.push(`resource_metadata="${o.resourceMetadata}"`);
  if (o.error) params.push(`error="${o.error}"`);
  // A quoted-string cannot carry '"' or '\' unescaped, nor control characters.
  if (o.description) params.push(`error_description="${quotable(o.description)}"`);
  return `Bearer ${params.join(', ')}`;
}

/** Replaces what an RFC 9110 quoted-string cannot hold as it is: '"', '\\' and control characters. */
function quotable(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0) ?? 0;
    out += ch === '"' || ch === '\\' || c < 0x20 || c === 0x7f ? ' ' : ch;
  }
  return out;
}
