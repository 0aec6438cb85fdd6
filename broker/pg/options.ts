/**
 * Warden's per-session settings in a PostgreSQL startup packet. The protocol has no place for a
 * bearer token or request metadata, but every libpq-based client can send server options
 * (`PGOPTIONS`, or `options=` in the connection string), which the broker reads and never
 * forwards upstream:
 *
 *   PGOPTIONS='-c warden.user_token=eyJ… -c warden.context={"ticketId":"CHG-881"}'
 *
 * `warden.user_token` is the human's token (as the x-warden-user-token header carries it for MCP
 * and HTTP), `warden.context` the JSON the x-warden-context header carries. Pure functions.
 */

/** Every Warden setting's name starts with this (compared in lower case). */
export const WARDEN_SETTING_PREFIX = 'warden.';
export const SETTING_USER_TOKEN = 'warden.user_token';
export const SETTING_CONTEXT = 'warden.context';

export type WardenSettings =
  | { readonly ok: true; readonly userToken?: string; readonly context?: string }
  | { readonly ok: false; readonly message: string };

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

/** The `warden.*` settings among `-c name=value`, `-cname=value` and `--name=value` options. */
export function wardenSettings(options: string | undefined): WardenSettings {
  if (!options) return { ok: true };
  const words = splitOptions(options);
  const found = new Map<string, string>();
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let setting: string | undefined;
    if (w === '-c') setting = words[++i];
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    if (setting === undefined) continue;
    const eq = setting.indexOf('=');
    const name = (eq < 0 ? setting : setting.slice(0, eq)).toLowerCase();
    if (!name.startsWith(WARDEN_SETTING_PREFIX)) continue; // other server options are not forwarded either
    if (name !== SETTING_USER_TOKEN && name !== SETTING_CONTEXT) {
      return {
        ok: false,
        message: `unknown Warden setting '${name.slice(0, 64)}' in the connection options; use ${SETTING_USER_TOKEN} or ${SETTING_CONTEXT}`,
      };
    }
    if (eq < 0) return { ok: false, message: `${name}: expected ${name}=<value> in the connection options` };
    if (found.has(name)) return { ok: false, message: `${name}: set it once in the connection options` };
    found.set(name, setting.slice(eq + 1));
  }
  const userToken = found.get(SETTING_USER_TOKEN);
  const context = found.get(SETTING_CONTEXT);
  return {
    ok: true,
    ...(userToken !== undefined ? { userToken } : {}),
    ...(context !== undefined ? { context } : {}),
  };
}
