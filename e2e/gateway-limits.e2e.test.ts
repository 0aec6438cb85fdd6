/**
 * The shared gateway's per-caller rate limit and its certificate reload, through the real chain
 * (e2e/gateway-fixture.ts): an agent flooding the gateway gets 429 with Retry-After while another
 * agent calling at the same time is served; a renewed certificate written over the watched files
 * is served to new connections on both the HTTPS and the PostgreSQL listener without a restart,
 * and a broken pair is refused while the gateway keeps serving the one it has.
 */
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sslRequest } from '../broker/pg/protocol.js';
import { API_VERSION, GATEWAY_AUDIENCE, PLURAL } from '../core/constants.js';
import { createCertificateAuthority } from '../core/x509.js';
import { KubeConfigApi } from '../kube/kube.js';
import { eventually } from './eventually.js';
import { type GatewayStack, startGatewayStack } from './gateway-fixture.js';
import { freshNamespace, kubeConfig } from './harness/index.js';

/**
 * The limiter's clock, held still by the test: a bucket refills only when the test moves it, so
 * what is refused does not depend on how fast the calls arrive on a loaded machine.
 */
let clock = 0;
const RATE = { perSecond: 2, burst: 10, now: () => clock };
/** Every bucket full again. */
const refill = () => {
  clock += (RATE.burst / RATE.perSecond) * 1000;
};
let s: GatewayStack;
let botToken: string;
let otherToken: string;

beforeAll(async () => {
  const ns = await freshNamespace('gateway-limits');
  s = await startGatewayStack({
    kubeConfig: kubeConfig(),
    namespace: ns,
    replicas: 1,
    postgres: true,
    otherAgents: ['other'],
    callerRateLimit: RATE,
    tlsFiles: true,
  });
  await new KubeConfigApi(kubeConfig()).request(
    'POST',
    `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AccessPolicy}`,
    {
      body: {
        apiVersion: API_VERSION,
        kind: 'AccessPolicy',
        metadata: { name: 'other-read' },
        spec: {
          agentSelector: { names: ['other'] },
          rules: [{ targets: ['tickets'], http: { methods: ['GET'], paths: ['/api/v1/tickets/*'] } }],
        },
      },
    },
  );
  botToken = await s.token(GATEWAY_AUDIENCE);
  otherToken = await s.tokenOf('other', GATEWAY_AUDIENCE);
}, 120_000);
afterAll(async () => {
  await s?.stop();
});

const call = (token: string, id: string) =>
  s.fetch(`${s.urls[0]}/http/tickets/api/v1/tickets/${id}`, {
    headers: { authorization: `Bearer ${token}` },
  });

describe('per-caller rate limit', () => {
  it('a caller over its budget gets 429 with Retry-After; another caller at the same time is served', async () => {
    // Each agent's token accepted once (its later requests spend the agent's own budget); each
    // probe refills, so waiting for the other agent's policy never runs its budget dry.
    await eventually('the other agent to be allowed', async () => {
      refill();
      return (await call(otherToken, 'O-0')).status === 200;
    });
    expect((await call(botToken, 'B-0')).status).toBe(200);
    refill();

    const flood = Array.from({ length: 30 }, (_, i) => call(botToken, `B-${i + 1}`));
    const quiet = [call(otherToken, 'O-1'), call(otherToken, 'O-2')];
    const flooded = await Promise.all(flood);
    const served = await Promise.all(quiet);

    expect(served.map((r) => r.status)).toEqual([200, 200]);
    // Exactly the burst is served; the rest is refused (the clock did not move, nothing refilled).
    expect(flooded.filter((r) => r.status === 200)).toHaveLength(RATE.burst);
    const refused = flooded.filter((r) => r.status === 429);
    expect(refused).toHaveLength(30 - RATE.burst);
    const first = refused[0]!;
    // An empty bucket at 2/s: one request fits again in half a second, said as 1 s.
    expect(first.headers.get('retry-after')).toBe('1');
    expect(await first.json()).toMatchObject({
      error: 'rate_limited',
      message: expect.stringMatching(/more than 2 requests per second \(burst 10\).*retry after \d+ s/),
    });
    await Promise.all(flooded.map((r) => r.arrayBuffer().catch(() => undefined)));

    // One budget per caller across both listeners: the bot's is spent, so is its PostgreSQL session.
    const client = new pg.Client({
      host: '127.0.0.1',
      port: s.pgPorts[0]!,
      database: 'orders',
      user: 'agent',
      password: botToken,
      ssl: { ca: s.ca },
    });
    client.on('error', () => {});
    const err = await client.connect().then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    await client.end().catch(() => undefined);
    expect(err?.code).toBe('53300');
    expect(err?.message).toMatch(/per-caller limit; retry in 1 s/);
  });
});

/** The SHA-256 fingerprint of the certificate a TLS listener shows a new connection. */
function servedCertificate(port: number, postgres = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const handshake = (socket?: ReturnType<typeof tcpConnect>) => {
      const t = tlsConnect({
        ...(socket ? { socket } : { host: '127.0.0.1', port }),
        rejectUnauthorized: false,
      });
      t.once('secureConnect', () => {
        resolve(t.getPeerCertificate().fingerprint256);
        t.destroy();
        socket?.destroy();
      });
      t.once('error', reject);
    };
    if (!postgres) return handshake();
    // PostgreSQL: SSLRequest first, then the handshake on the same socket once it answered 'S'.
    const raw = tcpConnect({ host: '127.0.0.1', port }, () => raw.write(sslRequest()));
    raw.once('error', reject);
    raw.once('data', (d) =>
      d.toString('latin1', 0, 1) === 'S' ? handshake(raw) : reject(new Error('no TLS')),
    );
  });
}

describe('certificate reload without a restart', () => {
  const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
  const issue = async (name: string) => {
    const ca = await createCertificateAuthority(name, 3600_000);
    return ca.issue({
      commonName: 'warden-gateway',
      ipAddresses: ['127.0.0.1'],
      validityMs: 3600_000,
      usage: 'server',
    });
  };

  it('serves a renewed certificate written over the watched files on both listeners', async () => {
    const files = s.tlsFiles!;
    const before = await servedCertificate(Number(new URL(s.urls[0]!).port));
    const renewed = await issue('renewed-ca');
    expect(fingerprint(renewed.certPem)).not.toBe(before);
    // Key first, then certificate, as a Secret update may land: the watch reads the final pair.
    writeFileSync(files.key, renewed.keyPem);
    writeFileSync(files.cert, renewed.certPem);
    await eventually(
      'the HTTPS listener to show the renewed certificate',
      async () =>
        (await servedCertificate(Number(new URL(s.urls[0]!).port))) === fingerprint(renewed.certPem),
      15_000,
    );
    expect(await servedCertificate(s.pgPorts[0]!, true)).toBe(fingerprint(renewed.certPem));
  });

  it('keeps serving the current pair when the files hold a certificate and a key that do not match', async () => {
    const files = s.tlsFiles!;
    const current = await servedCertificate(Number(new URL(s.urls[0]!).port));
    const other = await issue('mismatch-ca');
    writeFileSync(files.cert, other.certPem); // the key file still holds the previous key
    expect(await s.gateways[0]!.reloadTls()).toBe(false);
    expect(await servedCertificate(Number(new URL(s.urls[0]!).port))).toBe(current);
    expect(await servedCertificate(s.pgPorts[0]!, true)).toBe(current);
  });
});
