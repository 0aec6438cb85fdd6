/**
 * Request-body handling shared by the authority's endpoints: bounded reads and strict parsing,
 * each failure an OAuth error that says what was wrong.
 */
import type { IncomingMessage } from 'node:http';
import { OAuthError } from './errors.js';

/** Largest /v1/token body: a projected token is 1–2 KiB; 16 KiB leaves room without inviting abuse. */
export const MAX_FORM_BYTES = 16 * 1024;
/** Largest /v1/credentials body (request args and context included). */
export const MAX_JSON_BYTES = 64 * 1024;

/** Reads the whole body, refusing (413) as soon as it exceeds `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    throw new OAuthError('invalid_request', `request body exceeds the ${limit}-byte limit`, undefined, 413);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      throw new OAuthError('invalid_request', `request body exceeds the ${limit}-byte limit`, undefined, 413);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Media type without parameters, lower-cased. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function decodeComponent(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw new OAuthError(
      'invalid_request',
      `malformed application/x-www-form-urlencoded body: ${what} has an invalid percent-encoding or is not UTF-8`,
    );
  }
}

/**
 * Strict application/x-www-form-urlencoded parsing: invalid percent-encoding and invalid UTF-8 are
 * errors (URLSearchParams would silently keep them), and a parameter given twice is an error
 * (RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once").
 */
export function parseForm(body: Buffer): Map<string, string> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new OAuthError('invalid_request', 'malformed application/x-www-form-urlencoded body: not UTF-8');
  }
  const params = new Map<string, string>();
  if (text === '') return params;
  for (const [index, pair] of text.split('&').entries()) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const name = decodeComponent(rawName, `parameter #${index + 1} name`);
    if (name === '') {
      throw new OAuthError(
        'invalid_request',
        `malformed form body: parameter #${index + 1} has an empty name`,
      );
    }
    const value = decodeComponent(rawValue, `parameter ${JSON.stringify(name.slice(0, 64))}`);
    if (params.has(name)) {
      throw new OAuthError('invalid_request', `parameter ${name.slice(0, 64)} is given more than once`);
    }
    params.set(name, value);
  }
  return params;
}

/** Parses a JSON object body; anything else is an invalid_request naming the problem. */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message : 'not UTF-8';
    throw new OAuthError('invalid_request', `request body is not valid JSON: ${why}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new OAuthError('invalid_request', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** The bearer token of an Authorization header, or an invalid_token error. */
export function bearerToken(req: IncomingMessage): string {
  const header = req.headers.authorization;
  if (!header) throw new OAuthError('invalid_token', 'missing Authorization: Bearer <session token>');
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i.exec(header.trim());
  if (!m) throw new OAuthError('invalid_token', 'Authorization header must be "Bearer <session token>"');
  return m[1]!;
}

/**
 * What `p` resolves to, or `late` once `ms` passed first. The timer is cleared either way, so
 * nothing outlives the request; `p` itself goes on (an audit entry stays queued in the writer).
 */
export async function resolvedWithin<T, L>(p: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<L>((resolve) => {
        timer = setTimeout(() => resolve(late), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
