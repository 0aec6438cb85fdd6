/**
 * The common shape of every credential minter: the authority, after it has re-checked policy,
 * hands a minter the agent, the (optional) human, the CredentialProvider and the deciding rule's
 * credential settings; the minter returns what the broker injects upstream and, where the
 * upstream supports it, a way to revoke it early (kill switch).
 *
 * Minters never log, and never put a secret into an error message: errors name the provider,
 * the Secret and the field, not the value.
 */
import type { CredentialProviderSpec } from '../../core/api/generated/credential-provider.js';
import type { UserContext } from '../../core/identity/user.js';
import type { CompiledExpression } from '../../core/policy/expression.js';
import type { AgentInput, ContextInput, RequestInput } from '../../core/policy/types.js';

export type ProviderType = CredentialProviderSpec['type'];

export type { MintProvider, SecretsReader } from '../../core/ports/credentials.js';

import type { MintProvider, SecretsReader } from '../../core/ports/credentials.js';

/** The AgentIdentity a credential is minted for. */
export interface MintAgent extends AgentInput {
  /** spec.maxCredentialTTL (Go duration); default "1h". */
  readonly maxCredentialTTL?: string | undefined;
}

/** The deciding rule's `credential` block, compiled (core/policy CompiledCredential). */
export interface PolicyCredentialSettings {
  /** `namespace/name` of the deciding AccessPolicy (role names and audit carry it). */
  readonly policy?: string | undefined;
  readonly ttl?: string | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly claims?: readonly { readonly name: string; readonly expression: CompiledExpression }[] | undefined;
}

export interface MintRequest {
  readonly agent: MintAgent;
  /** The blended identity's human, or null when the agent acts alone. */
  readonly user: UserContext | null;
  readonly provider: MintProvider;
  readonly policy: PolicyCredentialSettings;
  readonly secrets: SecretsReader;
  /** The request being served (CEL `request` for claims); defaults to a bare request to the target. */
  readonly request?: RequestInput | undefined;
  readonly context?: ContextInput | undefined;
  /**
   * RFC 7638 thumbprint of the broker's DPoP public key (the credential request's `dpop_jkt`), or
   * undefined. A sender-constrained JWT provider binds its token to it (`cnf.jkt`).
   */
  readonly dpopJkt?: string | undefined;
}

/** Headers the broker sets on the upstream request (after stripping whatever the agent sent). */
export interface HeaderCredential {
  readonly kind: 'headers';
  readonly headers: Readonly<Record<string, string>>;
  readonly expiresAt: Date;
  /** Non-secret identifier for audit and revocation: a jti, a token digest, a Secret reference. */
  readonly id: string;
  /** True for APIKey/BasicAuth: a long-lived secret Warden only forwards (status.standingSecret). */
  readonly standing: boolean;
  /**
   * Set when the token is bound to the broker's DPoP key (RFC 9449): the thumbprint it carries in
   * `cnf.jkt`. The broker then sends a DPoP proof with every upstream request.
   */
  readonly dpopJkt?: string;
}

/** A temporary PostgreSQL login the broker uses to authenticate upstream (never shown to the agent). */
export interface PostgresCredential {
  readonly kind: 'postgresql';
  readonly value: {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly user: string;
    readonly password: string;
  };
  readonly expiresAt: Date;
  /** The role name. */
  readonly id: string;
  readonly standing: false;
}

/** What the broker signs with: the temporary credentials and the SigV4 scope. */
export interface AwsSigningCredential {
  readonly kind: 'aws';
  readonly value: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken: string;
    readonly region: string;
    readonly service: string;
  };
  readonly expiresAt: Date;
  /** `aws:` and a digest of the access key id (the id itself stays out of logs and audit). */
  readonly id: string;
  readonly standing: false;
}

export type Credential = HeaderCredential | PostgresCredential | AwsSigningCredential;

export interface MintResult {
  readonly credential: Credential;
  /** Ends the credential before it expires (kill switch); absent when the upstream cannot. */
  readonly revoke?: () => Promise<void>;
}

export interface Minter {
  readonly type: ProviderType;
  mint(request: MintRequest): Promise<MintResult>;
}

export type MintErrorReason =
  | 'InvalidProvider'
  | 'SecretNotFound'
  | 'SecretKeyMissing'
  | 'InvalidClaim'
  | 'UpstreamRejected'
  | 'UpstreamUnreachable'
  /** A sender-constrained provider, but the broker sent no DPoP key thumbprint. */
  | 'ProofKeyMissing';

/** Upstream text for an error message: printable ASCII (no control characters), at most `max` characters. */
export function upstreamText(s: unknown, max: number): string {
  return String(s)
    .replace(/[^\x20-\x7e]/g, ' ')
    .slice(0, max);
}

/** A minting failure a person can act on; the message never contains a secret value. */
export class MintError extends Error {
  constructor(
    readonly reason: MintErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'MintError';
  }
}

/** `CredentialProvider ns/name` for messages. */
export function providerRef(p: MintProvider): string {
  return `CredentialProvider ${p.namespace}/${p.name}`;
}
