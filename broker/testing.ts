/**
 * Builders and in-process edges for broker tests (real implementations of the broker's
 * interfaces, not mocks): a policy snapshot builder and a credential issuer that mints random
 * tokens the way the authority would, recording what it issued so tests can look for leaks.
 */
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import type { CredentialIssuer, CredentialRequest, IssuedCredential } from './credentials.js';
import { type PolicySnapshot, type PolicySnapshotInput, type Provider, SnapshotSchema } from './snapshot.js';

export function provider(
  name: string,
  url: string,
  protocol: Provider['protocol'] = 'MCP',
  header = 'Authorization',
): Provider {
  return { name, url, protocol, inject: { header, format: 'Bearer {token}' } };
}

export interface SnapshotOptions {
  version?: string;
  namespace?: string;
  agent?: string;
  suspended?: boolean;
  suspendReason?: string;
  labels?: Record<string, string>;
  policies?: Array<{ name: string; spec: unknown }>;
  providers?: Provider[];
  trustedIssuers?: Array<{ issuer: string; audiences: string[]; claims?: string[] }>;
  auditMode?: 'Required' | 'BestEffort';
}

export function snapshot(o: SnapshotOptions = {}): PolicySnapshot {
  const input: PolicySnapshotInput = {
    version: o.version ?? 'v1',
    namespace: o.namespace ?? 'team-a',
    agent: {
      name: o.agent ?? 'support-bot',
      labels: o.labels ?? {},
      serviceAccountName: 'support-bot',
      suspended: o.suspended ?? false,
      ...(o.suspendReason ? { suspendReason: o.suspendReason } : {}),
      userContext: { mode: 'Optional', trustedIssuers: o.trustedIssuers ?? [] },
      ...(o.auditMode ? { auditMode: o.auditMode } : {}),
    },
    policies: o.policies ?? [],
    invalidPolicies: [],
    providers: o.providers ?? [],
  };
  return SnapshotSchema.parse(input);
}

/** Issues random bearer tokens like a JWT provider would; remembers every value it issued. */
export class RecordingIssuer implements CredentialIssuer {
  readonly issued: Array<{ req: CredentialRequest; credential: IssuedCredential; token: string }> = [];
  /** Set to make issuance fail (authority down / refusing). */
  failWith: Error | null = null;
  constructor(
    private readonly ttlMs = 300_000,
    private readonly header = 'Authorization',
    /** Token source: opaque `wdn_…` tokens by default; `signedJwt` for Warden-shaped JWTs. */
    private readonly newToken: () => string = () => `wdn_${randomBytes(24).toString('base64url')}`,
  ) {}

  async issue(req: CredentialRequest): Promise<IssuedCredential> {
    if (this.failWith) throw this.failWith;
    const token = this.newToken();
    const credential: IssuedCredential = {
      id: randomUUID(),
      headers: { [this.header]: `Bearer ${token}` },
      expiresAt: Date.now() + this.ttlMs,
    };
    this.issued.push({ req, credential, token });
    return credential;
  }

  /** Every secret value ever issued (token and header value). */
  secrets(): string[] {
    return this.issued.flatMap((i) => [i.token, ...Object.values(i.credential.headers)]);
  }
}

const testSigningKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

/** A real ES256-signed JWT shaped like a Warden credential (at+jwt, random jti). */
export function signedJwt(claims: Record<string, unknown> = {}): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${enc({ alg: 'ES256', typ: 'at+jwt', kid: 'test-key' })}.${enc({
    iss: 'https://warden.test',
    sub: 'system:serviceaccount:team-a:support-bot',
    aud: 'jira',
    iat: now,
    exp: now + 300,
    jti: randomBytes(16).toString('base64url'),
    ...claims,
  })}`;
  const sig = sign('sha256', Buffer.from(input), { key: testSigningKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/**
 * The ways a careless upstream echoes a credential it received (`token`: the bare JWT or key),
 * by name. Written independently of scrub.ts, straight from Buffer and the URI/JSON encoders, so
 * a test that feeds these through the broker checks the scrubber against another implementation.
 */
export function echoForms(token: string): Record<string, string> {
  const bytes = Buffer.from(token);
  const [header = '', payload = '', signature = ''] = token.split('.');
  const sigBytes = Buffer.from(signature, 'base64url');
  const blob = (prefix: string) =>
    Buffer.from(`${prefix}{"authorization":"Bearer ${token}"}`).toString('base64');
  return {
    raw: token,
    'bearer header value': `Bearer ${token}`,
    base64: bytes.toString('base64'),
    'base64 unpadded': bytes.toString('base64').replace(/=+$/, ''),
    base64url: bytes.toString('base64url'),
    'base64url padded': bytes.toString('base64url').padEnd(Math.ceil(bytes.length / 3) * 4, '='),
    'base64 of a JSON document holding it (offset 0)': blob(''),
    'base64 of a JSON document holding it (offset 1)': blob(' '),
    'base64 of a JSON document holding it (offset 2)': blob('  '),
    'hex lower': bytes.toString('hex'),
    'hex upper': bytes.toString('hex').toUpperCase(),
    'percent-encoded (URI component)': encodeURIComponent(token),
    'percent-encoded every byte (upper)': [...bytes]
      .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
      .join(''),
    'percent-encoded every byte (lower)': [...bytes]
      .map((b) => `%${b.toString(16).padStart(2, '0')}`)
      .join(''),
    'JSON-escaped': JSON.stringify(token).slice(1, -1).replaceAll('/', '\\/'),
    'JSON \\u-escaped': [...token].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
    ...(signature
      ? {
          'JWT header segment': header,
          'JWT payload segment': payload,
          'JWT signature segment': signature,
          'JWT signature as standard base64': sigBytes.toString('base64'),
          'JWT signature as hex': sigBytes.toString('hex'),
          'JWT payload segment as base64': Buffer.from(payload).toString('base64'),
          'JWT signature segment percent-encoded every byte': [...Buffer.from(signature)]
            .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
            .join(''),
        }
      : {}),
  };
}
