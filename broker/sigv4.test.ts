import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { HeaderList } from './headers.js';
import { awsUriEncode, canonicalTarget, signAwsRequest, withoutSigningHeaders } from './sigv4.js';

const KEYS = {
  accessKeyId: 'ASIAEXAMPLEKEY000001',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  sessionToken: 'FwoGZXIvYXdzEXAMPLE//session+token=',
  region: 'eu-west-1',
  service: 's3',
};
const NOW = new Date('2026-12-04T22:30:00Z');

describe('awsUriEncode', () => {
  it.each([
    ['a b', 'a%20b'],
    ['a+b', 'a%2Bb'],
    ['~-._', '~-._'],
    ["!'()*", '%21%27%28%29%2A'],
    ['é', '%C3%A9'],
    ['a/b', 'a%2Fb'],
  ])('%s → %s', (input, out) => expect(awsUriEncode(input)).toBe(out));
});

describe('canonicalTarget', () => {
  it.each([
    ['the bucket root', '/', '/bucket', '', '/bucket'],
    ['a key under a base path', '/base/', '/bucket/k.txt', '', '/base/bucket/k.txt'],
    [
      'spaces, "+", "~" and parentheses, encoded once',
      '/',
      '/b/a b+c~(1).txt',
      '',
      '/b/a%20b%2Bc~%281%29.txt',
    ],
    ['query sorted by name, then value', '/', '/b', 'prefix=x%2F&list-type=2', '/b?list-type=2&prefix=x%2F'],
    ['"+" in the query is a space', '/', '/b', 'prefix=a+b', '/b?prefix=a%20b'],
    ['a parameter without a value gets "="', '/', '/b/k', 'uploads', '/b/k?uploads='],
    ['repeated names sorted by value', '/', '/b', 'x=2&x=1', '/b?x=1&x=2'],
    ['a trailing slash kept', '/', '/b/dir/', '', '/b/dir/'],
  ])('%s', (_name, base, path, query, target) => {
    const t = canonicalTarget(base, path, query);
    expect(t.ok && t.requestTarget).toBe(target);
  });

  it.each([
    ['X-Amz-Signature=00', "query parameter 'X-Amz-Signature' is not allowed"],
    ['x-amz-credential=a', "query parameter 'x-amz-credential' is not allowed"],
    ['a=1;b=2', "query contains ';'"],
    ['a=%E0%A4%A', 'is not valid percent-encoded UTF-8'],
  ])('refuses the query %s', (query, message) => {
    const t = canonicalTarget('/', '/b', query);
    expect(t.ok).toBe(false);
    expect(!t.ok && t.message).toContain(message);
  });
});

describe('withoutSigningHeaders', () => {
  it('drops Authorization and every X-Amz-* header, naming each once', () => {
    const r = withoutSigningHeaders([
      ['Authorization', 'AWS4-HMAC-SHA256 forged'],
      ['X-Amz-Date', '20200101T000000Z'],
      ['x-amz-security-token', 'forged'],
      ['X-Amz-Copy-Source', '/other/secret'],
      ['x-amz-meta-a', '1'],
      ['x-amz-meta-a', '2'],
      ['Content-Type', 'text/plain'],
    ]);
    expect(r.headers).toEqual([['Content-Type', 'text/plain']]);
    expect(r.stripped).toEqual([
      'authorization',
      'x-amz-date',
      'x-amz-security-token',
      'x-amz-copy-source',
      'x-amz-meta-a',
    ]);
  });
});

/**
 * An independent SigV4 computation (AWS General Reference, "Create a signed AWS API request")
 * from the request exactly as forwarded: if the broker signed something other than what it sends,
 * the two signatures differ.
 */
function referenceSignature(
  method: string,
  requestTarget: string,
  headers: HeaderList,
  body: Buffer,
  service: string,
): { signature: string; signedHeaders: string } {
  const [path, query = ''] = requestTarget.split('?') as [string, string?];
  const canonicalPath =
    service === 's3'
      ? path
      : path
          .split('/')
          .map((s) => awsUriEncode(s))
          .join('/');
  const auth = headers.find(([n]) => n === 'authorization')![1];
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)![1]!;
  const lower = new Map(headers.map(([n, v]) => [n.toLowerCase(), v.trim()]));
  const canonicalHeaders = signedHeaders
    .split(';')
    .map((n) => `${n}:${lower.get(n)}\n`)
    .join('');
  const payloadHash = createHash('sha256').update(body).digest('hex');
  const canonicalRequest = [method, canonicalPath, query, canonicalHeaders, signedHeaders, payloadHash].join(
    '\n',
  );
  const amzDate = lower.get('x-amz-date')!;
  const scope = `${amzDate.slice(0, 8)}/${KEYS.region}/${service}/aws4_request`;
  const toSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${KEYS.secretAccessKey}`).update(amzDate.slice(0, 8)).digest();
  for (const part of [KEYS.region, service, 'aws4_request'])
    key = createHmac('sha256', key).update(part).digest();
  return { signature: createHmac('sha256', key).update(toSign).digest('hex'), signedHeaders };
}

describe('signAwsRequest', () => {
  it.each([
    ['s3', 'PUT', '/b/a b+c~(1).txt', 'partNumber=1&uploadId=x y', 'hello'],
    ['s3', 'GET', '/b', 'prefix=odd%2F&list-type=2', ''],
    ['execute-api', 'POST', '/prod/items/a b', '', '{"a":1}'],
  ])(
    '%s %s: the signature covers exactly the forwarded path, query, headers and body hash',
    async (service, method, path, query, text) => {
      const target = canonicalTarget('/', path, query);
      if (!target.ok) throw new Error(target.message);
      const body = text === '' ? undefined : Buffer.from(text);
      const headers = await signAwsRequest({
        keys: { ...KEYS, service },
        method,
        url: new URL('https://bucket.example.com:8443'),
        target,
        headers: [
          ['content-type', 'text/plain'],
          ['accept', 'a'],
          ['accept', 'b'],
        ],
        body,
        now: NOW,
      });
      const get = (n: string) => headers.find(([k]) => k === n)?.[1];
      expect(get('host')).toBe('bucket.example.com:8443');
      expect(get('x-amz-date')).toBe('20261204T223000Z');
      expect(get('x-amz-security-token')).toBe(KEYS.sessionToken);
      expect(get('accept')).toBe('a,b');
      const payload = body ?? Buffer.alloc(0);
      expect(get('x-amz-content-sha256')).toBe(createHash('sha256').update(payload).digest('hex'));
      const ref = referenceSignature(method, target.requestTarget, headers, payload, service);
      expect(ref.signedHeaders).toContain('x-amz-security-token');
      expect(ref.signedHeaders).toContain('content-type');
      expect(get('authorization')).toBe(
        `AWS4-HMAC-SHA256 Credential=${KEYS.accessKeyId}/20261204/${KEYS.region}/${service}/aws4_request, SignedHeaders=${ref.signedHeaders}, Signature=${ref.signature}`,
      );
    },
  );

  it('a different body gives a different signature (the body hash is signed, not UNSIGNED-PAYLOAD)', async () => {
    const target = canonicalTarget('/', '/b/k', '');
    if (!target.ok) throw new Error(target.message);
    const sign = async (text: string) =>
      (
        await signAwsRequest({
          keys: KEYS,
          method: 'PUT',
          url: new URL('http://127.0.0.1:9000'),
          target,
          headers: [],
          body: Buffer.from(text),
          now: NOW,
        })
      ).find(([n]) => n === 'authorization')?.[1];
    expect(await sign('one')).not.toBe(await sign('two'));
  });
});
