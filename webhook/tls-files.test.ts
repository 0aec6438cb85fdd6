import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateAuthority } from '../core/x509.js';
import { FileTlsSource } from './tls-files.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'warden-tls-files-'));
  dirs.push(d);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(d, name), content);
  return d;
}

describe('FileTlsSource (cert-manager mounted Secret)', () => {
  it('serves the mounted certificate, key and CA bundle', async () => {
    const ca = await createCertificateAuthority('cm-ca', 3600_000);
    const leaf = await ca.issue({
      commonName: 'warden',
      dnsNames: ['warden.warden-system.svc'],
      validityMs: 3600_000,
      usage: 'server',
    });
    const m = await new FileTlsSource(
      dir({ 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem }),
    ).ensure();
    expect(m).toEqual({ certPem: leaf.certPem, keyPem: leaf.keyPem, caBundlePem: ca.certPem });
  });

  it('accepts a missing ca.crt (the caBundle is cert-manager’s job)', async () => {
    const ca = await createCertificateAuthority('cm-ca', 3600_000);
    const leaf = await ca.issue({ commonName: 'w', validityMs: 3600_000, usage: 'server' });
    const m = await new FileTlsSource(dir({ 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem })).ensure();
    expect(m.caBundlePem).toBe('');
  });

  it.each([
    [
      'a missing key',
      { 'tls.crt': '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n' },
      /tls\.key failed \(ENOENT\); --tls-cert-dir must hold tls\.crt and tls\.key/,
    ],
    ['files that are not PEM', { 'tls.crt': 'hello', 'tls.key': 'world' }, /tls\.crt or tls\.key is not PEM/],
  ])('says what is wrong with %s, never the key material', async (_n, files, message) => {
    await expect(new FileTlsSource(dir(files)).ensure()).rejects.toThrow(message);
  });
});
