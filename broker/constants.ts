/**
 * Names and limits used only by the broker (shared names live in core/constants.ts).
 */

/** Why the broker denied before (or instead of) evaluating policy. Stable strings for audit and clients. */
export const BrokerDenyReason = {
  /** No policy snapshot received from the authority yet. */
  PolicySnapshotMissing: 'PolicySnapshotMissing',
  /** The snapshot is older than the staleness bound without a stream heartbeat. */
  PolicySnapshotStale: 'PolicySnapshotStale',
  /** The snapshot carries a Deny policy that does not compile: nothing is allowed until it is fixed. */
  PolicySnapshotInvalid: 'PolicySnapshotInvalid',
  /** The authority could not be reached for a credential or a user-token check. */
  AuthorityUnreachable: 'AuthorityUnreachable',
  /** The broker's AgentIdentity was deleted. */
  AgentIdentityMissing: 'AgentIdentityMissing',
  /** The AgentIdentity is suspended (kill switch). */
  AgentSuspended: 'AgentSuspended',
  /** The provider named in the URL is not in the snapshot (or not of the right protocol). */
  UnknownTarget: 'UnknownTarget',
  /** The forwarded user token was rejected by the authority. */
  UserTokenInvalid: 'UserTokenInvalid',
  /** The authority refused to issue the credential (it re-checks policy). */
  CredentialDenied: 'CredentialDenied',
  /** The tool name has characters outside the allowed set or path tricks. */
  InvalidToolName: 'InvalidToolName',
  /** The tools/call names a tool the upstream did not advertise in tools/list (exact match). */
  UnknownTool: 'UnknownTool',
  /** The upstream's tool list could not be read, so the call cannot be checked against it (fail closed). */
  ToolListUnavailable: 'ToolListUnavailable',
  /** The request itself is malformed (path, headers, context). */
  InvalidRequest: 'InvalidRequest',
  /** A limit (AccessPolicy rules[].limits) of the rule that allowed the call has no room left in its window. */
  QuotaExceeded: 'QuotaExceeded',
  /** The call's audit entry could not be kept (spool full or unwritable) and the agent's audit mode is Required. */
  AuditUnavailable: 'AuditUnavailable',
  /** A check plugged into the pipeline (access.ts AccessHooks) failed to run: the broker fails closed. */
  CheckFailed: 'CheckFailed',
} as const;
export type BrokerDenyReason = (typeof BrokerDenyReason)[keyof typeof BrokerDenyReason];

/** RFC 9110 §10.2.3: seconds until a QuotaExceeded call may be retried (HTTP proxy, 429). */
export const HEADER_RETRY_AFTER = 'retry-after';
/** MCP streamable HTTP: the session the upstream assigned (the tool catalog is kept per session). */
export const HEADER_MCP_SESSION_ID = 'mcp-session-id';
/** MCP streamable HTTP: the negotiated protocol version, sent on the broker's own tools/list too. */
export const HEADER_MCP_PROTOCOL_VERSION = 'mcp-protocol-version';
/** The notification an MCP server sends when its tools change: the broker forgets their list. */
export const MCP_TOOLS_LIST_CHANGED = 'notifications/tools/list_changed';

/** Largest MCP / HTTP-proxy request body the broker reads (the agent is untrusted). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Deepest JSON nesting accepted in an MCP message, checked before parsing further (policy bounds args to 16). */
export const MAX_JSON_DEPTH = 64;
/** Largest x-warden-context header value. */
export const MAX_CONTEXT_HEADER_BYTES = 4096;
/** Largest forwarded user token. */
export const MAX_USER_TOKEN_CHARS = 8192;
/** Largest SSE event the broker buffers while scrubbing/filtering an upstream stream. */
export const MAX_SSE_EVENT_BYTES = 8 * 1024 * 1024;
/** Largest JSON response body the broker buffers to filter/scrub (tools/list etc.). */
export const MAX_RESPONSE_BUFFER_BYTES = 16 * 1024 * 1024;

