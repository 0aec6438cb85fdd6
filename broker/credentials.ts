/**
 * Just-in-time credentials in the broker: what the broker asks the authority for, and a cache keyed
 * by (provider, user, scope) that serves a credential until shortly before it expires. Credentials
 * live only here, in memory; nothing in this module logs or serialises a token.
 */
import { createHash } from 'node:crypto';
import type { AgentRefInput, ContextInput, UserInput } from '../core/policy/types.js';
import { CREDENTIAL_REFRESH_MARGIN_MS } from './constants.js';
import type { DecisionReasonEntry } from './decider.js';
import type { PgLogin } from './pg/endpoint.js';
import { credentialValueForms, MIN_SCRUB_CHARS, secretForms } from './scrub.js';
import type { AwsSigningKeys } from './sigv4.js';

export interface CredentialRequest {
  readonly target: string;
  readonly kind: 'mcp' | 'http' | 'postgresql';
  readonly tool?: string | undefined;
  readonly method?: string | undefined;
  readonly path?: string | undefined;
  /** The human's token as the agent forwarded it (the authority verifies it again), or null. */
  readonly userToken: string | null;
  readonly context: ContextInput | null;
  readonly requestId: string;
}

/** What the authority issues for an HTTP/MCP upstream (authority/mint HeaderCredential on the wire). */
export interface IssuedCredential {
  /** jti / token digest / Secret reference — safe to log and audit. */
  readonly id: string;
  /** Header name → value to set upstream, already formatted (spec.inject). Secret; never logged. */
  readonly headers: Readonly<Record<string, string>>;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  /**
   * For a PostgreSQL provider: the temporary login the broker's local endpoint uses upstream
   * (broker/pg). Secret (the password); never logged, never sent to the agent.
   */
  readonly postgresql?: PgLogin;
  /**
   * Set when the token is sender-constrained (RFC 9449 DPoP, bound to the broker's key): signs a
   * fresh proof for one upstream request (method, URL). The key never leaves the broker.
   */
  readonly dpop?: { proof(htm: string, url: URL): string };
  /**
   * For an AWS provider: the temporary credentials the HTTP proxy signs upstream requests with
   * (SigV4, broker/sigv4.ts). Secret; never logged, never sent to the agent.
   */
  readonly aws?: AwsSigningKeys;
}

/** The authority said no (it re-checks policy at issuance). */
export class CredentialDeniedError extends Error {
  constructor(
    message: string,
    readonly reasons: readonly DecisionReasonEntry[],
  ) {
    super(message);
    this.name = 'CredentialDeniedError';
  }
}

/** The authority could not be reached or answered with a server error. */
export class AuthorityUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthorityUnavailableError';
  }
}

/** The forwarded user token was rejected. */
export class UserTokenRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserTokenRejectedError';
  }
}

/** Source of credentials (the authority client in production). */
export interface CredentialIssuer {
  issue(req: CredentialRequest): Promise<IssuedCredential>;
}

/** Verifies a forwarded user token and maps it to CEL `user` (the authority in production). */
export interface UserResolver {
  /** Returns the user and until when (epoch ms) the answer may be reused. */
  resolve(token: string): Promise<ResolvedCaller & { validUntil: number }>;
}

/**
 * Who a forwarded token says the call is for. A human's token: the user, no chain. A Warden token
 * another agent's broker injected (this agent is an MCP server in a chain of agents): the human it
 * names, or null when the chain began with an agent acting alone, and the agents before this one.
 */
export interface ResolvedCaller {
  readonly user: UserInput | null;
  /** The agents before this one, origin first (request.chain without this agent); absent = none. */
  readonly chain?: readonly AgentRefInput[] | undefined;
}

/** Cache key part for a user: a digest, so cache keys never hold the token itself. */
export function userKey(userToken: string | null): string {
  return userToken === null ? '-' : createHash('sha256').update(userToken).digest('base64url');
}

/**
 * Every form of an issued credential the response scrubber must remove: each injected header
 * value as sent, and the credential without its auth scheme ("Bearer x" → "x", what an upstream
 * echoing "your token is x" would show) in every encoding scrub.ts knows, with each segment of a
 * JWT on its own; for HTTP Basic, the decoded "user:password" too. Short fragments are left out
 * (they would redact noise).
 */
