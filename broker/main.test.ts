/**
 * runBroker as a list of parts: order, readiness and shutdown (the ordering itself is tested in
 * lifecycle/runnables.test.ts). No authority answers here — the authority URL is a loopback port
 * nothing listens on — so the broker stays unattested; attestation is covered by the e2e tests
 * (e2e/broker-chain.e2e.test.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { accepts } from '../lifecycle/testing.js';
import { type RunningBroker, runBroker } from './main.js';

const log = pino({ level: 'silent' });
const running: RunningBroker[] = [];
const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function tokenFile(): string {
  const f = join(mkdtempSync(join(tmpdir(), 'warden-broker-main-')), 'token');
  writeFileSync(f, 'not-a-real-token');
  return f;
}

/** A loopback port that refuses connections (nothing listens on it once the probe closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A port someone else holds for the whole test. */
async function takenPort(): Promise<number> {
  const s = createServer();
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

function readyz(port: number): Promise<{ status: number; body: { ready: boolean; reason: string } }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    })
      .on('error', reject)
      .end();
  });
}

const loopback = { host: '127.0.0.1', port: 0 };

async function broker(extra: Partial<Parameters<typeof runBroker>[0]> = {}): Promise<RunningBroker> {
  const b = await runBroker({
    tokenFile: tokenFile(),
    authorityUrl: `http://127.0.0.1:${await closedPort()}`,
    listen: loopback,
    healthPort: 0,
    healthHost: '127.0.0.1',
    log,
    ...extra,
  });
  running.push(b);
  return b;
}

describe('runBroker', () => {
  it('registers its parts in order: listeners, audit shipper, PostgreSQL, kill switch, authority client', async () => {
    const b = await broker({ mcpListen: loopback, httpListen: loopback, pgListen: loopback });
    expect(b.runnables).toEqual([
      'health',
      'listen',
      'mcp-listen',
      'http-listen',
      'audit-shipper',
      'pg-listen',
      'suspension',
      'authority-client',
    ]);
    for (const port of Object.values(b.ports)) expect(await accepts(port)).toBe(true);
  });

  it('registers only the listeners it was given', async () => {
    const b = await broker();
    expect(b.runnables).toEqual(['health', 'listen', 'audit-shipper', 'suspension', 'authority-client']);
    expect(Object.keys(b.ports).sort()).toEqual(['health', 'listen']);
  });

  it('answers /readyz 503 until attested, and closes every listener on close', async () => {
    const b = await broker({ mcpListen: loopback, pgListen: loopback });
    const r = await readyz(b.ports.health);
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ ready: false, reason: 'not attested with the Warden authority yet' });
    await b.close();
    expect(b.readiness()).toEqual({ ready: false, reason: 'starting or stopping' });
    for (const port of Object.values(b.ports)) expect(await accepts(port)).toBe(false);
  });

  it('a listener that cannot bind fails the start naming it, and the listeners bound before it are closed', async () => {
    const healthPort = await closedPort();
    const taken = await takenPort();
    await expect(broker({ healthPort, mcpListen: { host: '127.0.0.1', port: taken } })).rejects.toThrow(
      /^mcp-listen failed to start: .*EADDRINUSE/,
    );
    expect(await accepts(healthPort)).toBe(false);
  });

  it.each([
    ['listen', { listen: { host: '0.0.0.0', port: 0 } }],
    ['mcp-listen', { mcpListen: { host: '10.0.0.1', port: 0 } }],
    ['http-listen', { httpListen: { host: '0.0.0.0', port: 0 } }],
    ['pg-listen', { pgListen: { host: '192.168.1.2', port: 0 } }],
  ])('refuses a %s that is not loopback before starting anything', async (what, extra) => {
    await expect(broker(extra)).rejects.toThrow(new RegExp(`^${what}: .* is not a loopback address`));
  });
});
