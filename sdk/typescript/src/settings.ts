/**
 * Where Warden is for this agent: the sidecar's loopback bases the webhook injects, or a shared
 * gateway's URL and the file holding the agent's token for it. Pure over an environment object.
 */
import {
  ENV_GATEWAY_PG,
  ENV_GATEWAY_TOKEN_FILE,
  ENV_GATEWAY_URL,
  ENV_HTTP_BASE,
  ENV_MCP_BASE,
  ENV_PG_BASE,
  ENV_USER_TOKEN_HEADER,
  HEADER_USER_TOKEN,
} from './constants.js';

export type WardenSettings =
  | {
      readonly mode: 'sidecar';
      /** `<mcpBase>/<provider>` is the provider's MCP endpoint. */
      readonly mcpBase: string;
      /** `<httpBase>/<provider>/<path>` reaches the provider's HTTP API. */
      readonly httpBase: string;
      /** `<pgBase>/<provider>` is the provider's PostgreSQL endpoint, when injected. */
      readonly pgBase: string | null;
      readonly userTokenHeader: string;
    }
  | {
      readonly mode: 'gateway';
      readonly mcpBase: string;
      readonly httpBase: string;
      readonly pgBase: string | null;
      readonly userTokenHeader: string;
      /** Reads the agent's current token for the gateway (re-read per request: it rotates). */
      readonly agentToken: () => Promise<string>;
    };

export class WardenSettingsError extends Error {
  override readonly name = 'WardenSettingsError';
}

type Env = Readonly<Record<string, string | undefined>>;

function url(env: Env, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new WardenSettingsError(`${name} is not set`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new WardenSettingsError(`${name}: not a URL: ${JSON.stringify(v)}`);
  }
  return u.toString().replace(/\/+$/, '');
}

/**
 * Settings from the environment. A sidecar's injected `WARDEN_MCP_BASE`/`WARDEN_HTTP_BASE` win;
 * without them, `WARDEN_GATEWAY_URL` selects the shared gateway and `WARDEN_GATEWAY_TOKEN_FILE`
 * names the agent's token (`readToken` reads it; injectable for tests).
 */
export function settingsFromEnv(
  env: Env = process.env,
  readToken: (path: string) => Promise<string> = defaultReadToken,
): WardenSettings {
  const header = env[ENV_USER_TOKEN_HEADER]?.trim() || HEADER_USER_TOKEN;
  if (env[ENV_MCP_BASE] || env[ENV_HTTP_BASE]) {
    return {
      mode: 'sidecar',
      mcpBase: url(env, ENV_MCP_BASE),
      httpBase: url(env, ENV_HTTP_BASE),
      pgBase: env[ENV_PG_BASE] ? url(env, ENV_PG_BASE) : null,
      userTokenHeader: header,
    };
  }
  if (env[ENV_GATEWAY_URL]) {
    const base = url(env, ENV_GATEWAY_URL);
    if (!base.startsWith('https:') && !/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)[:/]/.test(`${base}/`)) {
      throw new WardenSettingsError(
        `${ENV_GATEWAY_URL}: the gateway must be reached over https (the agent's token travels with every request)`,
      );
    }
    const file = env[ENV_GATEWAY_TOKEN_FILE]?.trim();
    if (!file) {
      throw new WardenSettingsError(
        `${ENV_GATEWAY_TOKEN_FILE} is not set: mount a projected service-account token with audience warden.dev/gateway (or a Warden agent token) and name its path`,
      );
    }
    const pg = env[ENV_GATEWAY_PG]?.trim();
    if (pg && !/^[^\s/:]+:\d{1,5}$|^\[[^\]]+\]:\d{1,5}$/.test(pg)) {
      throw new WardenSettingsError(`${ENV_GATEWAY_PG}: expected host:port, got ${JSON.stringify(pg)}`);
    }
    return {
      mode: 'gateway',
      mcpBase: `${base}/mcp`,
      httpBase: `${base}/http`,
      pgBase: pg ? `postgresql://${pg}` : null,
      userTokenHeader: header,
      agentToken: () => readToken(file),
    };
  }
  throw new WardenSettingsError(
    `no Warden settings: set ${ENV_MCP_BASE} and ${ENV_HTTP_BASE} (injected by the webhook next to a sidecar) or ${ENV_GATEWAY_URL} and ${ENV_GATEWAY_TOKEN_FILE} (shared gateway)`,
  );
}

async function defaultReadToken(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const token = (await readFile(path, 'utf8')).trim();
  if (!token) throw new WardenSettingsError(`${path}: the agent token file is empty`);
  return token;
}
