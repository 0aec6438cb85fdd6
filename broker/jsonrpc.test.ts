import { ErrorCode, JSONRPCRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { filterToolList, parseAgentMessage, plainRequestEnvelope, toolNameProblem } from './jsonrpc.js';

const enc = (v: unknown): Uint8Array => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const call = (name: string, args: unknown = {}) => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name, arguments: args },
});

describe('parseAgentMessage', () => {
  it('accepts a tools/call request', () => {
    const r = parseAgentMessage(enc(call('jira.get_issue', { key: 'SUP-1' })));
    expect(r.ok && r.message).toEqual({
      kind: 'request',
      id: 1,
      method: 'tools/call',
      params: { name: 'jira.get_issue', arguments: { key: 'SUP-1' } },
    });
  });

  it('accepts notifications and responses to server requests', () => {
    expect(parseAgentMessage(enc({ jsonrpc: '2.0', method: 'notifications/initialized' }))).toMatchObject({
      ok: true,
      message: { kind: 'notification', method: 'notifications/initialized' },
    });
    expect(parseAgentMessage(enc({ jsonrpc: '2.0', id: 'srv-1', result: {} }))).toMatchObject({
      ok: true,
      message: { kind: 'response', id: 'srv-1' },
    });
  });

  it.each([
    ['invalid JSON', '{"jsonrpc":"2.0",', 400, ErrorCode.ParseError, /not valid JSON/],
    ['a trailing comma', '{"jsonrpc":"2.0","id":1,"method":"ping",}', 400, ErrorCode.ParseError, /offset 40/],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 400, ErrorCode.ParseError, /UTF-8/],
    ['a batch', [call('a'), call('b')], 400, ErrorCode.InvalidRequest, /batches are not supported/],
    ['an empty batch', [], 400, ErrorCode.InvalidRequest, /batches/],
    [
      'wrong jsonrpc version',
      { jsonrpc: '1.0', id: 1, method: 'ping' },
      400,
      ErrorCode.InvalidRequest,
      /not a valid JSON-RPC 2.0 message/,
    ],
    ['a bare string', '"hello"', 400, ErrorCode.InvalidRequest, /JSON-RPC/],
    [
      'extra top-level field',
      { jsonrpc: '2.0', id: 1, method: 'ping', extra: 1 },
      400,
      ErrorCode.InvalidRequest,
      /JSON-RPC/,
    ],
    ['float id', { jsonrpc: '2.0', id: 1.5, method: 'ping' }, 400, ErrorCode.InvalidRequest, /JSON-RPC/],
    [
      'unknown method',
      { jsonrpc: '2.0', id: 7, method: 'tools/delete_everything' },
      200,
      ErrorCode.MethodNotFound,
      /is not an MCP client request/,
    ],
    [
      'server-only method from the agent',
      { jsonrpc: '2.0', id: 7, method: 'sampling/createMessage', params: {} },
      200,
      ErrorCode.MethodNotFound,
      /not an MCP client request/,
    ],
    [
      'tools/call without a name',
      { jsonrpc: '2.0', id: 3, method: 'tools/call', params: {} },
      200,
      ErrorCode.InvalidParams,
      /params\.name/,
    ],
    ['tools/call with array arguments', call('x', [1, 2]), 200, ErrorCode.InvalidParams, /params\.arguments/],
    [
      'unknown notification',
      { jsonrpc: '2.0', method: 'notifications/whatever' },
      400,
      ErrorCode.MethodNotFound,
      /not an MCP client notification/,
    ],
    [
      'deep nesting',
      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":${'['.repeat(200)}${']'.repeat(200)}}}}`,
      400,
      ErrorCode.InvalidRequest,
      /nesting is deeper than 64/,
    ],
  ])('refuses %s', (_name, body, status, code, message) => {
    const r = parseAgentMessage(Buffer.isBuffer(body) ? body : enc(body));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.status).toBe(status);
    expect(r.error.error.code).toBe(code);
    expect(r.error.error.message).toMatch(message);
  });

  // Issue 15 item 1: what JSON.parse reads as tools/list, a first-key-wins upstream runs as tools/call.
  it.each([
    [
      'method',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","method":"tools/list","params":{"name":"jira.delete_issue"}}',
      '$.method',
      5,
    ],
    [
      'name',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"jira.delete_issue","name":"jira.get_issue"}}',
      '$.params.name',
      5,
    ],
    [
      'params',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"jira.delete_issue"},"params":{"name":"jira.get_issue"}}',
      '$.params',
      5,
    ],
    [
      'a key deep in the arguments',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t","arguments":{"q":[{"a":1,"b":2,"a":3}]}}}',
      '$.params.arguments.q[0].a',
      5,
    ],
    [
      'a key spelled with an escape',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t","n\\u0061me":"u"}}',
      '$.params.name',
      5,
    ],
    ['id (no id is echoed)', '{"jsonrpc":"2.0","id":5,"id":6,"method":"ping"}', '$.id', null],
  ])('refuses a repeated %s, naming the key and its JSON path', (_n, body, path, id) => {
    const r = parseAgentMessage(enc(body));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.status).toBe(400);
    expect(r.error.error.code).toBe(ErrorCode.InvalidRequest);
    const key = path.replace(/^.*[.[]/, '').replace(/]$/, '');
    expect(r.error.error.message).toContain(`duplicate key "${key}" at ${path}`);
    expect(r.error.id).toBe(id);
  });

  it.each([
    ['a lone surrogate', '"\\ud800"', /lone UTF-16 surrogate/],
    ['an integer past 2^53', '12345678901234567890', /beyond ±\(2\^53−1\)/],
    ['a float that overflows', '1e400', /too large for a 64-bit float/],
  ])('refuses %s in the arguments (parsers read it differently)', (_n, arg, message) => {
    const body = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","arguments":{"x":${arg}}}}`;
    const r = parseAgentMessage(enc(body));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.error.code).toBe(ErrorCode.InvalidRequest);
    expect(r.error.error.message).toMatch(message);
    expect(r.error.error.message).toContain('$.params.arguments.x');
  });

  it('forwards its own serialisation of what it decided on, not the bytes it was sent', () => {
    const body =
      '{ "jsonrpc" : "2.0", "id" : 1, "method" : "tools/call",\n "params" : { "name" : "jira\\u002eget_issue", "arguments" : { "n" : 1.50, "z": -0, "e": 1E2, "__proto__": {"x": 1} } } }';
    const r = parseAgentMessage(enc(body));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message).toMatchObject({ kind: 'request', params: { name: 'jira.get_issue' } });
    expect(r.forward.toString()).toBe(
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"jira.get_issue","arguments":{"n":1.5,"z":0,"e":100,"__proto__":{"x":1}}}}',
    );
    expect(r.forward.toString()).toBe(JSON.stringify(r.json));
    // The __proto__ key is data, not the arguments' prototype.
    const args = (r.message.kind === 'request' && r.message.params?.arguments) as object;
    expect(Object.getPrototypeOf(args)).toBe(Object.prototype);
    expect(Object.keys(args)).toContain('__proto__');
  });

  it('answers an unknown method with the request id', () => {
    const r = parseAgentMessage(enc({ jsonrpc: '2.0', id: 'abc', method: 'x/y' }));
    expect(!r.ok && r.error.id).toBe('abc');
  });

  it('refuses bodies over the limit without parsing them', () => {
    const r = parseAgentMessage(new Uint8Array(2048), 1024);
    expect(r).toMatchObject({ ok: false, status: 413, error: { error: { code: ErrorCode.InvalidRequest } } });
  });
});

