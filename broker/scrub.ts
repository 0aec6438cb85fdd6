/**
 * Response scrubbing: an upstream that echoes the injected credential (in a debug endpoint, an
 * error page, a reflected header) must not hand it to the agent. Every form of the credential the
 * broker knows (secretForms: raw, the usual encodings, each JWT segment) is replaced with
 * REDACTED, also when an occurrence straddles two chunks of a streamed body.
 *
 * Scrubbing is best effort against an upstream that reflects what it received; it cannot stop one
 * that transforms the credential in a way not listed here (reversed, split with separators,
 * encrypted). Sender-constrained tokens (DPoP, broker/dpop.ts) make a leaked Warden JWT useless
 * instead (docs/threat-model.md, "Credentials reaching the agent").
 */
import { Transform, type TransformCallback } from 'node:stream';
import { REDACTED } from './constants.js';

/** Shorter values are not scrubbed: they would redact noise and reveal nothing usable. */
export const MIN_SCRUB_CHARS = 8;

/**
 * Base64 of `bytes` as it appears inside a longer Base64 text, for each of the three alignments
 * the value can start at: the characters that depend only on the value's bits (the first and last
 * characters also carry bits of the neighbours and are left out). Together these find the value
 * inside any Base64 blob — an echoed JSON document, a cookie — not only when encoded on its own.
 */
function base64Cores(bytes: Buffer, encoding: 'base64' | 'base64url'): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const text = Buffer.concat([Buffer.alloc(k), bytes])
      .toString(encoding)
      .replace(/=+$/, '');
    const first = Math.ceil((8 * k) / 6);
    const last = Math.floor((8 * (k + bytes.length)) / 6);
    out.push(text.slice(first, last));
  }
  return out;
}

/** Base64 (standard and URL-safe, padded and not, at any alignment) and hex (both cases) of bytes. */
export function byteForms(bytes: Buffer): string[] {
  const std = bytes.toString('base64');
  const url = bytes.toString('base64url');
  const stdForms = [std, std.replace(/=+$/, ''), ...base64Cores(bytes, 'base64')];
  const hex = bytes.toString('hex');
  return [
    ...stdForms,
    // A standard Base64 value in a URL query: + / = percent-encoded.
    ...stdForms.map((f) => encodeURIComponent(f)),
    url,
    `${url}${'='.repeat((4 - (url.length % 4)) % 4)}`,
    ...base64Cores(bytes, 'base64url'),
    hex,
    hex.toUpperCase(),
  ];
}

/** Every character as a %XX escape (what a "percent-encode everything" echo produces). */
function percentAll(bytes: Buffer, upper: boolean): string {
  let out = '';
  for (const b of bytes) out += `%${b.toString(16).padStart(2, '0')}`;
  return upper ? out.toUpperCase() : out;
}

/** Every UTF-16 unit as a JSON \uXXXX escape (what an ASCII-only JSON encoder may produce). */
function jsonEscapeAll(value: string, upper: boolean): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const hex = value.charCodeAt(i).toString(16).padStart(4, '0');
    out += `\\u${upper ? hex.toUpperCase() : hex}`;
  }
  return out;
}

/**
 * The forms of one secret value an upstream is likely to echo: as is, JSON-escaped (as a JSON
 * encoder writes it, with "/" escaped, or every character as \uXXXX), percent-encoded (URL
 * component, or every byte as %XX in either case), Base64/Base64url/hex of its UTF-8 bytes, and
 * each of those as it reads inside a JSON string.
 * Nothing for a value shorter than MIN_SCRUB_CHARS; forms shorter than that are left out.
 */
