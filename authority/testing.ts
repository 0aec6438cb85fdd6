/** Builders for authority tests (not used in production code). */
import { createHmac } from 'node:crypto';
import { generateStoredKey, type KeyRing, type StoredKey } from './keys.js';

export const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A key ring with one key active since `at`. */
export function ringAt(at: Date): KeyRing {
  return { keys: [generateStoredKey(at, at)] };
}

/** A deterministic key generator for rotation tests: kids k1, k2, ... with real keys. */
export function countingGenerator(): (now: Date, activateAt: Date) => StoredKey {
  let n = 0;
  const template = generateStoredKey(new Date(0), new Date(0));
  return (now, activateAt) => ({
    ...template,
    kid: `k${++n}`,
    createdAt: now.toISOString(),
    activateAt: activateAt.toISOString(),
  });
}

/** An unsigned JWT (alg none). */
export function unsignedJwt(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  return `${b64({ ...header, alg: 'none' })}.${b64(payload)}.`;
}

/** HS256 JWT keyed with `secret` (the algorithm-confusion attack uses the public key as secret). */
export function hs256Jwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  secret: string | Buffer,
): string {
  const input = `${b64({ ...header, alg: 'HS256' })}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
