/**
 * Hostile input for the authority's token endpoint (issue 10, part 4): the form parser
 * (http.ts parseForm) and POST /v1/token end to end over a real node:http server. Whatever the
 * bytes — broken percent-encoding, invalid UTF-8, repeated keys, huge bodies — the caller gets an
 * OAuth error body (RFC 6749 §5.2) that says what was wrong, never a crash or a 500.
 *
 * The server is the production one (createAuthorityServer + handleTokenExchange) with in-memory
 * Kubernetes readers: no request here can reach the point where the API server matters, except
 * through the reviewer, which refuses every token as the API server would refuse garbage.
 *
 * Deterministic: a fixed seed (override with FUZZ_SEED=<n>) and bounded runs.
 */
import { Agent, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryAuditSink } from './audit.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from './constants.js';
import { OAuthError, type OAuthErrorCode } from './errors.js';
import { MAX_FORM_BYTES, parseForm } from './http.js';
import { StaticKeySource } from './keystore.js';
import { FailureRateLimiter } from './ratelimit.js';
import { createAuthorityServer } from './server.js';
import { Sessions } from './session.js';
import { handleTokenExchange } from './token.js';

const seed = Number(process.env.FUZZ_SEED ?? 20_261_129);
// FUZZ_SCALE=10 runs ten times as many cases (e.g. under `make bench`); the default keeps `make test` fast.
const runs = (numRuns: number) => ({
  seed,
  numRuns: Math.max(1, Math.round(numRuns * Number(process.env.FUZZ_SCALE ?? 1))),
});
// Generous per-test ceiling (not a timing assertion): shared 2-core CI machines and FUZZ_SCALE runs are slow.
vi.setConfig({ testTimeout: 120_000 * Math.max(1, Number(process.env.FUZZ_SCALE ?? 1)) });

const ISSUER = 'https://warden-authority.fuzz';

/** Either a Map, or an OAuthError invalid_request that names the problem; nothing else may escape. */
function parseOutcome(body: Buffer): Map<string, string> | OAuthError {
  try {
    return parseForm(body);
  } catch (err) {
    if (err instanceof OAuthError) return err;
    throw new Error(
      `parseForm threw a non-OAuth error on ${JSON.stringify(body.toString('latin1'))}: ${err}`,
    );
  }
}

function expectClearFormError(e: OAuthError, mentions: RegExp): void {
  expect(e.code).toBe('invalid_request');
  expect(e.status).toBe(400);
  expect(e.description).toMatch(mentions);
}

/** Form-ish text: names, values, `=`, `&`, `+`, good and broken percent escapes, non-ASCII. */
const formish = fc
  .array(
    fc.oneof(
      fc.constantFrom('=', '&', '+', '%', '%2', '%zz', '%41', '%E0%A4%A', '%ff', '%C3%A9', '%00', 'é', '😀'),
      fc.string({ unit: 'binary', maxLength: 6 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(''));

/** A parameter name or value as a client would send it: anything, percent-encoded (space as `+` or %20). */
const encoded = (s: string, plus: boolean) => {
  const e = encodeURIComponent(s);
  return plus ? e.replace(/%20/g, '+') : e;
};

describe('parseForm under hostile input', () => {
  it('arbitrary bytes: a map or an invalid_request, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const r = parseOutcome(Buffer.from(bytes));
        if (r instanceof OAuthError) expectClearFormError(r, /form|parameter|UTF-8/);
      }),
      runs(1000),
    );
  });

  it('form-ish text with broken escapes: a map or an error naming the parameter', () => {
    fc.assert(
      fc.property(formish, (text) => {
        const r = parseOutcome(Buffer.from(text));
        if (r instanceof OAuthError) {
          expectClearFormError(r, /percent-encoding|empty name|more than once/);
          if (/percent-encoding/.test(r.description)) expect(r.description).toMatch(/parameter/);
        }
      }),
      runs(1000),
    );
  });

  it('round-trips any set of distinct parameters, whatever the characters', () => {
    const params = fc.uniqueArray(
      fc.tuple(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
        fc.string({ unit: 'grapheme', maxLength: 24 }),
      ),
      { selector: ([name]) => name, maxLength: 12 },
    );
    fc.assert(
      fc.property(params, fc.boolean(), (pairs, plus) => {
        const body = pairs.map(([n, v]) => `${encoded(n, plus)}=${encoded(v, plus)}`).join('&');
        expect(parseOutcome(Buffer.from(body))).toEqual(new Map(pairs));
      }),
      runs(1000),
    );
  });

  it('a parameter given twice is refused, however each occurrence is encoded', () => {
    const text = (minLength: number, maxLength: number) =>
      fc.string({ unit: 'grapheme', minLength, maxLength });
    fc.assert(
      fc.property(text(1, 10), text(0, 8), text(0, 8), (n, v1, v2) => {
        // The second occurrence percent-encodes every byte of the name: same parameter after decoding.
        const allEscaped = [...Buffer.from(n)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
        const body = `${encoded(n, true)}=${encoded(v1, true)}&x-other=1&${allEscaped}=${encoded(v2, false)}`;
        const r = parseOutcome(Buffer.from(body));
        expect(r).toBeInstanceOf(OAuthError);
        expectClearFormError(r as OAuthError, /more than once/);
      }),
      runs(500),
    );
  });

  it('a broken percent escape anywhere in a value is refused', () => {
    const broken = fc.constantFrom('%', '%2', '%zz', '%g0', '%ff', '%C3', '%E0%A4%A', '%ED%A0%80');
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 10 }),
        broken,
        fc.string({ unit: 'grapheme', maxLength: 10 }),
        (a, bad, b) => {
          // `~` (unreserved, not a hex digit) keeps the next character from completing the escape.
          const value = `${encodeURIComponent(a)}${bad}~${encodeURIComponent(b)}`;
          const r = parseOutcome(Buffer.from(`grant_type=${value}`));
          expect(r).toBeInstanceOf(OAuthError);
          expectClearFormError(r as OAuthError, /parameter "grant_type" has an invalid percent-encoding/);
        },
      ),
      runs(500),
    );
  });

  it('bodies at the size limit made of separators only parse in one pass', () => {
    fc.assert(
      fc.property(fc.constantFrom('&', '=', '+', '&=', 'a=&'), (unit) => {
        const text = unit.repeat(Math.floor(MAX_FORM_BYTES / unit.length));
        const r = parseOutcome(Buffer.from(text));
        if (r instanceof OAuthError) expectClearFormError(r, /empty name|more than once/);
      }),
      runs(5),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// POST /v1/token over HTTP

const OAUTH_CODES = new Set<OAuthErrorCode>([
  'invalid_request',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'access_denied',
  'invalid_target',
  'invalid_token',
  'slow_down',
]);

interface Reply {
  status: number;
  contentType: string | undefined;
  body: unknown;
}

let server: ReturnType<typeof createAuthorityServer>;
let port: number;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const audit = new MemoryAuditSink(100);

beforeAll(async () => {
  const keys = StaticKeySource.generate();
  const sessions = new Sessions({ issuer: ISSUER, keys });
  server = createAuthorityServer({
    issuer: ISSUER,
    keys,
    audit,
    // Every fuzz request fails on purpose; a budget this large keeps them from turning into 429s.
    limiter: new FailureRateLimiter({ burst: 1e9, refillPerSecond: 1, maxSources: 10 }),
    log: pino({ level: 'silent' }),
    token: (ctx) =>
      handleTokenExchange(ctx, {
        // Garbage never authenticates at the API server.
        reviewer: { review: async () => ({ authenticated: false, error: 'token invalid' }) },
        pods: { getPod: async () => null },
        identities: { getAgentIdentity: async () => null },
        sessions,
        broker: { trustedImages: [], authorityUrl: ISSUER },
      }),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  agent.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function post(body: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/token',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // left as text: the assertion below reports it
          }
          resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: parsed });
        });
        res.on('error', reject);
      },
    );
    // The server may answer (413) and close before the whole body is written.
    req.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
    );
    req.end(body);
  });
}

