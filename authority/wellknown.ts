/**
 * Discovery documents, so any target can verify Warden-issued tokens (OpenID Connect Discovery
 * 1.0 + JWKS) and MCP servers can use Warden as their authorization server (RFC 8414).
 */
import { GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE } from './constants.js';

/** Joins an issuer URL and an absolute path without doubling or dropping slashes. */
export function endpoint(issuer: string, path: string): string {
  return `${issuer.replace(/\/+$/, '')}${path}`;
}

/**
 * RFC 8414 authorization-server metadata — what Warden's authority is, and nothing it is not: an
 * issuer for workloads (no authorization endpoint, no ID tokens), so it serves no OpenID Connect
 * discovery document (ADR 0006). Grants: RFC 8693 token exchange (brokers' sessions, agents'
 * tokens for the shared gateway) and client credentials for registered workloads — an agent pod
 * authenticating with its projected service-account token (audience warden.dev/gateway) as an RFC
 * 7523 client assertion, listed as `private_key_jwt` (the assertion is signed by the cluster's
 * service-account issuer, verified by TokenReview). Also listed: the JWKS and the RFC 7662
 * introspection endpoint; there is no RFC 7009 revocation endpoint (credentials are revoked per
 * agent by the kill switch, docs/killswitch.md).
 */
export function authorizationServerMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    // RFC 8414 lets a server without the authorization-code flow omit it, but OAuth clients (the
    // MCP SDK's among them) require the member: it names an endpoint that refuses every request,
    // and response_types_supported stays empty.
    authorization_endpoint: endpoint(issuer, '/v1/authorize'),
    token_endpoint: endpoint(issuer, '/v1/token'),
    jwks_uri: endpoint(issuer, '/.well-known/jwks.json'),
    introspection_endpoint: endpoint(issuer, '/v1/introspect'),
    introspection_endpoint_auth_methods_supported: ['none'],
    grant_types_supported: [GRANT_TOKEN_EXCHANGE, GRANT_CLIENT_CREDENTIALS],
    // RFC 8414 requires the member; with no authorization endpoint there is no response type.
    response_types_supported: [],
    // 'none' for token exchange (the subject token authenticates); private_key_jwt for client credentials.
    token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
    // Service-account tokens are RS256 or ES256, as the API server's issuer signs them.
    token_endpoint_auth_signing_alg_values_supported: ['RS256', 'ES256'],
    service_documentation: 'https://warden.dev/docs/authority',
  };
}

/**
 * The discovery document web identity federation reads (AWS IAM OIDC providers, MinIO's OpenID
 * STS, other clouds' workload identity pools): `<issuer>/.well-known/openid-configuration` naming
 * the issuer and its JWKS. It has the shape Kubernetes serves for its service-account issuer
 * (ServiceAccountIssuerDiscovery) — the members those verifiers read, and no endpoint that does not
 * exist: no authorization, token or userinfo endpoint is listed. `response_types_supported:
 * ["id_token"]` describes the tokens STS receives (ID-token-shaped JWTs Warden signs for the
 * agent); Warden still runs no browser flow (docs/adr/0017-aws-web-identity-sigv4.md, which
 * narrows ADR 0006's "no OpenID Connect discovery document").
 */
export function webIdentityDiscovery(issuer: string): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: endpoint(issuer, '/.well-known/jwks.json'),
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti'],
  };
}
