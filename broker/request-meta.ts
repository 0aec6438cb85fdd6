/**
 * What the agent tells the broker about a request besides the request itself (pure):
 *   - x-warden-user-token: its human's token (absent = "agent acting alone");
 *   - x-warden-context: JSON metadata that becomes CEL `context`;
 *   - x-request-id: correlation id for audit (generated when absent or unusable).
 */
import { z } from 'zod';
import { HEADER_CONTEXT, HEADER_REQUEST_ID, HEADER_USER_TOKEN } from '../core/constants.js';
import type { ContextInput } from '../core/policy/types.js';
import { MAX_CONTEXT_HEADER_BYTES, MAX_USER_TOKEN_CHARS } from './constants.js';
import { parseStrictJson } from './strict-json.js';

/** x-warden-context is a flat object: nesting beyond this is refused while parsing. */
const MAX_CONTEXT_DEPTH = 4;

export interface RequestMeta {
  readonly requestId: string;
  readonly userToken: string | null;
  readonly context: ContextInput | null;
}

const short = z.string().max(256);
export const ContextSchema = z.strictObject({
  purpose: short.optional(),
  ticketId: short.optional(),
  model: short.optional(),
  chainStep: z.int().min(0).max(1_000_000).optional(),
  geo: short.optional(),
});

type Headers = Readonly<Record<string, string | string[] | undefined>>;

function single(headers: Headers, name: string): string | undefined | null {
  const v = headers[name];
  if (Array.isArray(v)) return null;
  return v;
}

export function readRequestMeta(
  headers: Headers,
  newId: () => string,
): { ok: true; meta: RequestMeta } | { ok: false; message: string } {
  const rid = single(headers, HEADER_REQUEST_ID);
  const requestId = typeof rid === 'string' && /^[\w.:-]{1,128}$/.test(rid) ? rid : newId();

  const token = single(headers, HEADER_USER_TOKEN);
  if (token === null) return { ok: false, message: `${HEADER_USER_TOKEN}: send the header once` };
  let userToken: string | null = null;
  if (token !== undefined && token !== '') {
    if (token.length > MAX_USER_TOKEN_CHARS) {
      return {
        ok: false,
        message: `${HEADER_USER_TOKEN}: token is longer than ${MAX_USER_TOKEN_CHARS} characters`,
      };
    }
    const bare = token.replace(/^Bearer\s+/i, '');
    if (!/^[A-Za-z0-9._~+/=-]+$/.test(bare)) {
      return {
        ok: false,
        message: `${HEADER_USER_TOKEN}: not a bearer token (expected a JWT, optionally prefixed "Bearer ")`,
      };
    }
    userToken = bare;
  }

  const raw = single(headers, HEADER_CONTEXT);
  if (raw === null) return { ok: false, message: `${HEADER_CONTEXT}: send the header once` };
  let context: ContextInput | null = null;
  if (raw !== undefined && raw !== '') {
    if (Buffer.byteLength(raw) > MAX_CONTEXT_HEADER_BYTES) {
      return { ok: false, message: `${HEADER_CONTEXT}: longer than ${MAX_CONTEXT_HEADER_BYTES} bytes` };
    }
    // Read strictly, like MCP messages: a repeated key would be read differently by other parsers.
    const read = parseStrictJson(raw, { maxDepth: MAX_CONTEXT_DEPTH });
    if (!read.ok) {
      return {
        ok: false,
        message:
          read.problem.kind === 'syntax'
            ? `${HEADER_CONTEXT}: not valid JSON (expected an object like {"ticketId":"SUP-1"})`
            : `${HEADER_CONTEXT}: ${read.problem.message}`,
      };
    }
    const json = read.value;
    const r = ContextSchema.safeParse(json);
    if (!r.success) {
      const i = r.error.issues[0]!;
      const where = i.path.length ? `.${i.path.map(String).join('.')}` : '';
      return {
        ok: false,
        message: `${HEADER_CONTEXT}${where}: ${i.message} (allowed fields: purpose, ticketId, model, chainStep, geo)`,
      };
    }
    context = r.data;
  }
  return { ok: true, meta: { requestId, userToken, context } };
}
