/**
 * The agent's handle on Warden: per provider a ready MCP client transport, an HTTP base (and a
 * fetch that throws typed denials), and PostgreSQL connection settings. Every request carries the
 * human's token and context from the current request scope; in gateway mode also the agent's own
 * token. The SDK never sees an upstream credential: the broker or gateway injects those.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { HEADER_CONTEXT, HEADER_REQUEST_ID, PG_SETTING_CONTEXT, PG_SETTING_USER_TOKEN } from './constants.js';
import { denialFromMcpError, denialFromResponse } from './errors.js';
import { currentScope, type RequestScope, stripBearer } from './request-context.js';
import { settingsFromEnv, type WardenSettings, WardenSettingsError } from './settings.js';

/** Options every call accepts: an explicit scope overrides the current one field by field. */
export interface CallOptions {
  readonly scope?: RequestScope;
}

/** What `pg` (node-postgres) and libpq need: a connection string, and the password in gateway mode. */
export interface PostgresSettings {
  /** `postgresql://<endpoint>/<provider>?options=…` — no password, no user: Warden logs in upstream. */
  readonly connectionString: string;
  /** Gateway mode: the agent's token, sent as the password over TLS. Absent next to a sidecar. */
  readonly password?: () => Promise<string>;
  /** libpq's PGOPTIONS value (the same as `options` in the connection string). */
  readonly options: string;
}

const PROVIDER_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export class Warden {
  readonly settings: WardenSettings;
  private readonly baseFetch: typeof fetch;

  constructor(settings: WardenSettings, opts: { fetch?: typeof fetch } = {}) {
    this.settings = settings;
    this.baseFetch = opts.fetch ?? fetch;
  }

  /** From the injected environment (sidecar) or the gateway settings. */
  static fromEnv(env: Readonly<Record<string, string | undefined>> = process.env): Warden {
    return new Warden(settingsFromEnv(env));
  }

  /** The provider's MCP endpoint. */
  mcpUrl(provider: string): URL {
    return new URL(`${this.settings.mcpBase}/${checkName(provider)}`);
  }

  /** The provider's HTTP base: `<base>/<path>` reaches the API's `<path>`. */
  httpBase(provider: string): string {
    return `${this.settings.httpBase}/${checkName(provider)}`;
  }

  /**
   * A streamable-HTTP MCP transport to the provider through Warden. A request refused before it
   * reaches a tool (HTTP 403) makes the client's call reject with a WardenDeniedError.
   */
  mcpTransport(provider: string, opts: CallOptions = {}): StreamableHTTPClientTransport {
    return new StreamableHTTPClientTransport(this.mcpUrl(provider), { fetch: this.fetchFor(opts) });
  }

  /**
   * A connected MCP client for the provider whose callTool turns a Warden denial (JSON-RPC error
   * -32003) into a WardenDeniedError.
   */
  async mcpClient(
    provider: string,
    opts: CallOptions & { name?: string; version?: string } = {},
  ): Promise<Client> {
    const client = new Client({ name: opts.name ?? 'warden-agent', version: opts.version ?? '0.0.0' });
    try {
      await client.connect(this.mcpTransport(provider, opts));
    } catch (err) {
      // initialize is a request too: a refused session (suspended agent, unknown target) is typed.
      throw denialFromMcpError(err) ?? err;
    }
    const callTool = client.callTool.bind(client);
    client.callTool = async (...args: Parameters<Client['callTool']>) => {
      try {
        return await callTool(...args);
      } catch (err) {
        throw denialFromMcpError(err) ?? err;
      }
    };
    return client;
  }

  /**
   * fetch() against the provider's HTTP API through Warden (`path` relative to the API's base).
   * A Warden refusal throws WardenDeniedError; the upstream's own errors are returned as they are.
   */
  async fetch(
    provider: string,
    path: string,
    init: RequestInit = {},
    opts: CallOptions = {},
  ): Promise<Response> {
    const rel = path.startsWith('/') ? path : `/${path}`;
    return this.fetchFor(opts)(`${this.httpBase(provider)}${rel}`, init);
  }

  /** PostgreSQL settings for the provider: the user's token and context travel as server options. */
  postgres(provider: string, opts: CallOptions = {}): PostgresSettings {
    if (!this.settings.pgBase) {
      throw new WardenSettingsError(
        'no PostgreSQL endpoint: the pod was injected without one (WARDEN_PG_BASE) or WARDEN_GATEWAY_PG is not set',
      );
    }
    const scope = { ...currentScope(), ...opts.scope };
    const words: string[] = [];
    if (scope.userToken)
      words.push('-c', `${PG_SETTING_USER_TOKEN}=${escapeOption(stripBearer(scope.userToken))}`);
    if (scope.context)
      words.push('-c', `${PG_SETTING_CONTEXT}=${escapeOption(JSON.stringify(scope.context))}`);
    const options = words.join(' ');
    const u = new URL(`${this.settings.pgBase}/${checkName(provider)}`);
    if (options) u.searchParams.set('options', options);
    if (this.settings.mode === 'gateway') {
      u.searchParams.set('sslmode', 'verify-full');
      return { connectionString: u.toString(), options, password: this.settings.agentToken };
    }
    return { connectionString: u.toString(), options };
  }

  /** The headers Warden reads on every request of this scope. */
  async headers(opts: CallOptions = {}): Promise<Record<string, string>> {
    const scope = { ...currentScope(), ...opts.scope };
    const h: Record<string, string> = {};
    if (scope.userToken) h[this.settings.userTokenHeader] = stripBearer(scope.userToken);
    if (scope.context) h[HEADER_CONTEXT] = JSON.stringify(scope.context);
    if (scope.requestId) h[HEADER_REQUEST_ID] = scope.requestId;
    if (this.settings.mode === 'gateway') h.authorization = `Bearer ${await this.settings.agentToken()}`;
    return h;
  }

  /** A fetch that adds Warden's headers (read when each request is sent) and throws typed denials. */
  fetchFor(opts: CallOptions = {}): typeof fetch {
    // The scope is read now: the MCP transport sends later, from its own async context.
    const captured = { ...currentScope(), ...opts.scope };
    return async (input, init) => {
      const headers = new Headers(init?.headers);
      for (const [k, v] of Object.entries(await this.headers({ scope: captured }))) headers.set(k, v);
      const res = await this.baseFetch(input, { ...init, headers });
      const denial =
        res.status === 403 || res.status === 429 || res.status === 503 ? await denialFromResponse(res) : null;
      if (denial) {
        await res.body?.cancel();
        throw denial;
      }
      return res;
    };
  }
}

/** libpq options escaping: a backslash before whitespace and backslashes. */
function escapeOption(v: string): string {
  return v.replace(/([\\\s])/g, '\\$1');
}

function checkName(provider: string): string {
  if (!PROVIDER_NAME.test(provider)) {
    throw new WardenSettingsError(
      `provider ${JSON.stringify(provider)}: expected a CredentialProvider name (lower-case DNS subdomain)`,
    );
  }
  return provider;
}
