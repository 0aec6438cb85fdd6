/**
 * Discovery documents, so any target can verify Warden-issued tokens (OpenID Connect Discovery
 * 1.0 + JWKS) and MCP servers can use Warden as their authorization server (RFC 8414).
 */
import { GRANT_TOKEN_EXCHANGE } from './constants.js';

/** Joins an issuer URL and an absolute path without doubling or dropping slashes. */
export function endpoint(issuer: string, path: string): string {
  return `${issuer.replace(/\/+$/, '')}${path}`;
}

/**
 * RFC 8414 authorization-server metadata — what Warden's authority is, and nothing it is not: a
 * token-exchange-only issuer (no authorization endpoint, no ID tokens), so it serves no OpenID
 * Connect discovery document (ADR 0006). Listed: the token endpoint (RFC 8693 exchange), the JWKS
 * and the RFC 7662 introspection endpoint; there is no RFC 7009 revocation endpoint (credentials
 * are revoked per agent by the kill switch, docs/killswitch.md).
 */
export function authorizationServerMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    token_endpoint: endpoint(issuer, '/v1/token'),
    jwks_uri: endpoint(issuer, '/.well-known/jwks.json'),
    introspection_endpoint: endpoint(issuer, '/v1/introspect'),
    introspection_endpoint_auth_methods_supported: ['none'],
    grant_types_supported: [GRANT_TOKEN_EXCHANGE],
    // RFC 8414 requires the member; with no authorization endpoint there is no response type.
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['none'],
    service_documentation: 'https://warden.dev/docs/authority',
  };
}