function expectOAuthError(r: Reply, status?: number): { error: string; error_description: string } {
  expect(r.contentType).toBe('application/json');
  const body = r.body as { error: OAuthErrorCode; error_description: string };
  expect(OAUTH_CODES.has(body.error)).toBe(true);
  expect(typeof body.error_description).toBe('string');
  expect(body.error_description.length).toBeGreaterThan(5);
  expect(r.status).toBeGreaterThanOrEqual(400);
  expect(r.status).toBeLessThan(500);
  if (status !== undefined) expect(r.status).toBe(status);
  return body;
}

const exchangeForm = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');

describe('POST /v1/token under hostile input', () => {
  it('arbitrary bytes: always a 4xx OAuth error body, never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 1024 }), async (bytes) => {
        expectOAuthError(await post(Buffer.from(bytes)));
      }),
      runs(300),
    );
  });

  it('form-ish text, repeated keys and broken escapes around a real exchange: a 4xx OAuth error', async () => {
    const base = exchangeForm({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: 'eyJhbGciOiJSUzI1NiJ9.e30.sig',
      subject_token_type: TOKEN_TYPE_JWT,
    });
    await fc.assert(
      fc.asyncProperty(formish, fc.nat({ max: base.length }), async (junk, at) => {
        const body = `${base.slice(0, at)}${junk}${base.slice(at)}`;
        expectOAuthError(await post(Buffer.from(body)));
      }),
      runs(300),
    );
  });

  it('every field of the exchange arbitrary: a 4xx OAuth error naming the field', async () => {
    const field = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.constantFrom(GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS_TOKEN, ''),
    );
    const fields = fc.dictionary(
      fc.constantFrom(
        'grant_type',
        'subject_token',
        'subject_token_type',
        'requested_token_type',
        'resource',
        'actor_token',
        'actor_token_type',
        'scope',
      ),
      field,
    );
    await fc.assert(
      fc.asyncProperty(fields, async (f) => {
        const body = expectOAuthError(await post(Buffer.from(exchangeForm(f))));
        expect(body.error_description).toMatch(
          /grant_type|subject_token|requested_token_type|actor_token|rejected|session token|not|must/,
        );
      }),
      runs(300),
    );
  });

  it('oversized subject tokens (8 KiB < token ≤ body limit) are refused before any review', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 8193, max: MAX_FORM_BYTES - 200 }), async (length) => {
        const body = exchangeForm({
          grant_type: GRANT_TOKEN_EXCHANGE,
          subject_token: 'a'.repeat(length),
          subject_token_type: TOKEN_TYPE_JWT,
        });
        const err = expectOAuthError(await post(Buffer.from(body)), 400);
        expect(err.error).toBe('invalid_request');
        expect(err.error_description).toBe('subject_token is longer than 8192 characters');
      }),
      runs(20),
    );
  });

  it('bodies over the limit, declared or streamed chunked: 413 with an OAuth body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: MAX_FORM_BYTES + 1, max: 8 * MAX_FORM_BYTES }),
        fc.boolean(),
        async (size, chunked) => {
          const headers: Record<string, string> = chunked ? { 'transfer-encoding': 'chunked' } : {};
          const r = await post(Buffer.alloc(size, 0x61), headers);
          const err = expectOAuthError(r, 413);
          expect(err.error_description).toBe(`request body exceeds the ${MAX_FORM_BYTES}-byte limit`);
        },
      ),
      runs(20),
    );
  });
});
