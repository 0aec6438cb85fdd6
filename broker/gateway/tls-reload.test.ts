import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CertificatePem, createCertificateAuthority } from '../../core/x509.js';
import { type TlsPair, type TlsReloader, watchTlsFiles } from './tls-reload.js';

async function issue(name: string): Promise<CertificatePem> {
  const ca = await createCertificateAuthority(name, 3600_000);
  return ca.issue({
    commonName: 'warden-gateway',
    ipAddresses: ['127.0.0.1'],
    validityMs: 3600_000,
    usage: 'server',
  });
}

let first: CertificatePem;
let second: CertificatePem;
beforeAll(async () => {
  [first, second] = await Promise.all([issue('first-ca'), issue('second-ca')]);
});

/** A reloader over real files in a fresh directory (poll off: the test calls check()). */
function setup(o: { apply?: (p: TlsPair) => void } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'warden-tls-reload-'));
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  writeFileSync(cert, first.certPem);
  writeFileSync(key, first.keyPem);
  const applied: TlsPair[] = [];
  const logged: { level: string; fields: unknown; msg: string }[] = [];
  const reloader = watchTlsFiles({
    certFile: cert,
    keyFile: key,
    initial: { certPem: first.certPem, keyPem: first.keyPem },
    apply: (p) => {
      o.apply?.(p);
      applied.push(p);
    },
    log: {
      info: ((fields: unknown, msg: string) => logged.push({ level: 'info', fields, msg })) as never,
      error: ((fields: unknown, msg: string) => logged.push({ level: 'error', fields, msg })) as never,
    },
    pollMs: 3600_000,
  });
  cleanups.push(() => {
    reloader.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { cert, key, applied, logged, reloader: reloader as TlsReloader };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('watchTlsFiles', () => {
  it('applies a renewed pair once, and nothing while the files are unchanged', async () => {
    const t = setup();
    expect(await t.reloader.check()).toBe(false);
    writeFileSync(t.key, second.keyPem);
    writeFileSync(t.cert, second.certPem);
    expect(await t.reloader.check()).toBe(true);
    expect(await t.reloader.check()).toBe(false);
    expect(t.applied).toEqual([{ certPem: second.certPem, keyPem: second.keyPem }]);
    expect(t.logged.map((l) => [l.level, l.msg])).toEqual([['info', 'gateway TLS certificate reloaded']]);
  });

  it('refuses a certificate whose key does not match, keeps the current pair and says so once — without key material', async () => {
    const t = setup();
    writeFileSync(t.cert, second.certPem); // the key file still holds the first key
    expect(await t.reloader.check()).toBe(false);
    expect(await t.reloader.check()).toBe(false);
    expect(t.applied).toEqual([]);
    expect(t.logged).toHaveLength(1);
    expect(t.logged[0]?.msg).toBe(
      'gateway TLS files changed but are not a usable certificate and key; serving the current certificate',
    );
    const text = JSON.stringify(t.logged);
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).not.toContain(first.keyPem.split('\n')[1]);
    // Fixed: the matching key arrives, the pair is served.
    writeFileSync(t.key, second.keyPem);
    expect(await t.reloader.check()).toBe(true);
    expect(t.applied).toHaveLength(1);
  });

  it('keeps the current pair while a file cannot be read', async () => {
    const t = setup();
    rmSync(t.key);
    expect(await t.reloader.check()).toBe(false);
    expect(t.applied).toEqual([]);
    expect(t.logged[0]?.msg).toBe('gateway TLS files unreadable; serving the current certificate');
    expect(JSON.stringify(t.logged)).not.toContain('PRIVATE KEY');
  });

  it('a listener refusing the pair leaves it unserved (and logged), as an unusable one', async () => {
    const t = setup({
      apply: () => {
        throw new Error('the PostgreSQL endpoint refused it');
      },
    });
    writeFileSync(t.key, second.keyPem);
    writeFileSync(t.cert, second.certPem);
    expect(await t.reloader.check()).toBe(false);
    expect(t.logged.map((l) => l.level)).toEqual(['error']);
  });
});
