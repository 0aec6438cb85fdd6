import { describe, expect, it } from 'vitest';
import { brokerDeny } from './decider.js';
import { denialBody, denialStatus } from './http-proxy.js';
import { denialData } from './mcp-gateway.js';

const quota = { ...brokerDeny('QuotaExceeded', 'quota exceeded: …'), retryAfterMs: 4_100 };

describe('how a QuotaExceeded denial is answered', () => {
  it('HTTP: 429 with Retry-After in whole seconds, rounded up; the body says it too', () => {
    expect(denialStatus(quota)).toEqual({ status: 429, headers: { 'retry-after': '5' } });
    expect(denialBody(quota)).toMatchObject({ reason: 'QuotaExceeded', retryAfterSeconds: 5 });
  });

  it('HTTP: at least 1 s, never 0 (a client would retry at once)', () => {
    expect(denialStatus({ ...quota, retryAfterMs: 3 }).headers['retry-after']).toBe('1');
  });

  it('HTTP: every other denial stays 403 without Retry-After', () => {
    const d = brokerDeny('NoMatchingAllow', 'no rule allows it');
    expect(denialStatus(d)).toEqual({ status: 403, headers: {} });
    expect(denialBody(d)).not.toHaveProperty('retryAfterSeconds');
  });

  it('MCP: the JSON-RPC error data carries retryAfterSeconds', () => {
    expect(denialData(quota)).toMatchObject({ reason: 'QuotaExceeded', retryAfterSeconds: 5 });
    expect(denialData(brokerDeny('NoMatchingAllow', 'x'))).not.toHaveProperty('retryAfterSeconds');
  });
});
