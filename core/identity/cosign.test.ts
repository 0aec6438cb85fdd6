import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validateAgentIdentitySpec } from '../api/validate.js';
import { COSIGN_SIGNATURE_TYPE } from '../constants.js';
import {
  imageRepository,
  judgeSignatureLayer,
  keySetId,
  parseSigningKey,
  parseSigningKeys,
  type SigningKey,
  signatureTag,
} from './cosign.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function ecKey(curve = 'P-256'): { privateKey: KeyObject; pem: string } {
  const k = generateKeyPairSync('ec', { namedCurve: curve });
  return { privateKey: k.privateKey, pem: k.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}
const k1 = ecKey();
const k2 = ecKey();
const trusted = (name: string, pem: string): SigningKey => {
  const r = parseSigningKey({ name, publicKey: pem });
  if (!r.ok) throw new Error(r.problem);
  return r.key;
};

describe('parseSigningKey', () => {
  it('accepts an ECDSA P-256 public key in PEM (cosign.pub)', () => {
    expect(parseSigningKey({ name: 'k', publicKey: k1.pem }).ok).toBe(true);
  });

  it.each([
    ['not PEM', 'ssh-ed25519 AAAAC3Nza', 'must be a PEM public key'],
    [
      'a private key',
      k1.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      'is a private key; put the public key here',
    ],
    [
      'damaged base64',
      '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
      'does not hold a valid public key',
    ],
    [
      'an RSA key',
      generateKeyPairSync('rsa', { modulusLength: 1024 })
        .publicKey.export({ type: 'spki', format: 'pem' })
        .toString(),
      'is an RSA key; only ECDSA P-256 keys',
    ],
    [
      'an Ed25519 key',
      generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      'is an ED25519 key; only ECDSA P-256 keys',
    ],
    ['a P-384 key', ecKey('P-384').pem, 'is an ECDSA key on curve secp384r1; only P-256'],
  ])('refuses %s', (_name, pem, problem) => {
    const r = parseSigningKey({ name: 'k', publicKey: pem });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toContain(problem);
  });

  it('names the field path of every bad key', () => {
    const r = parseSigningKeys([
      { name: 'good', publicKey: k1.pem },
      { name: 'bad', publicKey: 'x' },
    ]);
    expect(r).toEqual({
      ok: false,
      problems: [
        expect.stringMatching(/^spec\.attestation\.images\.signatures\.keys\[1\]\.publicKey: must be a PEM/),
      ],
    });
  });
});

describe('validateAgentIdentitySpec: images.signatures.keys', () => {
  const spec = (publicKey: string) => ({
    serviceAccountName: 'sa',
    attestation: { images: { signatures: { keys: [{ name: 'release', publicKey }] } } },
  });

  it('accepts a P-256 key, and an object without signatures (old objects)', () => {
    expect(validateAgentIdentitySpec(spec(k1.pem)).ok).toBe(true);
    expect(
      validateAgentIdentitySpec({ serviceAccountName: 'sa', attestation: { images: { digests: [D1] } } }).ok,
    ).toBe(true);
  });

  it.each([
    ['bad PEM', 'nope', 'must be a PEM public key'],
    ['an unsupported key type', ecKey('P-384').pem, 'only P-256'],
  ])('refuses %s with the field path', (_n, pem, message) => {
    const r = validateAgentIdentitySpec(spec(pem));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors).toEqual([
      expect.objectContaining({
        path: 'spec.attestation.images.signatures.keys[0].publicKey',
        message: expect.stringContaining(message),
      }),
    ]);
  });
});