export function credentialSecrets(headers: Readonly<Record<string, string>>): string[] {
  const out = new Set<string>();
  const add = (forms: readonly string[]): void => {
    for (const f of forms) if (f.length >= MIN_SCRUB_CHARS) out.add(f);
  };
  for (const value of Object.values(headers)) {
    add([value]);
    const m = /^([A-Za-z][\w.+-]*)\s+(\S.*)$/.exec(value);
    const bare = m ? m[2]! : value;
    add(credentialValueForms(bare));
    if (m && m[1]!.toLowerCase() === 'basic') {
      add(secretForms(Buffer.from(bare, 'base64').toString('utf8')));
    }
  }
  return [...out];
}

const secretsByCredential = new WeakMap<IssuedCredential, readonly string[]>();

/**
 * credentialSecrets of an issued credential, computed once per credential (about a millisecond for
 * a JWT: every encoding of every segment) and reused by every request the cached credential serves.
 */
export function issuedSecrets(credential: IssuedCredential): readonly string[] {
  let secrets = secretsByCredential.get(credential);
  if (!secrets) {
    secrets = credentialSecrets(credential.headers);
    if (credential.aws) {
      // An upstream's SignatureDoesNotMatch answer quotes the access key id and the canonical
      // request (with the session token): all three are scrubbed from what the agent receives.
      const { accessKeyId, secretAccessKey, sessionToken } = credential.aws;
      const forms = [accessKeyId, secretAccessKey, sessionToken].flatMap((v) => credentialValueForms(v));
      secrets = [...new Set([...secrets, ...forms])].filter((f) => f.length >= MIN_SCRUB_CHARS);
    }
    secretsByCredential.set(credential, secrets);
  }
  return secrets;
}

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/**
 * A small TTL cache with single-flight loading: concurrent misses for one key share one authority
 * round trip. Entries are served until `margin` before they expire. Bounded (oldest evicted).
 */
export class ExpiringCache<T extends { expiresAt: number }> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly loading = new Map<string, Promise<T>>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly margin = CREDENTIAL_REFRESH_MARGIN_MS,
    private readonly maxEntries = 1024,
  ) {}

  async get(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit && hit.expiresAt - this.margin > this.now()) return hit.value;
    if (hit) this.entries.delete(key);
    const pending = this.loading.get(key);
    if (pending) return pending;
    const p = load().then(
      (value) => {
        this.loading.delete(key);
        if (value.expiresAt - this.margin > this.now()) {
          if (this.entries.size >= this.maxEntries) {
            const oldest = this.entries.keys().next().value;
            if (oldest !== undefined) this.entries.delete(oldest);
          }
          this.entries.set(key, { value, expiresAt: value.expiresAt });
        }
        return value;
      },
      (err: unknown) => {
        this.loading.delete(key);
        throw err;
      },
    );
    this.loading.set(key, p);
    return p;
  }

  /** Forget everything (suspension, policy change): the next use goes back to the authority. */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Credentials for upstream calls, keyed by (provider, user, scope). */
export class CredentialCache {
  private readonly cache: ExpiringCache<IssuedCredential>;
  constructor(
    private readonly issuer: CredentialIssuer,
    now: () => number = Date.now,
  ) {
    this.cache = new ExpiringCache<IssuedCredential>(now);
  }

  /** `scope` names what the credential was minted for (deciding policy#rule, or "session"). */
  get(req: CredentialRequest, scope: string): Promise<IssuedCredential> {
    const key = `${req.target}\u0000${userKey(req.userToken)}\u0000${scope}`;
    return this.cache.get(key, () => this.issuer.issue(req));
  }

  clear(): void {
    this.cache.clear();
  }

  /** Credentials cached now (the kill switch empties it). */
  get size(): number {
    return this.cache.size;
  }
}

/** Verified users, cached by token digest until the authority's validUntil. */
export class UserCache {
  private readonly cache: ExpiringCache<ResolvedCaller & { expiresAt: number }>;
  constructor(
    private readonly resolver: UserResolver,
    now: () => number = Date.now,
  ) {
    this.cache = new ExpiringCache(now, 0);
  }

  async get(token: string): Promise<ResolvedCaller> {
    return this.cache.get(userKey(token), async () => {
      const { validUntil, ...caller } = await this.resolver.resolve(token);
      return { ...caller, expiresAt: validUntil };
    });
  }

  clear(): void {
    this.cache.clear();
  }
}