describe('toolNameProblem', () => {
  it.each(['jira.get_issue', 'search', 'a-b_c.d', 'X1'])('accepts %s', (n) =>
    expect(toolNameProblem(n)).toBeNull(),
  );
  it.each([
    ['empty', ''],
    ['path traversal', 'jira.get_x/../../admin'],
    ['slash', 'jira/get'],
    ['backslash', 'jira\\get'],
    ['dot-dot', 'jira..get'],
    ['leading dot', '.hidden'],
    ['leading dash', '-rf'],
    ['space', 'get issue'],
    ['unicode lookalike', 'jira.get_іssue'],
    ['NUL', 'a\0b'],
    ['too long', 'a'.repeat(129)],
  ])('refuses %s', (_n, name) => expect(toolNameProblem(name)).not.toBeNull());
});

describe('filterToolList', () => {
  const list = {
    jsonrpc: '2.0',
    id: 2,
    result: {
      tools: [{ name: 'jira.get_issue' }, { name: 'jira.delete_issue' }, { name: '../evil' }, { nope: 1 }],
      nextCursor: 'c',
    },
  };
  it('keeps only allowed, well-formed tools and the rest of the result', () => {
    const r = filterToolList(list, (n) => n.startsWith('jira.get_'));
    expect(r.hidden).toBe(3);
    expect(r.message).toEqual({
      jsonrpc: '2.0',
      id: 2,
      result: { tools: [{ name: 'jira.get_issue' }], nextCursor: 'c' },
    });
  });
  it('leaves other messages unchanged', () => {
    const m = { jsonrpc: '2.0', id: 2, error: { code: 1, message: 'x' } };
    expect(filterToolList(m, () => false)).toEqual({ message: m, hidden: 0 });
  });
});

describe('plainRequestEnvelope: the hand check that stands in for the SDK schema on plain requests', () => {
  const plain = {
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'jira.search', arguments: {} },
  };

  it.each([
    ['a tools/call with params', plain],
    ['a request without params', { jsonrpc: '2.0', id: 'a', method: 'ping' }],
    ['a string id', { ...plain, id: 'req-1' }],
  ])('accepts %s, which the SDK schema accepts too', (_, msg) => {
    expect(plainRequestEnvelope(msg)).toBe(true);
    expect(JSONRPCRequestSchema.safeParse(msg).success).toBe(true);
  });

  it.each([
    [
      'params with _meta (the schema checks it)',
      { ...plain, params: { _meta: { progressToken: 1 }, name: 'x' } },
    ],
    ['an extra key', { ...plain, extra: 1 }],
    ['a result next to the method', { ...plain, result: {} }],
    ['a fractional id', { ...plain, id: 1.5 }],
    ['an id beyond the safe integers', { ...plain, id: 2 ** 60 }],
    ['a null id', { ...plain, id: null }],
    ['no id (a notification)', { jsonrpc: '2.0', method: 'notifications/initialized' }],
    ['jsonrpc 1.0', { ...plain, jsonrpc: '1.0' }],
    ['a non-string method', { ...plain, method: 5 }],
    ['params as an array', { ...plain, params: [] }],
    ['params null', { ...plain, params: null }],
    ['an own __proto__ key', JSON.parse('{"jsonrpc":"2.0","id":1,"method":"ping","__proto__":{}}')],
    ['an array', [plain]],
    ['null', null],
  ])('leaves %s to the SDK schema', (_, msg) => {
    expect(plainRequestEnvelope(msg)).toBe(false);
  });

  it("refuses what it leaves to the schema with the schema's own message", () => {
    const res = parseAgentMessage(Buffer.from(JSON.stringify({ ...plain, extra: 1 })));
    expect(res.ok).toBe(false);
    expect(JSON.stringify(res)).toContain('not a valid JSON-RPC 2.0 message');
  });
});
