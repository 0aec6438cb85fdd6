import { describe, expect, it } from 'vitest';
import { readRequestMeta } from './request-meta.js';

const read = (h: Record<string, string | string[]>) => readRequestMeta(h, () => 'generated-id');

describe('readRequestMeta', () => {
  it('no user token means the agent acts alone', () => {
    expect(read({})).toEqual({
      ok: true,
      meta: { requestId: 'generated-id', userToken: null, context: null },
    });
  });

  it('reads token (with or without Bearer), context and request id', () => {
    const r = read({
      'x-warden-user-token': 'Bearer aaa.bbb.ccc',
      'x-warden-context': '{"ticketId":"SUP-1","chainStep":2}',
      'x-request-id': 'req-1',
    });
    expect(r).toEqual({
      ok: true,
      meta: { requestId: 'req-1', userToken: 'aaa.bbb.ccc', context: { ticketId: 'SUP-1', chainStep: 2 } },
    });
  });

  it('replaces an unusable request id', () => {
    expect(
      read({ 'x-request-id': 'bad id\twith space' }).ok && read({ 'x-request-id': 'a b' }),
    ).toMatchObject({ meta: { requestId: 'generated-id' } });
  });

  it.each([
    ['context not JSON', { 'x-warden-context': '{nope' }, /not valid JSON/],
    [
      'context with a repeated key (read differently by other parsers)',
      { 'x-warden-context': '{"ticketId":"SUP-1","ticketId":"CHG-9"}' },
      /x-warden-context: duplicate key "ticketId" at \$\.ticketId/,
    ],
    ['context nested deeply', { 'x-warden-context': '{"purpose":[[[[[1]]]]]}' }, /deeper than 4 levels/],
    ['context unknown field', { 'x-warden-context': '{"admin":true}' }, /allowed fields/],
    ['context wrong type', { 'x-warden-context': '{"chainStep":"2"}' }, /x-warden-context\.chainStep/],
    [
      'context too big',
      { 'x-warden-context': JSON.stringify({ purpose: 'x'.repeat(5000) }) },
      /longer than 4096 bytes/,
    ],
    ['token with odd characters', { 'x-warden-user-token': 'a b"c' }, /not a bearer token/],
    ['token given twice', { 'x-warden-user-token': ['a', 'b'] }, /send the header once/],
    ['token too long', { 'x-warden-user-token': 'a'.repeat(9000) }, /longer than 8192/],
  ])('refuses %s', (_n, headers, message) => {
    const r = read(headers);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });
});
