import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import {
  denialFromData,
  denialFromMcpError,
  denialFromResponse,
  parseRetryAfter,
  WardenDeniedError,
} from './errors.js';

const policyDenial = {
  decision: 'Deny',
  reason: 'ConditionFailed',
  reasons: [
    { policy: 'jira-readers', rule: 1, condition: 'ops-user', message: "condition 'ops-user' is false" },
  ],
};

describe('denialFromMcpError', () => {
  it('reads policy, rule and condition from a JSON-RPC -32003 error', () => {
    const d = denialFromMcpError(new McpError(-32003, "condition 'ops-user' is false", policyDenial));
    expect(d).toBeInstanceOf(WardenDeniedError);
    expect(d).toMatchObject({
      reason: 'ConditionFailed',
      policy: 'jira-readers',
      rule: 1,
      condition: 'ops-user',
    });
    expect(d?.message).toBe("condition 'ops-user' is false");
    expect(d?.transient).toBe(false);
  });
  it('is null for an MCP error that is not Warden’s', () => {
    expect(denialFromMcpError(new McpError(-32601, 'Method not found'))).toBeNull();
  });
  it('is null for a plain Error and for non-errors', () => {
    expect(denialFromMcpError(new Error('boom'))).toBeNull();
    expect(denialFromMcpError('boom')).toBeNull();
    expect(denialFromMcpError(null)).toBeNull();
  });
  it('marks an unreachable authority as transient', () => {
    const d = denialFromMcpError(
      new McpError(-32004, 'authority down', { reason: 'AuthorityUnreachable', reasons: [] }),
    );
    expect(d?.transient).toBe(true);
    expect(d?.reasons).toEqual([{ policy: null, rule: null, condition: null, message: 'authority down' }]);
  });
});

describe('denialFromData', () => {
  it('takes retryAfterSeconds from the body over the header', () => {
    expect(
      denialFromData({ reason: 'QuotaExceeded', retryAfterSeconds: 7 }, 'slow down', { retryAfter: '30' })
        ?.retryAfterSeconds,
    ).toBe(7);
  });
  it('falls back to the Retry-After header', () => {
    const d = denialFromData({ reason: 'QuotaExceeded' }, 'slow down', { retryAfter: '30' });
    expect(d?.retryAfterSeconds).toBe(30);
    expect(d?.transient).toBe(true);
  });
  it('ignores a negative or non-numeric retryAfterSeconds', () => {
    expect(denialFromData({ reason: 'X', retryAfterSeconds: -1 }, 'm')?.retryAfterSeconds).toBeNull();
    expect(denialFromData({ reason: 'X', retryAfterSeconds: '5' }, 'm')?.retryAfterSeconds).toBeNull();
  });
  it('is null without a reason', () => {
    expect(denialFromData({ message: 'x' }, null)).toBeNull();
    expect(denialFromData([1], null)).toBeNull();
  });
});

describe('parseRetryAfter', () => {
  it('reads delay seconds', () => expect(parseRetryAfter('12')).toBe(12));
  it('reads an HTTP date relative to now', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', () => now)).toBe(10);
  });
  it('is null for garbage and for nothing', () => {
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});

describe('denialFromResponse', () => {
  it('reads the HTTP proxy’s 403 body and its request id', async () => {
    const res = new Response(
      JSON.stringify({ error: 'access_denied', message: 'no rule allows GET /x', ...policyDenial }),
      {
        status: 403,
        headers: { 'content-type': 'application/json', 'x-request-id': 'r-1' },
      },
    );
    const d = await denialFromResponse(res);
    expect(d).toMatchObject({
      reason: 'ConditionFailed',
      policy: 'jira-readers',
      requestId: 'r-1',
      message: 'no rule allows GET /x',
    });
  });
  it('reads an MCP refusal (JSON-RPC error body on 403)', async () => {
    const res = new Response(
      JSON.stringify({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32003, message: 'suspended', data: { reason: 'AgentSuspended', reasons: [] } },
      }),
      {
        status: 403,
        headers: { 'content-type': 'application/json' },
      },
    );
    expect(await denialFromResponse(res)).toMatchObject({ reason: 'AgentSuspended', message: 'suspended' });
  });
  it('is null for an upstream’s own 403 that is not JSON', async () => {
    expect(
      await denialFromResponse(
        new Response('forbidden', { status: 403, headers: { 'content-type': 'text/plain' } }),
      ),
    ).toBeNull();
  });
  it('is null for JSON without a reason, and for a success', async () => {
    const json = { 'content-type': 'application/json' };
    expect(
      await denialFromResponse(new Response('{"error":"nope"}', { status: 403, headers: json })),
    ).toBeNull();
    expect(
      await denialFromResponse(new Response('{"reason":"X"}', { status: 200, headers: json })),
    ).toBeNull();
  });
});
