/**
 * Path handling for the HTTP reverse proxy (pure). The agent asks for `/http/<provider>/<rest>`;
 * the broker forwards to `<target base path>/<rest>` and decides by policy on `/<rest>` decoded.
 * Anything that could make the path the policy saw differ from the path the upstream serves is
 * refused rather than normalised: dot segments (raw or %2e-encoded), `;` path parameters (raw or
 * %3B), encoded slashes, backslashes, `?` and `#`, double encoding (%25), needless encoding of
 * letters, digits, `-`, `.` and `_`, NUL and control characters, invalid or overlong UTF-8,
 * segments ending in `.` or space, text that Unicode NFKC normalisation would change, empty
 * interior segments, characters that are not legal in a URL path, and method-override query
 * parameters (`_method`). The table of what servers do with each, and why each is refused, is in
 * docs/adr/0007-broker.md; broker/path.differential.test.ts checks the accepted paths against
 * independent parsers.
 */
import { METHOD_OVERRIDE_QUERY_PARAMS } from './constants.js';

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
 * Checks each percent-escape: well-formed, and not one that smuggles a separator, a path
 * parameter or a second round of decoding (%2F /, %5C \, %3B ;, %3F ?, %23 #, %25 %, %00 NUL,
 * other control characters), nor a needless one of a letter, digit, `-` or `_` (servers that route
 * on the raw path and servers that decode first would read different names). %2E is left to the
 * dot checks after decoding, which name the problem better.
 */
function escapeProblem(segment: string): string | null {
  const stray = segment.replace(PERCENT, '');
  if (stray.includes('%')) return 'malformed percent-encoding (e.g. "%zz" or IIS-style "%u002e")';
  for (const m of segment.matchAll(PERCENT)) {
    const byte = Number.parseInt(m[1]!, 16);
    if (byte === 0x2f || byte === 0x5c) return `encoded slash or backslash (${m[0]}) is not allowed`;
    if (byte === 0x3b) {
      return `encoded ';' (${m[0]}) is not allowed: servlet containers and Spring strip path parameters`;
    }
    if (byte === 0x3f || byte === 0x23) {
      return `encoded '?' or '#' (${m[0]}) is not allowed: a server that decodes before routing reads a query or fragment`;
    }
    if (byte === 0x25) return `double encoding (${m[0]}) is not allowed`;
    if (byte < 0x20 || byte === 0x7f) return `encoded control character (${m[0]}) is not allowed`;
    if (/[A-Za-z0-9_-]/.test(String.fromCharCode(byte))) {
      return `needless percent-encoding of '${String.fromCharCode(byte)}' (${m[0]}) is not allowed; send the character itself`;
    }
  }
  return null;
}

/** Decoded name of a query parameter as PHP/Symfony would read it (`+` space, `.`/space/`[` → `_`). */
function queryParamName(raw: string): string | null {
  let name: string;
  try {
    name = decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return null;
  }
  const bracket = name.indexOf('[');
  // "a[b]" is an array named "a"; any other ".", " " or "[" becomes "_" (PHP, hence Symfony and Laravel).
  if (bracket > 0 && name.indexOf(']', bracket) > 0) name = name.slice(0, bracket);
  return name.replace(/[. []/g, '_').toLowerCase();
}

/** A query parameter that overrides the method (METHOD_OVERRIDE_QUERY_PARAMS), split on `&` and `;`. */
function queryProblem(query: string): string | null {
  // `;` separated parameters in older Rack, Python < 3.9.2 and Java servlet containers' own parsing.
  for (const pair of query.split(/[&;]/)) {
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const name = queryParamName(rawName);
    if (name === null) return `query parameter name '${rawName.slice(0, 32)}' is not valid UTF-8`;
    if (Object.hasOwn(METHOD_OVERRIDE_QUERY_PARAMS, name)) {
      return (
        `query parameter '${rawName.slice(0, 32)}' is not allowed: ${METHOD_OVERRIDE_QUERY_PARAMS[name]}, ` +
        'so the upstream would run a method other than the one decided; send the method itself'
      );
    }
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
  const overridden = query ? queryProblem(query.slice(1)) : null;
  if (overridden) return refuse(overridden);

  const segments = rawPath === '' ? [''] : rawPath.slice(1).split('/');
  const decoded: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const where = `path segment ${i + 1}`;
    if (seg === '' && i < segments.length - 1) return refuse(`${where} is empty ("//" is not allowed)`);
    if (seg.includes(';')) {
      return refuse(
        `${where} contains ';' (a path parameter): Tomcat, Jetty and Spring drop what follows ';' in a ` +
          'segment, so "..;" is read as ".." and "admin;x" as "admin"; send the path without \';\'',
      );
    }
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
      return refuse(
        `${where}: percent-encoding is not valid UTF-8 (overlong and truncated sequences are refused)`,
      );
    }
    if (text === '.' || text === '..') return refuse(`${where}: dot segments ("." / "..") are not allowed`);
    if (/%2e/i.test(seg)) return refuse(`${where}: encoded '.' (%2E) is not allowed; send '.' itself`);
    if (text.endsWith('.') || text.endsWith(' ')) {
      return refuse(
        `${where} ends in '.' or a space, which Windows-based servers drop ("admin." is "admin")`,
      );
    }
    // Printable ASCII is NFKC-stable (control characters were refused above); only other text needs the check.
    if (/[^ -~]/.test(text) && text.normalize('NFKC') !== text) {
      return refuse(
        `${where} changes under Unicode NFKC normalisation (e.g. full-width or decomposed characters), ` +
          'which some servers apply before routing; send the normalised (NFKC) form',
      );
    }
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
