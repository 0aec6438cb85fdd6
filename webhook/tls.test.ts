import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import {
  issueMaterial,
  materialFromSecretData,
  planTls,
  rotationTime,
  secretDataFromMaterial,
  serviceDnsNames,
} from './tls.js';

const names = { dnsNames: serviceDnsNames('warden', 'warden-system'), ipAddresses: ['127.0.0.1'] };
const DAY = 24 * 3600 * 1000;
const t0 = new Date('2026-01-01T00:00:00Z');

function certsIn(bundle: string): x509.X509Certificate[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new x509.X509Certificate(p),
  );
}

describe('TLS planning', () => {
  it('issues when nothing is stored', async () => {
    expect(await planTls(undefined, names, t0)).toEqual({ action: 'issue', reason: 'missing' });
  });

  it('issues when the stored material cannot be parsed', async () => {
    expect((await planTls({ certPem: 'junk', keyPem: 'junk', caBundlePem: 'junk' }, names, t0)).action).toBe(
      'issue',
    );
  });

  it('serves fresh material and schedules rotation at two thirds of its lifetime', async () => {
    const m = await issueMaterial(names, t0, 90 * DAY);
    const plan = await planTls(m, names, new Date(t0.getTime() + DAY));
    expect(plan.action).toBe('use');
    const leaf = new x509.X509Certificate(m.certPem);
    expect(plan.action === 'use' && plan.rotateAt).toEqual(rotationTime(leaf.notBefore, leaf.notAfter));
  });

  it('rotates once two thirds of the lifetime have passed', async () => {
    const m = await issueMaterial(names, t0, 90 * DAY);
    expect(await planTls(m, names, new Date(t0.getTime() + 61 * DAY))).toEqual({
      action: 'issue',
      reason: 'due',
    });
  });

  it('reissues when a required name is missing from the certificate', async () => {
    const m = await issueMaterial(names, t0);
    const wider = { ...names, dnsNames: [...names.dnsNames, 'warden-webhook.warden-system.svc'] };
    expect(await planTls(m, wider, t0)).toEqual({ action: 'issue', reason: 'names-changed' });
  });

  it('reissues when the serving certificate does not chain to the bundle', async () => {
    const a = await issueMaterial(names, t0);
    const b = await issueMaterial(names, t0);
    expect(await planTls({ ...a, caBundlePem: b.caBundlePem }, names, t0)).toEqual({
      action: 'issue',
      reason: 'untrusted',
    });
  });

  it('signs the serving certificate for the service names and the IP, as an ECDSA P-256 server cert', async () => {
    const m = await issueMaterial(names, t0);
    const leaf = new x509.X509Certificate(m.certPem);
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.items.map((n) => n.value)).toEqual([...names.dnsNames, '127.0.0.1']);
    expect(leaf.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    const [ca] = certsIn(m.caBundlePem);
    expect(await leaf.verify({ publicKey: ca, date: t0 })).toBe(true);
  });

  it('keeps the previous, still valid CA in the bundle on rotation and drops expired ones', async () => {
    const first = await issueMaterial(names, t0, 90 * DAY);
    const second = await issueMaterial(names, new Date(t0.getTime() + 61 * DAY), 90 * DAY, first.caBundlePem);
    expect(certsIn(second.caBundlePem)).toHaveLength(2);
    const third = await issueMaterial(
      names,
      new Date(t0.getTime() + 122 * DAY),
      90 * DAY,
      second.caBundlePem,
    );
    // first's CA expired at day 90; second's is still valid.
    expect(certsIn(third.caBundlePem)).toHaveLength(2);
    expect(certsIn(third.caBundlePem)[1]?.subject).toBe(certsIn(second.caBundlePem)[0]?.subject);
  });

  it('round-trips through Secret data', async () => {
    const m = await issueMaterial(names, t0);
    const data = secretDataFromMaterial(m);
    expect(Object.keys(data).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    expect(materialFromSecretData(data)).toEqual(m);
    expect(materialFromSecretData({ 'tls.crt': data['tls.crt'] as string })).toBeUndefined();
  });
});
