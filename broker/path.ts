/**
 * Path handling for the HTTP reverse proxy (pure). The agent asks for `/http/<provider>/<rest>`;
 * the broker forwards to `<target base path>/<rest>` and decides by policy on `/<rest>` decoded.
 * Anything that could make the path the policy saw differ from the path the upstream serves is
 * refused rather than normalised: dot segments (raw or %2e-encoded), encoded slashes and
 * backslashes, double encoding (%25), NUL and control characters, empty interior segments, and
 * characters that are not legal in a URL path. See docs/adr/0007-broker.md.
 */

export type NormalisedPath =
  | {
      readonly ok: true;
      /** Decoded path relative to the target, as policy globs see it (no query). */
      readonly policyPath: string;
      /** Request-target sent upstream: target base path + the agent's path (still encoded) + query. */
      readonly upstreamPath: string;
    }
  | { readonly ok: false; readonly message: string };

/** RFC 3986 pchar minus "%" handled separately: unreserved / sub-delims / ":" / "@". */
const PCHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%]*$/;
/** Query: pchar / "/" / "?". */
const QUERY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/;
const PERCENT = /%([0-9A-Fa-f]{2})/g;

function refuse(message: string): NormalisedPath {
  return { ok: false, message };
}

/**
 * Checks each percent-escape: well-formed, and not one that smuggles a separator or a second round
 * of decoding (%2F /, %5C \, %25 %, %00 NUL, other control characters, %2E handled by dot checks).
 */
function escapeProblem(segment: string): string | null {
  const stray = segment.replace(PERCENT, '');
  if (stray.includes('%')) return 'malformed percent-encoding';
  for (const m of segment.matchAll(PERCENT)) {
    const byte = Number.parseInt(m[1]!, 16);
    if (byte === 0x2f || byte === 0x5c) return `encoded slash or backslash (${m[0]}) is not allowed`;
    if (byte === 0x25) return `double encoding (${m[0]}) is not allowed`;
    if (byte < 0x20 || byte === 0x7f) return `encoded control character (${m[0]}) is not allowed`;
  }
  return null;
}

/**
 * @param rest   the raw request-target after `/http/<provider>` (may be "" or start with "/" or "?")
 * @param base   the pathname of the provider's target URL (e.g. "/" or "/api")
 */
export function normaliseProxyPath(rest: string, base: string): NormalisedPath {
  const q = rest.indexOf('?');
  const rawPath = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q);
  if (rawPath !== '' && !rawPath.startsWith('/')) return refuse('path must start with "/"');
  if (rawPath.length > 4096) return refuse(`path is ${rawPath.length} characters long; the limit is 4096`);
  if (query.length > 8192) return refuse(`query is ${query.length} characters long; the limit is 8192`);
  if (!QUERY.test(query.slice(1))) return refuse('query contains characters that are not allowed in a URL');
  if (/%(?![0-9A-Fa-f]{2})/.test(query)) return refuse('query has malformed percent-encoding');

  const segments = rawPath === '' ? [''] : rawPath.slice(1).split('/');
  const decoded: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const where = `path segment ${i + 1}`;
    if (seg === '' && i < segments.length - 1) return refuse(`${where} is empty ("//" is not allowed)`);
    if (!PCHAR.test(seg)) {
      return refuse(
        `${where} contains characters that are not allowed in a URL path (e.g. "\\", space, control)`,
      );
    }
    const problem = escapeProblem(seg);
    if (problem) return refuse(`${where}: ${problem}`);
    let text: string;
    try {
      text = decodeURIComponent(seg);
    } catch {
      return refuse(`${where}: percent-encoding is not valid UTF-8`);
    }
    if (text === '.' || text === '..') return refuse(`${where}: dot segments ("." / "..") are not allowed`);
    decoded.push(text);
  }

  const basePath = base.endsWith('/') ? base.slice(0, -1) : base;
  const relative = `/${segments.join('/')}`;
  const upstream = `${basePath}${relative}`;
  // Defence in depth: with dot segments and encoded separators refused this always holds.
  if (!(upstream === basePath || upstream.startsWith(`${basePath}/`))) {
    return refuse("path escapes the target's base path");
  }
  return { ok: true, policyPath: `/${decoded.join('/')}`, upstreamPath: `${upstream}${query}` };
}

/** DNS-1123 label rules for provider names in the URL (CredentialProvider names are DNS subdomains). */
export function providerNameProblem(name: string): string | null {
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
    return `'${name.slice(0, 64)}' is not a valid CredentialProvider name (lower-case DNS-1123 subdomain)`;
  }
  return null;
}
