/**
 * Outbound HTTPS GET for identity-provider discovery and JWKS. The global fetch cannot be given a
 * private CA per call; clusters with an in-house IdP (and the tests' own OIDC provider) need one,
 * so this wraps node:https with an optional CA bundle and a response size cap.
 */
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';

export type FetchLike = (
  url: string,
  init: { headers?: Headers; method: 'GET'; redirect?: 'manual'; signal?: AbortSignal },
) => Promise<Response>;

const MAX_RESPONSE_BYTES = 1024 * 1024;

/** A fetch for https URLs only, trusting the system roots plus `ca` when given. */
export function httpsFetch(opts: { ca?: string | Buffer; timeoutMs?: number } = {}): FetchLike {
  const roots = opts.ca === undefined ? undefined : [...rootCertificates, opts.ca];
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const u = new URL(url);
      if (u.protocol !== 'https:') {
        reject(new Error(`refusing to fetch ${u.origin}: identity-provider URLs must be https`));
        return;
      }
      const headers: Record<string, string> = { accept: 'application/json' };
      init.headers?.forEach((v, k) => {
        headers[k] = v;
      });
      const req = request(
        u,
        // Node's `ca` replaces its root store: add the private CA to the roots rather than trust it alone.
        { method: 'GET', headers, ca: roots, signal: init.signal, timeout: opts.timeoutMs ?? 5000 },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              req.destroy(new Error(`${u.origin} sent more than ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              if (typeof v === 'string') h.set(k, v);
            }
            resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 502, headers: h }));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out fetching ${u.origin}${u.pathname}`)));
      req.on('error', reject);
      req.end();
    });
}
