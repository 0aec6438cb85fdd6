/**
 * Hostile input for the MCP gateway's JSON-RPC parser (issue 10, part 4): whatever an untrusted
 * agent POSTs, parseAgentMessage returns — it never throws — either one validated message or a
 * JSON-RPC error the agent can read, and nothing it accepts skips the per-message decision.
 *
 * Deterministic: a fixed seed (override with FUZZ_SEED=<n> to explore) and bounded runs.
 */
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { MAX_JSON_DEPTH } from './constants.js';
import { CLIENT_NOTIFICATIONS, CLIENT_REQUESTS, type ParseResult, parseAgentMessage } from './jsonrpc.js';

const seed = Number(process.env.FUZZ_SEED ?? 20_261_129);
// FUZZ_SCALE=10 runs ten times as many cases (e.g. under `make bench`); the default keeps `make test` fast.
const runs = (numRuns: number) => ({
  seed,
  numRuns: Math.max(1, Math.round(numRuns * Number(process.env.FUZZ_SCALE ?? 1))),
});
// Generous per-test ceiling (not a timing assertion): shared 2-core CI machines and FUZZ_SCALE runs are slow.
vi.setConfig({ testTimeout: 120_000 * Math.max(1, Number(process.env.FUZZ_SCALE ?? 1)) });

const enc = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** Error codes the parser may answer with; anything else would be a contract change. */
const PARSER_CODES = new Set<number>([
  ErrorCode.ParseError,
  ErrorCode.InvalidRequest,
  ErrorCode.MethodNotFound,
  ErrorCode.InvalidParams,
]);

/** The invariant every input must satisfy: a result, never an exception; errors well-formed and short. */
function wellFormed(r: ParseResult): void {
  if (r.ok) {
    expect(['request', 'notification', 'response']).toContain(r.message.kind);
    return;
  }
  expect([200, 400, 413]).toContain(r.status);
  expect(r.error.jsonrpc).toBe('2.0');
  expect(PARSER_CODES.has(r.error.error.code)).toBe(true);
  expect(typeof r.error.error.message).toBe('string');
  expect(r.error.error.message.length).toBeGreaterThan(10);
  // Bounded: a message quoting attacker input must not echo megabytes back.
  expect(r.error.error.message.length).toBeLessThan(2000);
  // Serializable as the response body (no cycles, no BigInt).
  expect(() => JSON.stringify(r.error)).not.toThrow();
}

const knownRequests = [...CLIENT_REQUESTS.keys()];
const knownNotifications = [...CLIENT_NOTIFICATIONS.keys()];

/** Anything JSON-RPC-ish: right and wrong versions, ids of every JSON type, known and unknown methods. */
const rpcLike = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.constant('1.0'), fc.jsonValue()),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 20 }), fc.double(), fc.constant(null), fc.jsonValue()),
    method: fc.oneof(
      fc.constantFrom(...knownRequests, ...knownNotifications),
      fc.string({ maxLength: 40 }),
      fc.jsonValue(),
    ),
    params: fc.oneof(
      fc.record({ name: fc.string({ maxLength: 30 }), arguments: fc.jsonValue() }, { requiredKeys: [] }),
      fc.jsonValue(),
    ),
    result: fc.jsonValue(),
    error: fc.jsonValue(),
  },
  { requiredKeys: [] },
);

describe('parseAgentMessage under hostile input', () => {
  it('arbitrary bytes: a result, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => wellFormed(parseAgentMessage(bytes))),
      runs(1000),
    );
  });

  it('arbitrary (also unpaired-surrogate) strings: a result, never an exception', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 256 }), (s) =>
        wellFormed(parseAgentMessage(enc(s))),
      ),
      runs(500),
    );
  });

  it('arbitrary JSON documents: a result; arrays are always refused as batches', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
        const r = parseAgentMessage(enc(JSON.stringify(v) ?? 'null'));
        wellFormed(r);
        if (Array.isArray(v)) {
          expect(r.ok).toBe(false);
          // (or for an integer past 2^53 inside it, which the strict parser refuses first)
          if (!r.ok) expect(r.error.error.message).toMatch(/batches|2\^53/);
        }
      }),
      runs(500),
    );
  });

  it('JSON-RPC-shaped objects: only known MCP client methods are accepted, errors echo a readable id', () => {
    fc.assert(
      fc.property(rpcLike, (msg) => {
        const r = parseAgentMessage(enc(JSON.stringify(msg)));
        wellFormed(r);
        if (r.ok && r.message.kind === 'request') {
          // A method the broker does not know never reaches the upstream without a decision.
          expect(CLIENT_REQUESTS.has(r.message.method)).toBe(true);
          expect(r.message.method).toBe(msg.method);
        }
        if (r.ok && r.message.kind === 'notification') {
          expect(CLIENT_NOTIFICATIONS.has(r.message.method)).toBe(true);
        }
        if (!r.ok) {
          const id = (r.error as { id: unknown }).id;
          // Either the caller's id (string or integer, as JSON-RPC allows) or null, never something invented.
          // (compared after a JSON round trip, as the parser saw it: -0 is sent as 0)
          if (id !== null) expect(id).toEqual(JSON.parse(JSON.stringify(msg.id)));
          if (typeof msg.id !== 'string' && !Number.isInteger(msg.id)) expect(id).toBeNull();
        }
      }),
      runs(500),
    );
  });

  it('tools/call with arbitrary arguments: accepted only with a string tool name', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue()), (args, name) => {
        const body = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } };
        const r = parseAgentMessage(enc(JSON.stringify(body)));
        wellFormed(r);
        if (r.ok) {
          expect(typeof (r.message.kind === 'request' && r.message.params?.name)).toBe('string');
        }
      }),
      runs(500),
    );
  });

  it('a valid message, truncated or with bytes flipped: a result, never an exception', () => {
    const valid = enc(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 'req-1',
        method: 'tools/call',
        params: { name: 'jira.get_issue', arguments: { key: 'SUP-1', nested: [1, { a: 'b\\"c' }] } },
      }),
    );
    const mutation = fc.record({
      cut: fc.nat({ max: valid.length }),
      flips: fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), {
        maxLength: 6,
      }),
    });
    fc.assert(
      fc.property(mutation, ({ cut, flips }) => {
        const bytes = Uint8Array.from(valid);
        for (const [at, b] of flips) bytes[at] = b;
        wellFormed(parseAgentMessage(bytes.subarray(0, cut)));
        wellFormed(parseAgentMessage(bytes));
      }),
      runs(500),
    );
  });

  it('nesting beyond the limit is refused; within it, depth never causes a refusal', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 * MAX_JSON_DEPTH }), fc.boolean(), (levels, objects) => {
        const open = objects ? '{"a":' : '[';
        const close = objects ? '}' : ']';
        const nested = `${open.repeat(levels)}1${close.repeat(levels)}`;
        // params and arguments add two levels, the message itself one.
        const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"x":${nested}}}}`;
        const r = parseAgentMessage(enc(body));
        wellFormed(r);
        const total = levels + 3;
        if (total > MAX_JSON_DEPTH) {
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.error.error.message).toContain(`deeper than ${MAX_JSON_DEPTH}`);
        } else {
          expect(r.ok).toBe(true);
        }
      }),
      runs(300),
    );
  });

  it('a body over the byte limit is refused with 413 whatever it contains', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 65, maxLength: 300 }), (bytes) => {
        const r = parseAgentMessage(bytes, 64);
        wellFormed(r);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.status).toBe(413);
      }),
      runs(300),
    );
  });
});
