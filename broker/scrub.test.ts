import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REDACTED } from './constants.js';
import { credentialSecrets } from './credentials.js';
import { redactString } from './headers.js';
import { jwtSegments, Scrubber, ScrubTransform, secretForms } from './scrub.js';
import { echoForms, signedJwt } from './testing.js';

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
    const secrets = credentialSecrets({ Authorization: 'Bearer abcdefgh123' });
    expect(secrets).toContain('Bearer abcdefgh123');
    expect(secrets).toContain('abcdefgh123');
  });
  it('covers a raw API key', () => {
    expect(credentialSecrets({ 'X-Api-Key': 'k-1234567890' })).toContain('k-1234567890');
  });
  it('leaves out values and forms shorter than 8 characters', () => {
    expect(credentialSecrets({ 'X-Api-Key': 'k-123' })).toEqual([]);
  });
  it('covers the decoded user:password of HTTP Basic', () => {
    const basic = Buffer.from('svc-user:pa55word!').toString('base64');
    expect(credentialSecrets({ Authorization: `Basic ${basic}` })).toContain('svc-user:pa55word!');
  });
});

const token = signedJwt();
const bearer = { Authorization: `Bearer ${token}` };

describe('scrubbing every encoding of an injected JWT', () => {
  const forms = Object.entries(echoForms(token));

  it.each(forms)('%s: removed from a body', (_name, form) => {
    const out = scrubChunks(credentialSecrets(bearer), [`{"echo":"${form}"}`]);
    expect(out).not.toContain(form);
    expect(out).toContain(REDACTED);
  });

  it.each(forms)('%s: removed from a JSON document holding it as a string value', (_name, form) => {
    const out = redactString(JSON.stringify({ text: `seen ${form}` }), credentialSecrets(bearer));
    const text = (JSON.parse(out) as { text: string }).text;
    expect(text).not.toContain(form);
    expect(text).toContain(REDACTED);
  });

  it.each(forms)('%s: removed from a header value (redactString)', (_name, form) => {
    const out = redactString(`seen=${form}; more`, credentialSecrets(bearer));
    expect(out).not.toContain(form);
    expect(out).toContain(REDACTED);
  });

  it.each(forms)('%s: removed when split across two chunks at any point', (_name, form) => {
    const secrets = credentialSecrets(bearer);
    const body = `a ${form} b`;
    for (let cut = 1; cut < body.length; cut += Math.max(1, Math.floor(body.length / 40))) {
      const out = scrubChunks(secrets, [body.slice(0, cut), body.slice(cut)]);
      expect(out).not.toContain(form);
    }
  });

  it('leaves no Base64 run in an encoded document that decodes to the token or its signature', () => {
    const signature = token.split('.')[2]!;
    for (const prefix of ['', 'x', 'xy', 'xyz']) {
      const blob = Buffer.from(`${prefix}{"authorization":"Bearer ${token}"}`).toString('base64');
      const out = scrubChunks(credentialSecrets(bearer), [blob]);
      for (const run of out.match(/[A-Za-z0-9+/=]{8,}/g) ?? []) {
        const decoded = Buffer.from(run, 'base64').toString('latin1');
        expect(decoded).not.toContain(signature);
        expect(decoded).not.toContain(token.slice(0, 40));
      }
    }
  });

  it('does not touch another JWT with the same header but its own payload and signature', () => {
    const other = signedJwt();
    const [, payload, signature] = other.split('.');
    const out = scrubChunks(credentialSecrets(bearer), [`${payload} ${signature}`]);
    expect(out).toBe(`${payload} ${signature}`);
  });

  it('covers each segment, and the signature decoded as standard base64 and hex', () => {
    const secrets = credentialSecrets(bearer);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const sig = Buffer.from(signature, 'base64url');
    for (const piece of [header, payload, signature, sig.toString('base64'), sig.toString('hex')]) {
      expect(secrets).toContain(piece);
    }
  });

  it('scrubs a body full of echoes in one pass per secret (each occurrence replaced)', () => {
    const form = echoForms(token).base64!;
    const out = scrubChunks(credentialSecrets(bearer), [Array(200).fill(form).join(',')]);
    expect(out).toBe(Array(200).fill(REDACTED).join(','));
  });
});

describe('secretForms', () => {
  it('percent-encodes and JSON-escapes special characters of an API key', () => {
    const key = 'k/ey+with=special"chars';
    const forms = secretForms(key);
    expect(forms).toContain(encodeURIComponent(key));
    expect(forms).toContain(JSON.stringify(key).slice(1, -1));
    expect(forms).toContain(JSON.stringify(key).slice(1, -1).replaceAll('/', '\\/'));
  });
  it('percent-encodes the standard base64 of a key whose encoding has + / =', () => {
    const key = '\u00ff\u00fe>>??~~';
    const std = Buffer.from(key).toString('base64');
    expect(std).toMatch(/[+/=]/);
    expect(secretForms(key)).toContain(encodeURIComponent(std));
  });
});

describe('jwtSegments', () => {
  it.each([
    ['a JWT', 'aaa.bbb.ccc', ['aaa', 'bbb', 'ccc']],
    ['two segments', 'aaa.bbb', []],
    ['an empty segment', 'aaa..ccc', []],
    ['non-base64url characters', 'a+a.bbb.ccc', []],
    ['an opaque token', 'wdn_abcdefgh', []],
  ])('%s', (_name, value, expected) => {
    expect(jwtSegments(value)).toEqual(expected);
  });
});
