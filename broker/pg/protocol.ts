/**
 * Just enough of the PostgreSQL frontend/backend protocol (v3) for the broker's endpoint: the
 * startup phase on both sides. After authentication the broker relays bytes and parses nothing.
 * All functions here are pure (buffers in, values out).
 */

export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;
/** Largest startup packet accepted (PostgreSQL's MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_BYTES = 10_000;
/** Largest backend message accepted during upstream start-up. */
export const MAX_STARTUP_MESSAGE_BYTES = 1024 * 1024;

/** Authentication request codes ('R' messages). */
export const AUTH = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** Strict UTF-8: a lossy decode would let the broker read other names and values than the server. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export type FrontendStartup =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: Buffer; raw: Buffer }
  | { kind: 'startup'; params: Record<string, string> }
  | { kind: 'invalid'; message: string };

/**
 * Reads the first untyped message from `buf`. Returns null while incomplete, else the message
 * and how many bytes it used.
 */
export function parseFrontendStartup(buf: Buffer): { message: FrontendStartup; used: number } | null {
  if (buf.length < 8) return null;
  const length = buf.readInt32BE(0);
  if (length < 8 || length > MAX_STARTUP_BYTES) {
    return {
      message: { kind: 'invalid', message: `invalid startup packet length ${length}` },
      used: buf.length,
    };
  }
  if (buf.length < length) return null;
  const code = buf.readInt32BE(4);
  const body = buf.subarray(8, length);
  const used = length;
  if (code === SSL_REQUEST && length === 8) return { message: { kind: 'ssl' }, used };
  if (code === GSSENC_REQUEST && length === 8) return { message: { kind: 'gssenc' }, used };
  if (code === CANCEL_REQUEST && length === 16) {
    return {
      message: {
        kind: 'cancel',
        processId: body.readInt32BE(0),
        secretKey: Buffer.from(body.subarray(4, 8)),
        raw: Buffer.from(buf.subarray(0, 16)),
      },
      used,
    };
  }
  if (code !== PROTOCOL_3_0) {
    return {
      message: {
        kind: 'invalid',
        message: `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}; use protocol 3.0`,
      },
      used,
    };
  }
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return {
      message: {
        kind: 'invalid',
        message: 'startup packet is not valid UTF-8; send parameter names and values in UTF-8',
      },
      used,
    };
  }
  const parts = text.split('\0');
  // key\0value\0 ... \0 — the split leaves two trailing empty strings.
  if (parts.length < 2 || parts.at(-1) !== '' || parts.at(-2) !== '') {
    return { message: { kind: 'invalid', message: 'malformed startup packet' }, used };
  }
  const pairs = parts.slice(0, -2);
  if (pairs.length % 2 !== 0)
    return { message: { kind: 'invalid', message: 'malformed startup packet' }, used };
  const params: Record<string, string> = Object.create(null);
  const names = new Set<string>();
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i] as string;
    // PostgreSQL ends the list at the first empty name: anything after it would be read by the
    // broker and not by the server.
    if (name === '') {
      return {
        message: {
          kind: 'invalid',
          message: 'malformed startup packet: an empty parameter name before the end',
        },
        used,
      };
    }
    // Settings are case-insensitive in PostgreSQL (TimeZone = timezone): a second spelling is a repeat.
    const folded = name.toLowerCase();
    if (names.has(folded)) {
      return {
        message: {
          kind: 'invalid',
          message: `startup parameter '${name.slice(0, 64)}' is sent twice; send each parameter once (the broker and the server could read different values)`,
        },
        used,
      };
    }
    names.add(folded);
    params[name] = pairs[i + 1] as string;
  }
  return { message: { kind: 'startup', params }, used };
}

export interface BackendMessage {
  type: string;
  body: Buffer;
  /** The whole message, header included (relayed verbatim). */
  raw: Buffer;
}

/** Reads one typed backend message from the front of `buf`; null while incomplete. */
export function parseBackendMessage(
  buf: Buffer,
  maxBytes = MAX_STARTUP_MESSAGE_BYTES,
): BackendMessage | null {
  if (buf.length < 5) return null;
  const length = buf.readInt32BE(1);
  if (length < 4 || length > maxBytes) throw new Error(`invalid message length ${length}`);
  if (buf.length < 1 + length) return null;
  const raw = buf.subarray(0, 1 + length);
  return { type: String.fromCharCode(raw[0] as number), body: raw.subarray(5), raw };
}

