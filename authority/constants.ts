/** Names used only by the authority (shared names live in core/constants.ts). */

/** Secret (in the authority's namespace) holding the signing key ring as data["keys.json"]. */
export const SIGNING_KEYS_SECRET = 'warden-authority-signing-keys';
/** Key of the key ring inside the Secret. */
export const SIGNING_KEYS_SECRET_KEY = 'keys.json';

/** RFC 8693 grant type. */
export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 6749 §4.4 client credentials grant (registered workloads: the client authenticates with its SA token). */
export const GRANT_CLIENT_CREDENTIALS = 'client_credentials';
/** RFC 7523 §2.2 client assertion type: the client authenticates with a JWT (here its projected SA token). */
export const CLIENT_ASSERTION_TYPE_JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** RFC 8693 token type of a Warden agent token (what an agent presents to the shared gateway). */
export { AGENT_TOKEN_TYP, TOKEN_TYPE_AGENT } from '../core/constants.js';
/** RFC 8693 token type of a projected service-account token. */
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
/** RFC 8693 token type of a Warden session token (used to refresh a session). */
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
/** `resource` value a broker may send to name the agent it expects to be: urn:warden:agent:<ns>:<name>. */
export const AGENT_RESOURCE_PREFIX = 'urn:warden:agent:';

/** JOSE `typ` of session tokens, so no other Warden-signed JWT can be used as a session. */
export const SESSION_TOKEN_TYP = 'warden-session+jwt';
/** Session lifetime: short, so a stolen session is worth little; brokers refresh at ~80 %. */
export const SESSION_TTL_SECONDS = 600;

/**
 * Clock skew accepted on Warden's own session tokens: issued and verified by the authority
 * replicas only. A replica further off than this refuses another's fresh session with 401 and the
 * broker attests again (docs/faults.md, "Clock skew").
 */
export const SESSION_CLOCK_SKEW_SECONDS = 30;
/**
 * Clock skew accepted on human user tokens from external IdPs (exp, nbf, iat): Warden's documented
 * budget of ±2 minutes between its components and the IdPs it trusts (docs/faults.md).
 */
export const USER_TOKEN_CLOCK_SKEW_SECONDS = 120;
/**
 * Warden's clock-skew budget between its components and the API server (docs/faults.md): a
 * cached TokenReview is dropped this long before the token's `exp`, so an authority whose clock
 * is this far behind never serves a review the API server would no longer give.
 */
export const CLUSTER_CLOCK_SKEW_MS = 120_000;

/** Pod and ServiceAccount facts the API server adds to a TokenReview of a pod-bound token. */
export const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
export const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';
export const EXTRA_NODE_NAME = 'authentication.kubernetes.io/node-name';
