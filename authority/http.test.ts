import { describe, expect, it } from 'vitest';
import { OAuthError } from './errors.js';
import { parseForm, parseJsonObject } from './http.js';
import { FailureRateLimiter } from './ratelimit.js';

const form = (s: string | Buffer) => parseForm(Buffer.isBuffer(s) ? s : Buffer.from(s));

describe('parseForm', () => {
  it('decodes percent-encoding and + as space', () => {
    expect(Object.fromEntries(form('a=x%20y+z&b=&c'))).toEqual({ a: 'x y z', b: '', c: '' });
  });

  it.each([
    ['a broken percent escape', 'a=%zz', 'invalid percent-encoding'],
    ['a truncated percent escape', 'a=abc%2', 'invalid percent-encoding'],
    ['percent-encoded invalid UTF-8', 'a=%ff%fe', 'invalid percent-encoding or is not UTF-8'],
    ['raw invalid UTF-8', Buffer.from([0x61, 0x3d, 0xff]), 'not UTF-8'],
    ['a repeated parameter', 'a=1&a=2', 'given more than once'],
    ['an empty name', '=x', 'empty name'],
  ])('rejects %s', (_name, body, message) => {
    expect(() => form(body)).toThrowError(message);
    try {
      form(body);
    } catch (err) {
      expect((err as OAuthError).code).toBe('invalid_request');
    }
  });
});

describe('parseJsonObject', () => {
  it.each([
    ['invalid JSON', '{', 'not valid JSON'],
    ['an array', '[]', 'must be a JSON object'],
    ['null', 'null', 'must be a JSON object'],
  ])('rejects %s', (_name, body, message) => {
    expect(() => parseJsonObject(Buffer.from(body))).toThrowError(message);
  });
});

describe('FailureRateLimiter', () => {
  it('limits a source after its burst of failures and refills over time', () => {
    let now = 0;
    const rl = new FailureRateLimiter({ burst: 3, refillPerSecond: 1, maxSources: 10 }, () => now);
    for (let i = 0; i < 3; i++) {
      expect(rl.limited('a')).toBe(false);
      rl.fail('a');
    }
    expect(rl.limited('a')).toBe(true);
    expect(rl.retryAfterSeconds('a')).toBe(1);
    expect(rl.limited('b')).toBe(false); // other sources unaffected
    now = 1000;
    expect(rl.limited('a')).toBe(false);
  });

  it('forgets the least recently failing sources beyond maxSources', () => {
    const rl = new FailureRateLimiter({ burst: 1, refillPerSecond: 0.001, maxSources: 2 }, () => 0);
    rl.fail('a');
    rl.fail('b');
    rl.fail('c');
    expect(rl.size).toBe(2);
    expect(rl.limited('a')).toBe(false);
    expect(rl.limited('c')).toBe(true);
  });
});

describe('OAuthError', () => {
  it('keeps the audit detail out of the body', () => {
    const e = new OAuthError('invalid_grant', 'nope', 'pods "secret-pod" not found');
    expect(e.body()).toEqual({ error: 'invalid_grant', error_description: 'nope' });
    expect(JSON.stringify(e.body())).not.toContain('secret-pod');
  });
});