/** Snapshot older than this without a heartbeat denies everything (fail closed). */
export const DEFAULT_STALE_AFTER_MS = 30_000;
/** Upstream must send response headers within this time. */
export const DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS = 30_000;
/** Upstream body may be idle this long (SSE streams get the stream idle timeout instead). */
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 60_000;
/** Idle bound for long-lived upstream SSE streams (servers send keep-alive comments). */
export const DEFAULT_UPSTREAM_STREAM_IDLE_TIMEOUT_MS = 300_000;
/** Credentials are used until this long before they expire, then fetched again. */
export const CREDENTIAL_REFRESH_MARGIN_MS = 30_000;

/** What the broker puts where an echoed credential was. */
export const REDACTED = '[REDACTED]';

/** JSON-RPC error code of a policy denial (MCP leaves -32000..-32099 to implementations). */
export const JSONRPC_POLICY_DENIED = -32003;
/** JSON-RPC error code when the broker cannot reach the upstream or the authority. */
export const JSONRPC_UPSTREAM_UNAVAILABLE = -32004;

/**
 * Request headers that change how an upstream routes or authorises a request: the method it runs,
 * the path it serves, the host/scheme/prefix it believes, or the client address an IP rule checks.
 * The broker decides on the method and path it forwards, so a request carrying any of these is
 * refused on the HTTP proxy (400 naming the header) rather than stripped: an agent that sends one
 * is asking the upstream for something other than what was decided, and a silent strip would run a
 * different call than the agent meant. Matched case-insensitively and with `_` read as `-` (CGI,
 * Rack and PHP turn both into the same `HTTP_X_…` variable). The MCP gateway forwards only its
 * transport's own headers, so none of these reaches an MCP upstream either. The value says why, and
 * is shown in the refusal. See docs/adr/0007-broker.md and docs/threat-model.md.
 */
