/**
 * PostgreSQL SCRAM-SHA-256 password verifiers (RFC 5802/7677, the format pg_authid stores):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
 *
 * Sending the verifier instead of the password in CREATE ROLE keeps the plaintext out of the
 * server's statement log, pg_stat_statements and any proxy in between — the same reason psql's
 * \password hashes client-side. Warden's passwords are random base64url, so SASLprep is the
 * identity and is not needed.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/** PostgreSQL's default scram_iterations. */
export const SCRAM_ITERATIONS = 4096;

export function scramSha256Verifier(
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = SCRAM_ITERATIONS,
): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
