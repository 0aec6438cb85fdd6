/**
 * The webhook's self-managed TLS, decided without I/O: what the Secret holds,
 * when to issue a new CA + serving certificate, and what the caBundle is.
 * tls-store.ts does the reads and writes.
 *
 * Each issue creates a fresh CA and signs one serving certificate with it; the
 * CA key is discarded right away (nothing can sign with it later). The caBundle
 * is the new CA plus every older CA in the Secret that has not expired, so the
 * API server trusts both certificates while replicas switch over.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { createCertificateAuthority } from '../core/x509.js';

/** Keys of the kubernetes.io/tls Secret. */
export const SECRET_CERT_KEY = 'tls.crt';
export const SECRET_KEY_KEY = 'tls.key';
export const SECRET_CA_KEY = 'ca.crt';

/** One year: long enough that rotation is rare, short enough that it is exercised. */
export const DEFAULT_VALIDITY_MS = 365 * 24 * 3600 * 1000;
/** Rotate once this fraction of the lifetime has passed. */
export const ROTATE_AT_FRACTION = 2 / 3;

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  /** PEM of the CAs to trust, newest first. */
  caBundlePem: string;
}

export interface TlsNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/** The in-cluster DNS names of a Service. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/** Reads the material from Secret data (base64 values); undefined when a key is missing. */
export function materialFromSecretData(data: Record<string, string> | undefined): TlsMaterial | undefined {
  const get = (k: string) => (data?.[k] ? Buffer.from(data[k], 'base64').toString('utf8') : undefined);
  const certPem = get(SECRET_CERT_KEY);
  const keyPem = get(SECRET_KEY_KEY);
  const caBundlePem = get(SECRET_CA_KEY);
  if (!certPem || !keyPem || !caBundlePem) return undefined;
  return { certPem, keyPem, caBundlePem };
}

export function secretDataFromMaterial(m: TlsMaterial): Record<string, string> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    [SECRET_CERT_KEY]: b64(m.certPem),
    [SECRET_KEY_KEY]: b64(m.keyPem),
    [SECRET_CA_KEY]: b64(m.caBundlePem),
  };
}

export type TlsPlan =
  | { action: 'use'; material: TlsMaterial; rotateAt: Date }
  | { action: 'issue'; reason: 'missing' | 'unreadable' | 'due' | 'names-changed' | 'untrusted' };

function splitPems(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The moment a certificate valid from notBefore to notAfter should be replaced. */
export function rotationTime(notBefore: Date, notAfter: Date): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  return new Date(notBefore.getTime() + life * ROTATE_AT_FRACTION);
}

/** Decides whether the stored material can be served as is. */
export async function planTls(stored: TlsMaterial | undefined, names: TlsNames, now: Date): Promise<TlsPlan> {
  if (stored === undefined) return { action: 'issue', reason: 'missing' };
  let cert: x509.X509Certificate;
  let cas: x509.X509Certificate[];
  try {
    cert = new x509.X509Certificate(stored.certPem);
    cas = splitPems(stored.caBundlePem).map((p) => new x509.X509Certificate(p));
  } catch {
    return { action: 'issue', reason: 'unreadable' };
  }
  // The serving certificate must chain to a CA in the bundle, or the API server will refuse it.
  const signedBy = await Promise.all(
    cas.map((ca) => cert.verify({ publicKey: ca, signatureOnly: true }).catch(() => false)),
  );
  if (!signedBy.includes(true)) return { action: 'issue', reason: 'untrusted' };
  const rotateAt = rotationTime(cert.notBefore, cert.notAfter);
  if (now.getTime() >= rotateAt.getTime()) return { action: 'issue', reason: 'due' };
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const have = new Set((san?.names.items ?? []).map((n) => `${n.type}:${n.value}`));
  const want = [...names.dnsNames.map((d) => `dns:${d}`), ...names.ipAddresses.map((ip) => `ip:${ip}`)];
  if (!want.every((w) => have.has(w))) return { action: 'issue', reason: 'names-changed' };
  return { action: 'use', material: stored, rotateAt };
}

/**
 * A new CA and serving certificate. `previousCaBundlePem` (the bundle being
 * replaced) contributes its still-valid CAs, so serving certificates signed by
 * them stay trusted until every replica has switched.
 */
export async function issueMaterial(
  names: TlsNames,
  now: Date,
  validityMs = DEFAULT_VALIDITY_MS,
  previousCaBundlePem = '',
): Promise<TlsMaterial> {
  // A unique CA name, so CAs in the bundle are told apart in logs and by `openssl`.
  const caName = `warden-webhook-ca-${now.toISOString()}-${randomBytes(4).toString('hex')}`;
  const ca = await createCertificateAuthority(caName, validityMs, now);
  const leaf = await ca.issue({
    commonName: names.dnsNames[0] ?? names.ipAddresses[0] ?? 'warden-webhook',
    dnsNames: names.dnsNames,
    ipAddresses: names.ipAddresses,
    validityMs,
    usage: 'server',
    now,
  });
  const keep = splitPems(previousCaBundlePem).filter((pem) => {
    try {
      return new x509.X509Certificate(pem).notAfter.getTime() > now.getTime();
    } catch {
      return false;
    }
  });
  const caBundlePem = `${[ca.certPem.trim(), ...keep.filter((p) => p.trim() !== ca.certPem.trim())].join('\n')}\n`;
  return { certPem: leaf.certPem, keyPem: leaf.keyPem, caBundlePem };
}
