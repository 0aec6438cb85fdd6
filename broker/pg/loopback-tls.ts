/**
 * The certificate the broker's PostgreSQL endpoint shows an agent that asks for TLS when it was
 * given none (ADR 0008, "PostgreSQL clients' habits"): a throwaway CA whose key is dropped at
 * once, and a serving certificate from it for the names an agent connects to on loopback. Kept
 * in its own module so the endpoint loads the X.509 library only when an agent asks for TLS.
 */
import { createCertificateAuthority } from '../../core/x509.js';

/** A PEM certificate (chain) and its private key. */
export interface PgTlsMaterial {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Names the generated loopback certificate carries (what an agent connects to). */
const LOOPBACK_NAMES = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
const GENERATED_VALIDITY_MS = 365 * 24 * 3600 * 1000;

/** A self-signed CA and a loopback serving certificate from it, in memory (the CA key is dropped). */
export async function generateLoopbackTls(now = new Date()): Promise<PgTlsMaterial & { caPem: string }> {
  const ca = await createCertificateAuthority('warden-broker-postgresql', GENERATED_VALIDITY_MS, now);
  const leaf = await ca.issue({
    commonName: 'localhost',
    ...LOOPBACK_NAMES,
    validityMs: GENERATED_VALIDITY_MS,
    usage: 'server',
    now,
  });
  return { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: ca.certPem };
}
