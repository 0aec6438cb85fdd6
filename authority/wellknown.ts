/**
 * Discovery documents, so any target can verify Warden-issued tokens (OpenID Connect Discovery
 * 1.0 + JWKS) and MCP servers can use Warden as their authorization server (RFC 8414).
 */
import { GRANT_TOKEN_EXCHANGE } from './constants.js';

/** Joins an issuer URL and an absolute path without doubling or dropping slashes. */
export function endpoint(issuer: string, path: string): string {
  return `${issuer.replace(/\/+$/, '')}${path}`;
}

/** RFC 8414 authorization-server metadata. */
export function authorizationServerMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    token_endpoint: endpoint(issuer, '/v1/token'),
    jwks_uri: endpoint(issuer, '/.well-known/jwks.json'),
    grant_types_supported: [GRANT_TOKEN_EXCHANGE],
    // Warden has no authorization endpoint: no browser flows, so no response types.
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['none'],
    token_endpoint_auth_signing_alg_values_supported: ['ES256'],
    service_documentation: 'https://warden.dev/docs/authority',
  };
}

/** OpenID Connect discovery document (the subset meaningful for a token-exchange-only issuer). */
export function openIdConfiguration(issuer: string): Record<string, unknown> {
  return {
    ...authorizationServerMetadata(issuer),
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'act', 'scope'],
  };
}
