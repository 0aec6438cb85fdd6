/**
 * Credential minters, one per CredentialProvider type, behind one interface (types.ts). The
 * authority builds the registry once with its clock, keys and connectors and calls
 * `minters[spec.type].mint(...)` after re-checking policy.
 */
import type { KeySource } from '../keystore.js';
import { AwsMinter } from './aws.js';
import { JwtMinter } from './jwt.js';
import { ClientCredentialsMinter, TokenExchangeMinter } from './oauth2.js';
import { type Connect, PostgresMinter } from './postgresql.js';
import { ApiKeyMinter, BasicAuthMinter } from './static.js';
import type { Minter, ProviderType } from './types.js';

export { AwsMinter } from './aws.js';
export { PostgresMinter, type SweepResult } from './postgresql.js';
export * from './types.js';

export interface MinterDeps {
  /** Warden's issuer URL (JWT iss, and the issuer of token-exchange assertions). */
  readonly issuer: string;
  readonly keys: KeySource;
  readonly now?: () => Date;
  readonly fetch?: typeof fetch;
  readonly connectPostgres?: Connect;
}

export type MinterRegistry = Readonly<Record<ProviderType, Minter>> & {
  readonly PostgreSQL: PostgresMinter;
  readonly AWS: AwsMinter;
};

export function createMinters(deps: MinterDeps): MinterRegistry {
  const now = deps.now ?? (() => new Date());
  const oauth = { fetch: deps.fetch, now, assertions: { issuer: deps.issuer, keys: deps.keys } };
  return {
    JWT: new JwtMinter({ issuer: deps.issuer, keys: deps.keys, now }),
    OAuth2ClientCredentials: new ClientCredentialsMinter(oauth),
    OAuth2TokenExchange: new TokenExchangeMinter(oauth),
    PostgreSQL: new PostgresMinter({ connect: deps.connectPostgres, now }),
    APIKey: new ApiKeyMinter(now),
    BasicAuth: new BasicAuthMinter(now),
    AWS: new AwsMinter({
      issuer: deps.issuer,
      keys: deps.keys,
      now,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    }),
  };
}