export const ROUTING_HEADERS: Readonly<Record<string, string>> = {
  // Method overrides: a GET-only rule would let the upstream run POST/PUT/DELETE.
  /** Express method-override (default getter), Rack::MethodOverride (Rails, Sinatra), Symfony, ASP.NET Core UseHttpMethodOverride, Scalatra, Google APIs. */
  'x-http-method-override': 'it overrides the request method (Express, Rails, Symfony, ASP.NET Core)',
  /** OData / ASP.NET Web API, ArangoDB, method-override configured with this name. */
  'x-http-method': 'it overrides the request method (OData, ASP.NET Web API)',
  /** ArangoDB, Play/other frameworks' override middleware. */
  'x-method-override': 'it overrides the request method',
  /** nginx auth_request convention: auth services (oauth2-proxy, Authelia) decide on this method. */
  'x-original-method': 'auth services behind nginx decide on it instead of the request method',
  /** Traefik ForwardAuth convention, read by auth services as the request's method. */
  'x-forwarded-method': 'auth services behind Traefik decide on it instead of the request method',
  // Path / URL rewrites: the upstream serves a path other than the one decided.
  /** IIS URL Rewrite; Zend Framework and Symfony < 2.7.49/3.4.14/4.1.3 served it as the path (CVE-2018-14773). */
  'x-original-url': 'it replaces the request path (IIS, older Symfony/Zend)',
  /** ISAPI_Rewrite; Zend Framework and older Symfony served it as the path (CVE-2018-14773). */
  'x-rewrite-url': 'it replaces the request path (ISAPI_Rewrite, older Symfony/Zend)',
  /** nginx auth_request convention: auth services decide on this URI instead of the request's. */
  'x-original-uri': 'auth services behind nginx decide on it instead of the request path',
  /** Traefik ForwardAuth convention, read by Authelia and others as the request's URI. */
  'x-forwarded-uri': 'auth services behind Traefik decide on it instead of the request path',
  /** Spring ForwardedHeaderFilter, Werkzeug ProxyFix (x_prefix), ASP.NET Core ForwardedHeaders, Traefik: becomes the context path. */
  'x-forwarded-prefix':
    'it changes the context path the upstream routes under (Spring, Werkzeug, ASP.NET Core)',
  /** Kong and other gateways: the path the client asked for, read back by some upstreams. */
  'x-forwarded-path': 'it tells the upstream a different request path (Kong-style gateways)',
  /** Flask/WSGI reverse-proxy recipes turn it into SCRIPT_NAME, shifting PATH_INFO. */
  'x-script-name': 'it changes the WSGI SCRIPT_NAME the upstream routes under',
  /** Envoy's record of the path before a rewrite; read back by some services. */
  'x-envoy-original-path': 'it tells the upstream a different original path (Envoy)',
  /** Next.js internal header: skips middleware, including auth checks (CVE-2025-29927). */
  'x-middleware-subrequest': 'it makes Next.js skip its middleware, auth checks included (CVE-2025-29927)',
  // Host, scheme and client address: host-based routing, absolute URLs, IP allow-lists.
  /** RFC 7239: for/host/proto of the original request (Spring, ASP.NET Core, Rails trusted proxies). */
  forwarded: 'it claims a different client, host or scheme (RFC 7239)',
  /** Client address chain: Rails remote_ip, Express trust proxy, IP allow-lists. */
  'x-forwarded-for': 'it claims a different client address (IP allow-lists, rate limits)',
  /** Host-based routing and absolute URLs (Spring, Symfony, Express trust proxy). */
  'x-forwarded-host': 'it claims a different host (host-based routing)',
  /** Scheme; "secure only" rules and redirects (Rails force_ssl, Spring, Express req.secure). */
  'x-forwarded-proto': 'it claims a different scheme (https-only rules)',
  /** Port of the original request (Spring, Symfony). */
  'x-forwarded-port': 'it claims a different port',
  /** Scheme, as Rack/Rails and nginx setups read it. */
  'x-forwarded-scheme': 'it claims a different scheme (Rack)',
  /** "on" means https to Rack and Spring. */
  'x-forwarded-ssl': 'it claims https (Rack, Spring)',
  /** "on" means https to Rack (Microsoft front ends). */
  'front-end-https': 'it claims https (Rack)',
  /** Scheme override read by Rack. */
  'x-url-scheme': 'it claims a different scheme (Rack)',
  /** nginx realip module and many apps: the client address. */
  'x-real-ip': 'it claims a different client address (nginx realip)',
  /** Client address read by Rails remote_ip (IP spoofing check) and others. */
  'client-ip': 'it claims a different client address (Rails remote_ip)',
  /** Client address some frameworks and WAFs trust. */
  'x-client-ip': 'it claims a different client address',
  /** Client address set by CDNs (Akamai, Cloudflare Enterprise), trusted by some apps. */
  'true-client-ip': 'it claims a different client address (CDN convention)',
  /** Client address from load balancers (Rackspace, Riverbed), read by Rails/PHP apps. */
  'x-cluster-client-ip': 'it claims a different client address',
  /** The host before a proxy rewrote it (ASP.NET Core ForwardedHeaders, Azure front ends). */
  'x-original-host': 'it claims a different host',
  /** Host override some frameworks and caches honour. */
  'x-host': 'it claims a different host',
};

/**
 * Query parameters that override the request method in common frameworks. A request whose query
 * carries one (after decoding its name, reading `+` as space and `.`, space, `[` as `_` as PHP does,
 * and ignoring case and a trailing `[...]`) is refused on the HTTP proxy, like ROUTING_HEADERS.
 */
export const METHOD_OVERRIDE_QUERY_PARAMS: Readonly<Record<string, string>> = {
  /** Symfony (query or body, with http_method_override), Spring HiddenHttpMethodFilter (any request parameter), Express method-override('_method'), Laravel, Scalatra, older Rack. */
  _method: 'it overrides the request method (Symfony, Spring, Express method-override, Laravel)',
  /** Salesforce REST API convention. */
  _httpmethod: 'it overrides the request method (Salesforce)',
};
