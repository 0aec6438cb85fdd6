/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, with
 * node:crypto. Implemented here rather than borrowed from pg's internal lib/crypto/sasl.js,
 * which is not part of pg's public API (no exports entry, may change in any release).
 *
 * The server signature is verified, so a broker never relays a session to an upstream that
 * could not prove it knows the role's verifier. No channel binding (the upstream connection
 * is plain TCP; see docs/adr/0008-credentials.md).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** Iteration counts the client accepts: RFC 7677 asks for ≥ 4096; the ceiling bounds CPU a hostile server can make us spend. */
export const MIN_ITERATIONS = 4096;
export const MAX_ITERATIONS = 100_000;

const hmac = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest();
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ (b[i] as number)));

/** Parses `k=v,k=v` attributes (values may contain '='). */
function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part.slice(0, 1), part.slice(2));
  }
  return out;
}

export class ScramError extends Error {
  constructor(message: string) {
    super(`SCRAM-SHA-256: ${message}`);
    this.name = 'ScramError';
  }
}

export class ScramClient {
  private readonly clientFirstBare: string;
  private expectedServerSignature: Buffer | undefined;

  /**
   * @param user PostgreSQL ignores the SCRAM user name (it uses the startup packet's); '*' as libpq does.
   */
  constructor(
    private readonly password: string,
    private readonly nonce: string = randomBytes(18).toString('base64'),
    user = '*',
  ) {
    this.clientFirstBare = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${nonce}`;
  }

  /** client-first-message: GS2 header "n,," (no channel binding) + bare message. */
  clientFirstMessage(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** client-final-message for the server-first-message; remembers the expected server signature. */
  clientFinalMessage(serverFirst: string): string {
    const attrs = attributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !salt || !attrs.has('i')) throw new ScramError('server-first-message lacks r, s or i');
    if (!nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) {
      throw new ScramError('server nonce does not extend the client nonce');
    }
    if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
      throw new ScramError(`iteration count ${attrs.get('i')} outside ${MIN_ITERATIONS}..${MAX_ITERATIONS}`);
    }
    const saltedPassword = pbkdf2Sync(this.password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`; // biws = base64("n,,")
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final-message; throws unless the server proved it knows the verifier. */
  verifyServerFinal(serverFinal: string): void {
    const attrs = attributes(serverFinal);
    if (attrs.has('e')) throw new ScramError(`server reported error '${attrs.get('e')}'`);
    const v = attrs.get('v');
    if (!this.expectedServerSignature || !v) throw new ScramError('server-final-message without verifier');
    const got = Buffer.from(v, 'base64');
    if (
      got.length !== this.expectedServerSignature.length ||
      !timingSafeEqual(got, this.expectedServerSignature)
    ) {
      throw new ScramError('server signature mismatch: the upstream does not know this role’s verifier');
    }
  }
}