function typed(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');

export function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

export function sslRequest(): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(SSL_REQUEST, 4);
  return b;
}

export function authenticationOk(): Buffer {
  const body = Buffer.alloc(4);
  body.writeInt32BE(AUTH.Ok, 0);
  return typed('R', body);
}

/** AuthenticationCleartextPassword: asks the client for its password (the shared gateway, over TLS only). */
export function authenticationCleartextPassword(): Buffer {
  const body = Buffer.alloc(4);
  body.writeInt32BE(AUTH.CleartextPassword, 0);
  return typed('R', body);
}

/** Largest PasswordMessage the gateway reads (a caller token is at most 8,192 characters). */
export const MAX_PASSWORD_MESSAGE_BYTES = 16 * 1024;

/**
 * Reads a PasswordMessage ('p', the NUL-terminated password) from the front of `buf`: null while
 * incomplete; an error text for another message type, a wrong length or a password that is not
 * one NUL-terminated UTF-8 string.
 */
export function parsePasswordMessage(
  buf: Buffer,
): { value: { ok: true; password: string } | { ok: false; message: string }; used: number } | null {
  if (buf.length < 5) return null;
  const type = String.fromCharCode(buf[0] as number);
  const length = buf.readInt32BE(1);
  if (type !== 'p') {
    return {
      value: { ok: false, message: `expected a password message, got message type '${type}'` },
      used: buf.length,
    };
  }
  if (length < 5 || length > MAX_PASSWORD_MESSAGE_BYTES) {
    return {
      value: { ok: false, message: `password message length ${length} is out of bounds` },
      used: buf.length,
    };
  }
  if (buf.length < 1 + length) return null;
  const body = buf.subarray(5, 1 + length);
  const used = 1 + length;
  if (body.at(-1) !== 0 || body.indexOf(0) !== body.length - 1) {
    return { value: { ok: false, message: 'malformed password message' }, used };
  }
  try {
    return { value: { ok: true, password: UTF8.decode(body.subarray(0, -1)) }, used };
  } catch {
    return { value: { ok: false, message: 'the password is not valid UTF-8' }, used };
  }
}

export function saslInitialResponse(mechanism: string, data: string): Buffer {
  const payload = Buffer.from(data, 'utf8');
  const len = Buffer.alloc(4);
  len.writeInt32BE(payload.length, 0);
  return typed('p', Buffer.concat([cstr(mechanism), len, payload]));
}

export function saslResponse(data: string): Buffer {
  return typed('p', Buffer.from(data, 'utf8'));
}

export function terminate(): Buffer {
  return typed('X', Buffer.alloc(0));
}

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL';
  /** SQLSTATE, e.g. 28000 invalid_authorization_specification. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse ('E'); control characters are stripped from every field. */
export function errorResponse(f: ErrorFields): Buffer {
  // NUL would end the C string early; other control characters (but tab/newline) garble terminals.
  const clean = (s: string) =>
    Array.from(s, (ch) => {
      const c = ch.charCodeAt(0);
      return (c < 0x20 && c !== 0x09 && c !== 0x0a) || c === 0x7f ? ' ' : ch;
    }).join('');
  const fields: [string, string][] = [
    ['S', f.severity],
    ['V', f.severity],
    ['C', f.code],
    ['M', clean(f.message)],
  ];
  if (f.detail) fields.push(['D', clean(f.detail)]);
  if (f.hint) fields.push(['H', clean(f.hint)]);
  return typed(
    'E',
    Buffer.concat([...fields.map(([k, v]) => Buffer.concat([Buffer.from(k), cstr(v)])), Buffer.from([0])]),
  );
}

/** Reads an ErrorResponse/NoticeResponse body into its fields (S, C, M, D, H, ...). */
export function parseErrorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const key = String.fromCharCode(body[i] as number);
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    out[key] = body.subarray(i + 1, end).toString('utf8');
    i = end + 1;
  }
  return out;
}

/** An 'R' message's code, and for SASL messages their payload. */
export function parseAuthentication(body: Buffer): { code: number; data: Buffer } {
  return { code: body.readInt32BE(0), data: body.subarray(4) };
}

/** The mechanism names of an AuthenticationSASL message. */
export function saslMechanisms(data: Buffer): string[] {
  return data
    .toString('utf8')
    .split('\0')
    .filter((m) => m !== '');
}