export function secretForms(value: string): string[] {
  if (value.length < MIN_SCRUB_CHARS) return [];
  const bytes = Buffer.from(value, 'utf8');
  const json = JSON.stringify(value).slice(1, -1);
  const forms = [
    value,
    json,
    json.replaceAll('/', '\\/'),
    jsonEscapeAll(value, false),
    jsonEscapeAll(value, true),
    encodeURIComponent(value),
    percentAll(bytes, true),
    percentAll(bytes, false),
    ...byteForms(bytes),
  ];
  // Any of these carried inside a JSON string (an MCP tool result, a JSON API's field) has its
  // backslashes and quotes escaped once more.
  const inJson = forms.map((f) => JSON.stringify(f).slice(1, -1));
  return [...new Set([...forms, ...inJson])].filter((f) => f.length >= MIN_SCRUB_CHARS);
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The three segments of a compact JWS (header, payload, signature), or [] when `value` is not one.
 * Each segment is a piece that, echoed on its own, helps rebuild the token (the header is
 * predictable, so payload and signature are what matter most).
 */
export function jwtSegments(value: string): string[] {
  const parts = value.split('.');
  if (parts.length !== 3 || !parts.every((p) => p.length > 0 && BASE64URL.test(p))) return [];
  return parts;
}

/**
 * Everything to scrub for one credential value: its forms, and for a JWT each segment's forms and
 * the forms of each segment's decoded bytes (a signature re-encoded as standard Base64 or hex).
 */
export function credentialValueForms(value: string): string[] {
  const out = new Set(secretForms(value));
  for (const segment of jwtSegments(value)) {
    if (segment.length < MIN_SCRUB_CHARS) continue;
    for (const f of secretForms(segment)) out.add(f);
    for (const f of byteForms(Buffer.from(segment, 'base64url'))) {
      if (f.length >= MIN_SCRUB_CHARS) out.add(f);
    }
  }
  return [...out];
}

const REDACTED_BYTES = Buffer.from(REDACTED);

/**
 * Incremental scrubber (pure state machine; the Transform below is its stream adapter).
 * Holds back, between chunks, only a trailing run of bytes that is a prefix of some secret (at most
 * longest secret − 1 bytes), so an occurrence split across a chunk boundary is still found and
 * everything else streams through at once.
 */
export class Scrubber {
  private readonly secrets: readonly Buffer[];
  /** Secrets by first byte: where a held-back tail could start. */
  private readonly byFirstByte = new Map<number, Buffer[]>();
  private readonly keep: number;
  private tail: Buffer = Buffer.alloc(0);
  /** How many occurrences were replaced (for audit/logs; never the values). */
  replaced = 0;

  constructor(secrets: readonly string[]) {
    // Longest first so, at the same position, "Bearer <token>" wins over "<token>".
    this.secrets = [...new Set(secrets.filter((s) => s.length > 0))]
      .map((s) => Buffer.from(s))
      .sort((a, b) => b.length - a.length);
    for (const s of this.secrets) {
      const list = this.byFirstByte.get(s[0]!) ?? [];
      list.push(s);
      this.byFirstByte.set(s[0]!, list);
    }
    this.keep = Math.max(0, ...this.secrets.map((s) => s.length - 1));
  }

  /** Feed a chunk; returns what can be emitted now. */
  push(chunk: Buffer): Buffer {
    return this.run(this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk, false);
  }

  /** End of input: returns the rest. */
  end(): Buffer {
    const out = this.run(this.tail, true);
    this.tail = Buffer.alloc(0);
    return out;
  }

  /**
   * How many trailing bytes (after `pos`) could be the start of a secret: only those wait for the
   * next chunk, so a streamed event is not delayed unless it really ends in a possible secret prefix.
   * Scans start positions left to right (the first match is the longest tail); only secrets
   * starting with the byte there are compared.
   */
  private heldBack(buf: Buffer, pos: number): number {
    for (let p = Math.max(pos, buf.length - this.keep); p < buf.length; p++) {
      const candidates = this.byFirstByte.get(buf[p]!);
      if (!candidates) continue;
      const k = buf.length - p;
      for (const s of candidates) if (s.length > k && buf.compare(s, 0, k, p) === 0) return k;
    }
    return 0;
  }

  private run(buf: Buffer, final: boolean): Buffer {
    if (this.secrets.length === 0) return buf;
    const out: Buffer[] = [];
    let pos = 0;
    // Next occurrence of each secret at or after pos (-1: none left); refreshed only when passed,
    // so a body full of echoes costs one scan per secret, not one per occurrence.
    const next = this.secrets.map((s) => buf.indexOf(s));
    for (;;) {
      let best = -1;
      for (let i = 0; i < next.length; i++) {
        const at = next[i]!;
        if (at >= 0 && (best < 0 || at < next[best]!)) best = i;
      }
      if (best < 0) break;
      const at = next[best]!;
      out.push(buf.subarray(pos, at), REDACTED_BYTES);
      this.replaced++;
      pos = at + this.secrets[best]!.length;
      for (let i = 0; i < next.length; i++) {
        if (next[i]! >= 0 && next[i]! < pos) next[i] = buf.indexOf(this.secrets[i]!, pos);
      }
    }
    const keepFrom = final ? buf.length : buf.length - this.heldBack(buf, pos);
    out.push(buf.subarray(pos, keepFrom));
    this.tail = Buffer.from(buf.subarray(keepFrom));
    return Buffer.concat(out);
  }
}

/** Stream adapter for Scrubber. */
export class ScrubTransform extends Transform {
  readonly scrubber: Scrubber;
  constructor(secrets: readonly string[]) {
    super();
    this.scrubber = new Scrubber(secrets);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.scrubber.push(chunk);
    cb(null, out.length ? out : undefined);
  }
  override _flush(cb: TransformCallback): void {
    const out = this.scrubber.end();
    cb(null, out.length ? out : undefined);
  }
}