describe('imageRepository', () => {
  it.each([
    ['127.0.0.1:5000/acme/agent:v1', '127.0.0.1:5000/acme/agent'],
    [`ghcr.io/acme/agent@${D1}`, 'ghcr.io/acme/agent'],
    [`docker-pullable://ghcr.io/acme/agent@${D1}`, 'ghcr.io/acme/agent'],
    ['localhost/agent', 'localhost/agent'],
    ['busybox', 'docker.io/library/busybox'],
    ['acme/agent:v1', 'docker.io/acme/agent'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox'],
    ['registry:5000/a/b/c:tag', 'registry:5000/a/b/c'],
  ])('%s → %s', (ref, name) => {
    expect(imageRepository(ref)?.name).toBe(name);
  });

  it.each([[''], ['UPPER/case'], ['host.io/'], [D1]])('%s is no repository', (ref) => {
    expect(imageRepository(ref)).toBeUndefined();
  });
});

describe('signatureTag and keySetId', () => {
  it('names the tag cosign writes', () => {
    expect(signatureTag(D1)).toBe(`sha256-${'1'.repeat(64)}.sig`);
  });

  it('changes when a key is added or removed, not with order', () => {
    const a = { name: 'a', publicKey: k1.pem };
    const b = { name: 'b', publicKey: k2.pem };
    expect(keySetId([a, b])).toBe(keySetId([b, a]));
    expect(keySetId([a, b])).not.toBe(keySetId([b]));
  });
});

describe('judgeSignatureLayer', () => {
  const repository = imageRepository('127.0.0.1:5000/acme/agent')!;
  const payloadFor = (o: { digest?: string; reference?: string; type?: string } = {}) =>
    Buffer.from(
      JSON.stringify({
        critical: {
          identity: { 'docker-reference': o.reference ?? '127.0.0.1:5000/acme/agent' },
          image: { 'docker-manifest-digest': o.digest ?? D1 },
          type: o.type ?? COSIGN_SIGNATURE_TYPE,
        },
        optional: null,
      }),
    );
  const layer = (payload: Buffer, key: KeyObject) => ({
    payload,
    signature: sign('sha256', payload, key).toString('base64'),
  });
  const keys = [trusted('old', k1.pem), trusted('new', k2.pem)];

  it('accepts a signature by any listed key (rotation) and names it', () => {
    expect(judgeSignatureLayer(layer(payloadFor(), k1.privateKey), { repository, digest: D1 }, keys)).toEqual(
      {
        ok: true,
        key: 'old',
      },
    );
    expect(judgeSignatureLayer(layer(payloadFor(), k2.privateKey), { repository, digest: D1 }, keys)).toEqual(
      {
        ok: true,
        key: 'new',
      },
    );
  });

  it.each([
    ['an unknown key', layer(payloadFor(), ecKey().privateKey), 'key', 'signed by none of the keys'],
    [
      'a payload changed after signing',
      {
        payload: payloadFor({ digest: D1 }),
        signature: layer(payloadFor({ digest: D2 }), k1.privateKey).signature,
      },
      'key',
      'signed by none of the keys',
    ],
    [
      'another digest',
      layer(payloadFor({ digest: D2 }), k1.privateKey),
      'claims',
      `signed image ${D2}, not the running ${D1}`,
    ],
    [
      'another repository',
      layer(payloadFor({ reference: '127.0.0.1:5000/acme/other' }), k1.privateKey),
      'claims',
      'signed this digest as 127.0.0.1:5000/acme/other, not as 127.0.0.1:5000/acme/agent',
    ],
    [
      'another payload type',
      layer(payloadFor({ type: 'x' }), k1.privateKey),
      'claims',
      'a payload of type "x"',
    ],
    [
      'an empty signature',
      { payload: payloadFor(), signature: '' },
      'malformed',
      'not a base64 ECDSA signature',
    ],
    [
      'a signed payload that is not JSON',
      layer(Buffer.from('not json'), k1.privateKey),
      'malformed',
      'signed a payload that is not JSON',
    ],
  ])('refuses %s', (_n, l, why, message) => {
    const j = judgeSignatureLayer(l, { repository, digest: D1 }, keys);
    expect(j).toMatchObject({ ok: false, why });
    expect(!j.ok && j.message).toContain(message);
  });
});
