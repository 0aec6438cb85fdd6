/**
 * What counts as a secret when Warden records or logs data it was handed: one set of field names
 * (the broker's log redaction, broker/log.ts, is built from it) and the value shapes of common
 * credentials. Pure; used by the replay data of audit entries (core/audit/replay.ts).
 */

/** Field names whose values are credentials, as Warden's own code names them. */
export const SECRET_FIELD_NAMES = [
  'token',
  'accessToken',
  'access_token',
  'subject_token',
  'userToken',
  'sessionToken',
  'credential',
  'credentials',
  'password',
  'secret',
  'authorization',
  'inject',
] as const;

/**
 * Parts of a key name (compared lower-case, with `-`, `_`, `.` and spaces removed) that mark a
 * value as a secret in data Warden did not write (tool arguments, user claims): `apiKey`,
 * `client_secret`, `X-Auth-Token`, `db_password`, `private_key`, `refreshToken`...
 */
const SECRET_KEY_PARTS = [
  'token',
  'password',
  'passwd',
  'passphrase',
  'secret',
  'apikey',
  'privatekey',
  'credential',
  'authorization',
  'cookie',
  'signature',
  'sessionid',
] as const;

/** Exact (normalised) key names that are secrets but contain none of the parts above. */
const SECRET_KEYS = new Set(['pwd', 'pass', 'auth', 'otp', 'pin', 'inject', 'bearer', 'jwt']);

function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[-_.\s]/g, '');
}

/** Is a value under this key a secret? (`max_tokens: 100` is kept: only non-scalar or string values are redacted by callers.) */
export function isSecretFieldName(key: string): boolean {
  const k = normaliseKey(key);
  if (SECRET_KEYS.has(k)) return true;
  return SECRET_KEY_PARTS.some((part) => k.includes(part));
}

/** Shapes of credentials found inside a string. */
const SECRET_VALUE_PATTERNS: readonly RegExp[] = [
  // A JWT / JWS / JWE compact serialisation (base64url JSON header starting with {").
  /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\./,
  // An Authorization header value.
  /\b(?:Bearer|Basic|DPoP|Token)\s+[A-Za-z0-9._~+/=-]{8,}/i,
  // PEM private keys.
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/,
  // Well-known token prefixes: OpenAI/Anthropic-style sk-, GitHub, GitLab, Slack, AWS access keys, Google API keys.
  /\b(?:sk|rk|pk)-[A-Za-z0-9_-]{16,}/,
  /\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{16,}/,
  /\bglpat-[A-Za-z0-9_-]{16,}/,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/,
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/,
  /\bAIza[0-9A-Za-z_-]{30,}/,
  // A URL with a password in its userinfo: scheme://user:password@host.
  /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i,
];

/**
 * A run of 32+ base64/hex-alphabet characters mixing upper case, lower case and digits: random
 * key material. UUIDs, hashes in lower-case hex, words and sentences do not match.
 */
const HIGH_ENTROPY_RUN = /[A-Za-z0-9+/_=-]{32,}/g;

function looksRandom(run: string): boolean {
  return /[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9]/.test(run);
}

/** Does the string contain something that looks like a credential? */
export function looksLikeSecret(value: string): boolean {
  if (SECRET_VALUE_PATTERNS.some((re) => re.test(value))) return true;
  for (const m of value.matchAll(HIGH_ENTROPY_RUN)) if (looksRandom(m[0])) return true;
  return false;
}
