/**
 * Ports of credential minting and revocation: what the reconcilers (revocation, the
 * PostgreSQL role sweep) need from the authority, defined here so operator/ does not
 * import authority/. Implemented by authority/; wired by controller/. docs/conventions.md §1.
 */
import type { CredentialProviderSpec } from '../api/index.js';

/**
 * Reads one key of a Secret in the provider's namespace (upstream secrets never leave the
 * authority). The authority's implementation throws MintError (SecretNotFound / SecretKeyMissing).
 */
export interface SecretsReader {
  read(namespace: string, name: string, key: string): Promise<string>;
}

/** A CredentialProvider as minting and sweeping see it. */
export interface MintProvider {
  readonly name: string;
  readonly namespace: string;
  readonly spec: CredentialProviderSpec;
}

/** What a sweep of expired PostgreSQL roles did. */
export interface SweepResult {
  dropped: string[];
  failed: { role: string; message: string }[];
}

export interface RevocationProvider {
  namespace: string;
  name: string;
  spec: CredentialProviderSpec;
}

export interface RevocationFailure {
  /** What could not be revoked, e.g. `CredentialProvider ns/db` or `credential <id>`. */
  what: string;
  message: string;
}

export interface RevocationOutcome {
  revoked: number;
  failures: RevocationFailure[];
}

/** What the revocation reconciler calls. Must be idempotent: it may run again after a crash. */
export interface AgentRevoker {
  revokeAgent(
    namespace: string,
    agent: string,
    providers: readonly RevocationProvider[],
  ): Promise<RevocationOutcome>;
}
