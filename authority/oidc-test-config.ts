/**
 * The parts of an oidc-provider configuration both test providers (oidc-fixture.ts and the
 * OAuth2 minter int test) set explicitly instead of leaving to the library's quick-start
 * defaults, each of which prints a WARNING or notice into the test output: a storage adapter,
 * the artifact lifetimes and the introspection/revocation policies.
 */

/** What oidc-provider stores per artifact (the fields its adapter contract indexes by). */
export interface OidcArtifact {
  uid?: string;
  userCode?: string;
  grantId?: string;
  consumed?: number;
  [field: string]: unknown;
}

/** oidc-provider's adapter contract (one instance per model: Session, AccessToken, Grant...). */
export interface OidcAdapter {
  upsert(id: string, payload: OidcArtifact, expiresIn?: number): Promise<void>;
  find(id: string): Promise<OidcArtifact | undefined>;
  findByUid(uid: string): Promise<OidcArtifact | undefined>;
  findByUserCode(userCode: string): Promise<OidcArtifact | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

/**
 * An adapter factory over one Map owned by one test provider: a provider that lives for one
 * test file needs no persistence, and a store of its own (rather than the library's
 * process-wide LRU) keeps two providers in one worker from seeing each other's artifacts.
 * Expired artifacts read as absent, as in a real store.
 */
export function oidcTestAdapter(now: () => number = Date.now): (model: string) => OidcAdapter {
  const entries = new Map<string, { model: string; payload: OidcArtifact; expiresAt: number }>();
  const live = (key: string): OidcArtifact | undefined => {
    const e = entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    return e.payload;
  };
  const findBy = (model: string, field: 'uid' | 'userCode', value: string) => {
    for (const [key, e] of entries) if (e.model === model && e.payload[field] === value) return live(key);
    return undefined;
  };
  return (model) => ({
    async upsert(id, payload, expiresIn) {
      const expiresAt = typeof expiresIn === 'number' ? now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
      entries.set(`${model}:${id}`, { model, payload: { ...payload }, expiresAt });
    },
    async find(id) {
      return live(`${model}:${id}`);
    },
    async findByUid(uid) {
      return findBy(model, 'uid', uid);
    },
    async findByUserCode(userCode) {
      return findBy(model, 'userCode', userCode);
    },
    async consume(id) {
      const p = live(`${model}:${id}`);
      if (p) p.consumed = Math.floor(now() / 1000);
    },
    async destroy(id) {
      entries.delete(`${model}:${id}`);
    },
    async revokeByGrantId(grantId) {
      for (const [key, e] of entries) if (e.payload.grantId === grantId) entries.delete(key);
    },
  });
}

/** Artifact lifetimes in seconds: short, as a test's flows are (the defaults reach 14 days). */
export const OIDC_TEST_TTL = {
  AccessToken: 600,
  AuthorizationCode: 60,
  ClientCredentials: 600,
  IdToken: 600,
  Interaction: 600,
  Session: 3600,
  Grant: 3600,
} as const;

/** The parts of a client/token the policies below read. */
interface ClientLike {
  clientId: string;
}

/**
 * Introspection and revocation answer only the client the token was issued to (the library's
 * default also lets any confidential client introspect any token).
 */
export const ownTokensOnly = (_ctx: unknown, client: ClientLike, token: ClientLike): boolean =>
  token.clientId === client.clientId;
