import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { credentialSecrets } from './credentials.js';
import { Scrubber, ScrubTransform } from './scrub.js';

const scrubChunks = (secrets: string[], chunks: string[]): string => {
  const s = new Scrubber(secrets);
  const out = chunks.map((c) => s.push(Buffer.from(c)));
  out.push(s.end());
  return Buffer.concat(out).toString();
};

describe('Scrubber', () => {
  it('replaces a secret inside one chunk', () => {
    expect(scrubChunks(['s3cr3t-token'], ['{"echo":"s3cr3t-token"}'])).toBe('{"echo":"[REDACTED]"}');
  });

  it('replaces a secret split across chunks at every position', () => {
    const secret = 's3cr3t-token';
    const body = `before ${secret} after ${secret}`;
    for (let cut = 1; cut < body.length; cut++) {
      expect(scrubChunks([secret], [body.slice(0, cut), body.slice(cut)])).toBe(
        'before [REDACTED] after [REDACTED]',
      );
    }
  });

  it('prefers the longer form at the same position', () => {
    expect(scrubChunks(['tok-123456', 'Bearer tok-123456'], ['x Bearer tok-123456 y'])).toBe(
      'x [REDACTED] y',
    );
  });

  it('passes bodies without secrets through byte for byte, in any chunking (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 8 }), (chunks) => {
        const secret = '\u0001never-in-input\u0002';
        expect(scrubChunks([secret], chunks)).toBe(chunks.join(''));
      }),
    );
  });

  it('never lets a secret through, whatever the chunking (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.array(fc.nat(), { maxLength: 6 }), (a, b, cuts) => {
        const secret = 'tok_ABCDEFGH';
        const body = `${a}${secret}${b}${secret}`;
        const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((x, y) => x - y);
        const chunks: string[] = [];
        let prev = 0;
        for (const p of points) {
          chunks.push(body.slice(prev, p));
          prev = p;
        }
        chunks.push(body.slice(prev));
        expect(scrubChunks([secret], chunks)).not.toContain(secret);
      }),
    );
  });

  it('holds back only a possible secret prefix, so streamed events are not delayed', () => {
    const s = new Scrubber(['tok_ABCDEFGH']);
    expect(s.push(Buffer.from('data: {"a":1}\n\n')).toString()).toBe('data: {"a":1}\n\n');
    expect(s.push(Buffer.from('x tok_AB')).toString()).toBe('x ');
    expect(s.push(Buffer.from('CDEFGH y')).toString()).toBe('[REDACTED] y');
    expect(s.push(Buffer.from('tok_ABX')).toString()).toBe('tok_ABX');
  });

  it('works as a stream', async () => {
    const out = await text(
      Readable.from([Buffer.from('ab tok_'), Buffer.from('XYZ12345 cd')]).pipe(
        new ScrubTransform(['tok_XYZ12345']),
      ),
    );
    expect(out).toBe('ab [REDACTED] cd');
  });
});

describe('credentialSecrets', () => {
  it('covers the header value and the bare token', () => {
    expect(credentialSecrets({ Authorization: 'Bearer abcdefgh123' }).sort()).toEqual([
      'Bearer abcdefgh123',
      'abcdefgh123',
    ]);
  });
  it('covers a raw API key', () => {
    expect(credentialSecrets({ 'X-Api-Key': 'k-1234567890' })).toEqual(['k-1234567890']);
  });
});
