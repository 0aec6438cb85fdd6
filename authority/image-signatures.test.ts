import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/**
 * A hostile or broken registry on loopback (what the distribution registry never does): each
 * failure mode must refuse as ImageSignatureUnverifiable, never pass.
 */
describe('RegistrySignatureVerifier fails closed on a registry that misbehaves', () => {
  const D = `sha256:${'a'.repeat(64)}`;
  const keys = [
    {
      name: 'k',
      publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' })
        .publicKey.export({ type: 'spki', format: 'pem' })
        .toString(),
    },
  ];

  async function against(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    opts: { timeoutMs?: number; totalTimeoutMs?: number } = {},
  ) {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      return await new RegistrySignatureVerifier(opts).verify({
        reference: `127.0.0.1:${port}/acme/agent:v1`,
        digest: D,
        keys,
      });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  it.each([
    ['never answers', () => undefined, 'no answer within the timeout'],
    [
      'answers 500',
      (_req: IncomingMessage, res: ServerResponse) => res.writeHead(500).end(),
      'HTTP 500 for 127.0.0.1:',
    ],
    [
      'wants credentials (Basic)',
      (_req: IncomingMessage, res: ServerResponse) =>
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end(),
      'requires credentials beyond an anonymous token',
    ],
    [
      'sends a manifest that is not JSON',
      (_req: IncomingMessage, res: ServerResponse) => res.writeHead(200).end('<html>'),
      'its signature manifest is not JSON',
    ],
    [
      'sends an endless manifest',
      (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(200);
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (res.write(chunk)) if (res.writableLength > 1e6) break;
        };
        res.on('drain', pump);
        pump();
      },
      'is more than 262144 bytes',
    ],
    [
      'points its token realm at plain HTTP off loopback',
      (_req: IncomingMessage, res: ServerResponse) =>
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://10.0.0.1/token"' }).end(),
      'token realm http://10.0.0.1 is not https',
    ],
  ])(
    '%s',
    async (_name, handler, message) => {
      // Short timeouts only where the timeout is what is tested: the others must fail for their own
      // reason however slowly a loaded machine streams (an endless manifest hits the size cap first).
      const timeouts = message.includes('timeout')
        ? { timeoutMs: 300, totalTimeoutMs: 2000 }
        : { timeoutMs: 20_000, totalTimeoutMs: 30_000 };
      const r = await against(handler, timeouts);
      expect(r).toMatchObject({ ok: false, reason: 'ImageSignatureUnverifiable' });
      expect(!r.ok && r.message).toContain(message);
      expect(!r.ok && r.message).toContain('attestation fails closed until the registry answers');
    },
    60_000,
  );
});
