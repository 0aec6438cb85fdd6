/**
 * Warden's per-session settings in a PostgreSQL startup packet. The protocol has no place for a
 * bearer token or request metadata, but every libpq-based client can send server options
 * (`PGOPTIONS`, or `options=` in the connection string), which the broker reads and never
 * forwards upstream:
 *
 *   PGOPTIONS='-c warden.user_token=eyJ… -c warden.context={"ticketId":"CHG-881"}'
 *
 * `warden.user_token` is the human's token (as the x-warden-user-token header carries it for MCP
 * and HTTP), `warden.context` the JSON the x-warden-context header carries. Other settings are
 * forwarded when they are on FORWARDED_SETTINGS and refused otherwise. Pure functions.
 */

/** Every Warden setting's name starts with this (compared in lower case). */
export const WARDEN_SETTING_PREFIX = 'warden.';
export const SETTING_USER_TOKEN = 'warden.user_token';
export const SETTING_CONTEXT = 'warden.context';

/** libpq's `options` word splitting: whitespace separates, a backslash escapes the next character. */
export function splitOptions(options: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/**
 * Server settings a session may choose at connection time, forwarded upstream as start-up
 * parameters, whether the agent sent them as start-up parameters (drivers send application_name,
 * client_encoding, DateStyle, TimeZone, extra_float_digits; node-postgres statement_timeout and
 * friends) or as `-c name=value` connection options (PGOPTIONS). Each changes only how this
 * session formats values or bounds its own work: none changes who the session is or what it may
 * touch (so not `role` or `session_authorization`), and none is a server-wide knob. Anything else
 * is refused with its name rather than dropped: the agent can still SET it after connecting,
 * where the temporary role's privileges decide. Lower case: setting names are case-insensitive.
 */
export const FORWARDED_SETTINGS: readonly string[] = [
  'application_name',
  'client_encoding',
  'datestyle',
  'intervalstyle',
  'timezone',
  'extra_float_digits',
  'search_path',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'default_transaction_read_only',
  'default_transaction_isolation',
  'bytea_output',
];
const FORWARDED = new Set(FORWARDED_SETTINGS);

/** Start-up parameters that are the protocol's own, not server settings. */
const PROTOCOL_PARAMS = new Set(['user', 'database', 'options', 'replication']);

export type SessionSettings =
  | {
      readonly ok: true;
      readonly userToken?: string;
      readonly context?: string;
      /** What to send upstream as start-up parameters (lower-case names). */
      readonly forward: Readonly<Record<string, string>>;
    }
  | {
      readonly ok: false;
      readonly message: string;
      /** A server setting or option the broker does not forward (not a Warden setting gone wrong). */
      readonly unsupported: boolean;
    };

const notForwarded = (what: string) =>
  `${what} is not forwarded by the Warden broker; connection-time settings it forwards: ${FORWARDED_SETTINGS.join(', ')} (SET others after connecting)`;

/**
 * Everything a start-up packet asks of the session: Warden's settings (read, never forwarded) and
 * the server settings to forward, from the start-up parameters and the `options` word list
 * (`-c name=value`, `-cname=value`, `--name=value`). Refuses, naming it, an option that is not a
 * setting (a backend switch such as `-B`), a setting off the list, a setting given twice, and a
 * Warden setting it does not know. `_pq_.*` parameters (protocol extensions) are not settings and
 * are left out.
 */
export function sessionSettings(params: Readonly<Record<string, string>>): SessionSettings {
  type Refusal = Extract<SessionSettings, { ok: false }>;
  const refuse = (message: string, unsupported: boolean): Refusal => ({ ok: false, message, unsupported });
  const forward: Record<string, string> = {};
  const warden = new Map<string, string>();
  const set = (name: string, value: string, where: string): Refusal | null => {
    if (name.startsWith(WARDEN_SETTING_PREFIX)) {
      if (name !== SETTING_USER_TOKEN && name !== SETTING_CONTEXT) {
        return refuse(
          `unknown Warden setting '${name.slice(0, 64)}' in the connection options; use ${SETTING_USER_TOKEN} or ${SETTING_CONTEXT}`,
          false,
        );
      }
      if (warden.has(name)) return refuse(`${name}: set it once in the connection options`, false);
      warden.set(name, value);
      return null;
    }
    if (!FORWARDED.has(name)) return refuse(notForwarded(`${where} '${name.slice(0, 64)}'`), true);
    if (Object.hasOwn(forward, name)) {
      return refuse(`setting '${name}': set it once (as a start-up parameter or a connection option)`, false);
    }
    forward[name] = value;
    return null;
  };
  for (const [key, value] of Object.entries(params)) {
    const name = key.toLowerCase();
    if (PROTOCOL_PARAMS.has(name) || name.startsWith('_pq_.')) continue;
    if (name.startsWith(WARDEN_SETTING_PREFIX)) {
      return refuse(
        `start-up parameter '${key.slice(0, 64)}': send Warden settings as connection options (PGOPTIONS='-c ${name.slice(0, 64)}=…'), not as start-up parameters`,
        false,
      );
    }
    const problem = set(name, value, 'start-up parameter');
    if (problem) return problem;
  }
  const words = splitOptions(params.options ?? '');
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let setting: string | undefined;
    if (w === '-c') setting = words[++i];
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    if (setting === undefined) {
      return refuse(
        `connection option '${w.slice(0, 64)}' is not a setting: the Warden broker reads only '-c name=value' (or '--name=value') in the connection options`,
        true,
      );
    }
    const eq = setting.indexOf('=');
    const name = (eq < 0 ? setting : setting.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      const shown = name.slice(0, 64);
      return refuse(`${shown}: expected ${shown}=<value> in the connection options`, false);
    }
    const problem = set(name, setting.slice(eq + 1), 'connection option -c');
    if (problem) return problem;
  }
  const userToken = warden.get(SETTING_USER_TOKEN);
  const context = warden.get(SETTING_CONTEXT);
  return {
    ok: true,
    ...(userToken !== undefined ? { userToken } : {}),
    ...(context !== undefined ? { context } : {}),
    forward,
  };
}
