/**
 * ES256 JWT signing with node:crypto. jose signs too, but through WebCrypto and several promise
 * hops per token; node:crypto's one-shot sign is ~4× faster (bench/authority.bench.ts), which
 * matters because every session and minted credential is a signature. Verification stays with
 * jose, whose checks (alg allow-list, kid lookup, exp/nbf/aud/iss/typ) we rely on.
 */
import { sign } from 'node:crypto';
import type { LoadedKey } from './keys.js';

const headerCache = new Map<string, string>();

function encodedHeader(kid: string, typ: string): string {
  const cacheKey = `${kid}\u0000${typ}`;
  let h = headerCache.get(cacheKey);
  if (!h) {
    h = Buffer.from(JSON.stringify({ alg: 'ES256', typ, kid })).toString('base64url');
    if (headerCache.size > 1000) headerCache.clear();
    headerCache.set(cacheKey, h);
  }
  return h;
}

/** Signs `payload` as a compact JWS: header {alg: ES256, typ, kid}. */
export function signJwt(key: LoadedKey, typ: string, payload: Record<string, unknown>): string {
  const input = `${encodedHeader(key.kid, typ)}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  // ieee-p1363 gives the raw r||s signature JWS requires (not DER).
  const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}
