/**
 * SigV4 signing of the agent's HTTP requests to an AWS target (CredentialProvider type AWS), with
 * the temporary credentials the authority obtained by web identity federation. The agent sends
 * unsigned requests; it never sees an access key.
 *
 * One parse, one serialisation: the agent's path (already checked and decoded by path.ts) and
 * query are parsed once here and serialised once, in the encoding SigV4 signs (RFC 3986, the
 * AWS URI encoding), and that serialisation is what is forwarded — so what the upstream
 * verifies is exactly what the policy decided and the broker signed. The body is hashed
 * (x-amz-content-sha256 is its real SHA-256, never UNSIGNED-PAYLOAD; ADR 0017). Whatever
 * signing material the agent sends (Authorization, any X-Amz-* header, X-Amz-* query
 * parameters of a presigned URL) is stripped or refused.
 *
 * The signer is @smithy/signature-v4, the one the AWS SDK for JavaScript uses, with node:crypto
 * hashing (@smithy/hash-node); ADR 0017 records the choice.
 */
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HeaderList } from './headers.js';

/** Temporary credentials and the SigV4 scope. Secret: never logged, never sent to the agent. */
export interface AwsSigningKeys {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly region: string;
  readonly service: string;
}

/** SigV4's URI encoding: every byte but A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex). */
export function awsUriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export type CanonicalTarget =
  | {
      readonly ok: true;
      /** The path sent upstream, each segment AWS-URI-encoded once. */
      readonly path: string;
      /** Decoded query parameters, in the order serialised. */
      readonly query: ReadonlyArray<readonly [string, string]>;
      /** path + "?" + query exactly as forwarded (and signed). */
      readonly requestTarget: string;
    }
  | { readonly ok: false; readonly message: string };

/**
 * The request-target to forward and sign.
 * @param basePath   the pathname of the provider's target URL ("/" or "/prefix")
 * @param policyPath the agent's path, decoded, as policy saw it (path.ts: no dot segments, no
 *                   encoded slashes, so splitting on "/" recovers its segments)
 * @param rawQuery   the agent's query without "?" (path.ts checked its characters and escapes)
 */
export function canonicalTarget(basePath: string, policyPath: string, rawQuery: string): CanonicalTarget {
  const base = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath;
  const segments = policyPath.slice(1).split('/');
  const path = `${base}/${segments.map(awsUriEncode).join('/')}`;
  const query: Array<[string, string]> = [];
  if (rawQuery !== '') {
    if (rawQuery.includes(';')) {
      return { ok: false, message: "query contains ';': separate parameters with '&'" };
    }
    for (const pair of rawQuery.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      let name: string;
      let value: string;
      try {
        // `+` is a space, as the Go, Java and Python servers behind AWS-compatible APIs read it.
        name = decodeURIComponent((eq < 0 ? pair : pair.slice(0, eq)).replaceAll('+', ' '));
        value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1).replaceAll('+', ' '));
      } catch {
        return {
          ok: false,
          message: `query parameter '${pair.slice(0, 32)}' is not valid percent-encoded UTF-8`,
        };
      }
      if (/^x-amz-/i.test(name)) {
        return {
          ok: false,
          message: `query parameter '${name.slice(0, 32)}' is not allowed: the broker signs the request (presigned-URL parameters X-Amz-* would replace its signature); send the request without it`,
        };
      }
      query.push([name, value]);
    }
  }
  // The order SigV4 canonicalises in (by encoded name, then encoded value): forwarded as signed.
  const encoded = query
    .map(([n, v]) => [awsUriEncode(n), awsUriEncode(v)] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  const serialised = encoded.map(([n, v]) => `${n}=${v}`).join('&');
  return {
    ok: true,
    path,
    query,
    requestTarget: serialised ? `${path}?${serialised}` : path,
  };
}

/**
 * The agent's headers without any signing material: Authorization and every X-Amz-* header (the
 * broker sets x-amz-date, x-amz-content-sha256 and x-amz-security-token itself; other X-Amz-*
 * headers such as x-amz-copy-source or x-amz-acl would make the upstream act on an object or
 * grant the policy did not decide). `stripped` names what was removed, for the audit trail.
 */
export function withoutSigningHeaders(headers: HeaderList): { headers: HeaderList; stripped: string[] } {
  const kept: HeaderList = [];
  const stripped: string[] = [];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === 'authorization' || lower.startsWith('x-amz-')) {
      if (!stripped.includes(lower)) stripped.push(lower);
      continue;
    }
    kept.push([name, value]);
  }
  return { headers: kept, stripped };
}

export interface SignInput {
  readonly keys: AwsSigningKeys;
  readonly method: string;
  /** The upstream origin (protocol, host, port). */
  readonly url: URL;
  readonly target: Extract<CanonicalTarget, { ok: true }>;
  /** Headers to forward (already stripped); folded per name with "," as SigV4 canonicalises. */
  readonly headers: HeaderList;
  /** The whole body (hashed into the signature), or undefined for none. */
  readonly body: Buffer | undefined;
  readonly now: Date;
}

/** Signs one request; returns the headers to forward (the signature among them). */
export async function signAwsRequest(s: SignInput): Promise<HeaderList> {
  const folded: Record<string, string> = {};
  for (const [name, value] of s.headers) {
    const k = name.toLowerCase();
    if (k === 'host' || k === 'content-length') continue;
    folded[k] = folded[k] === undefined ? value : `${folded[k]},${value}`;
  }
  folded.host = s.url.host;
  if (s.body !== undefined) folded['content-length'] = String(s.body.length);
  const query: Record<string, string | string[]> = {};
  for (const [n, v] of s.target.query) {
    const prev = query[n];
    query[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: s.keys.accessKeyId,
      secretAccessKey: s.keys.secretAccessKey,
      sessionToken: s.keys.sessionToken,
    },
    region: s.keys.region,
    service: s.keys.service,
    sha256: Hash.bind(null, 'sha256'),
    // S3 signs the path as sent; every other service signs it encoded once more (SigV4 spec).
    uriEscapePath: s.keys.service !== 's3',
    applyChecksum: true,
  });
  const signed = await signer.sign(
    {
      method: s.method,
      protocol: s.url.protocol,
      hostname: s.url.hostname,
      ...(s.url.port ? { port: Number(s.url.port) } : {}),
      path: s.target.path,
      query,
      headers: folded,
      ...(s.body !== undefined ? { body: s.body } : {}),
    },
    { signingDate: s.now },
  );
  return Object.entries(signed.headers).map(([n, v]) => [n, v]);
}
