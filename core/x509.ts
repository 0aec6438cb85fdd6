/**
 * Small X.509 helpers: a CA and certificates it signs, all ECDSA P-256.
 * Used by the webhook's self-managed TLS and by the local control-plane harness.
 * Keys are generated in memory and returned as PEM; nothing is written here.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// The library types its provider with the DOM Crypto; Node's webcrypto is the same API.
x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyPairPem {
  /** PKCS#8 private key. */
  keyPem: string;
  /** SubjectPublicKeyInfo public key. */
  publicKeyPem: string;
}

export interface CertificatePem extends KeyPairPem {
  certPem: string;
  notAfter: Date;
}

export interface IssueOptions {
  commonName: string;
  organization?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Lifetime from `now`. */
  validityMs: number;
  usage: 'server' | 'client' | 'server+client';
  now?: Date;
}

// Backdate notBefore a little so peers with a slightly slow clock accept a fresh cert.
const CLOCK_SKEW_MS = 5 * 60 * 1000;

function serial(): string {
  // Positive 16-byte serial (the leading nibble kept < 8 so DER does not read it as negative).
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] ?? 0) & 0x7f;
  return Buffer.from(b).toString('hex');
}

function dn(commonName: string, organization: string[] = []): string {
  // Escape DN specials so a name like "a,b" cannot inject RDNs.
  const esc = (s: string) => s.replace(/([,+"\\<>;=])/g, '\\$1');
  return [`CN=${esc(commonName)}`, ...organization.map((o) => `O=${esc(o)}`)].join(', ');
}

async function exportPair(keys: webcrypto.CryptoKeyPair): Promise<KeyPairPem> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return {
    keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
    publicKeyPem: x509.PemConverter.encode(spki, 'PUBLIC KEY'),
  };
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, [
    'sign',
    'verify',
  ])) as unknown as webcrypto.CryptoKeyPair;
}

/** An ECDSA P-256 key pair as PEM (e.g. for a service-account signing key). */
export async function generateKeyPair(): Promise<KeyPairPem> {
  return exportPair(await generateKeys());
}

export interface CertificateAuthority extends CertificatePem {
  issue(opts: IssueOptions): Promise<CertificatePem>;
}

/** Creates a self-signed CA that can issue leaf certificates. */
export async function createCertificateAuthority(
  commonName: string,
  validityMs: number,
  now = new Date(),
): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const notAfter = new Date(now.getTime() + validityMs);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: dn(commonName),
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter,
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pair = await exportPair(keys);
  return {
    ...pair,
    certPem: cert.toString('pem'),
    notAfter,
    issue: (opts) => issueWith(cert, keys, opts),
  };
}

/** Rebuilds a CA from stored PEM (e.g. read back from a Secret) so it can issue again. */
export async function loadCertificateAuthority(
  certPem: string,
  keyPem: string,
): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(certPem);
  const privateKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(keyPem),
    ALG,
    true,
    ['sign'],
  );
  const publicKey = await cert.publicKey.export(ALG, ['verify']);
  const keys = { privateKey, publicKey } as unknown as webcrypto.CryptoKeyPair;
  const spki = await webcrypto.subtle.exportKey('spki', publicKey as unknown as webcrypto.CryptoKey);
  return {
    certPem,
    keyPem,
    publicKeyPem: x509.PemConverter.encode(spki, 'PUBLIC KEY'),
    notAfter: cert.notAfter,
    issue: (opts) => issueWith(cert, keys, opts),
  };
}

async function issueWith(
  caCert: x509.X509Certificate,
  caKeys: webcrypto.CryptoKeyPair,
  opts: IssueOptions,
): Promise<CertificatePem> {
  const now = opts.now ?? new Date();
  const keys = await generateKeys();
  const notAfter = new Date(now.getTime() + opts.validityMs);
  const usages: string[] = [];
  if (opts.usage !== 'client') usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (opts.usage !== 'server') usages.push(x509.ExtendedKeyUsage.clientAuth);
  const altNames = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: dn(opts.commonName, opts.organization),
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions,
  });
  return { ...(await exportPair(keys)), certPem: cert.toString('pem'), notAfter };
}
