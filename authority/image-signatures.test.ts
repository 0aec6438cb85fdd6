import { describe, expect, it } from 'vitest';
import { imageRepository } from '../core/identity/cosign.js';
import { parseBearerChallenge, RegistrySignatureVerifier, registryBaseUrl } from './image-signatures.js';

describe('parseBearerChallenge', () => {
  it.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/busybox:pull',
      },
    ],
    ['bearer realm="https://ghcr.io/token"', { realm: 'https://ghcr.io/token' }],
    [
      'Bearer realm=https://r.example/token, service=r.example',
      { realm: 'https://r.example/token', service: 'r.example' },
    ],
  ])('%s', (header, challenge) => {
    expect(parseBearerChallenge(header)).toEqual(challenge);
  });

  it.each([['Basic realm="registry"'], ['Bearer service="x"'], ['']])(
    '%s is no bearer challenge',
    (header) => {
      expect(parseBearerChallenge(header)).toBeUndefined();
    },
  );
});

describe('registryBaseUrl', () => {
  it.each([
    ['busybox', 'https://registry-1.docker.io'],
    ['ghcr.io/acme/agent', 'https://ghcr.io'],
    ['127.0.0.1:5000/acme/agent', 'http://127.0.0.1:5000'],
    ['localhost:5000/acme/agent', 'http://localhost:5000'],
    ['[::1]:5000/acme/agent', 'http://[::1]:5000'],
    ['10.0.0.5:5000/acme/agent', 'https://10.0.0.5:5000'],
  ])('%s → %s (plain HTTP only on loopback)', (ref, url) => {
    expect(registryBaseUrl(imageRepository(ref)!)).toBe(url);
  });
});

describe('RegistrySignatureVerifier', () => {
  it('refuses a reference that names no repository, without any request', async () => {
    const v = new RegistrySignatureVerifier();
    const r = await v.verify({
      reference: `sha256:${'1'.repeat(64)}`,
      digest: `sha256:${'1'.repeat(64)}`,
      keys: [],
    });
    expect(r).toMatchObject({ ok: false, reason: 'ImageSignatureUnverifiable' });
    expect(v.fetches).toBe(0);
  });
});
