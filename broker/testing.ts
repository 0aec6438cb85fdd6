/**
 * Builders and in-process edges for broker tests (real implementations of the broker's
 * interfaces, not mocks): a policy snapshot builder and a credential issuer that mints random
 * tokens the way the authority would, recording what it issued so tests can look for leaks.
 */
import { randomBytes, randomUUID } from 'node:crypto';
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
  ) {}

  async issue(req: CredentialRequest): Promise<IssuedCredential> {
    if (this.failWith) throw this.failWith;
    const token = `wdn_${randomBytes(24).toString('base64url')}`;
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
