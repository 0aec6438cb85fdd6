import { describe, expect, it } from 'vitest';
import type { PodLike } from './agent.js';
import { checkAttestationConditions, runningDigest, signatureChecks } from './attestation.js';
import type { SignatureVerdict } from './cosign.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;

const pod = (statuses: Array<{ name: string; imageID?: string }>, init = false): PodLike => ({
  spec: {
    containers: [{ name: 'agent', image: 'registry.local/acme/agent:v1' }],
    ...(init ? { initContainers: [{ name: 'setup', image: 'registry.local/acme/setup:v1' }] } : {}),
  },
  status: {
    containerStatuses: statuses.filter((s) => s.name !== 'setup'),
    initContainerStatuses: statuses.filter((s) => s.name === 'setup'),
  },
});

describe('runningDigest', () => {
  it.each([
    [`registry.local/acme/agent@${D1}`, D1],
    [`docker-pullable://registry.local/acme/agent@${D1}`, D1],
    [D1, D1],
    ['registry.local/acme/agent:v1', undefined],
    [`registry.local/acme/agent@sha256:${'1'.repeat(63)}`, undefined],
    ['', undefined],
  ])('%s → %s', (imageID, digest) => {
    expect(runningDigest(imageID)).toBe(digest);
  });
});

describe('spec.attestation.images.digests', () => {
  const conditions = { images: { digests: [D1, D2] } };

  it('accepts a pod running a listed digest (either of two: rotation)', () => {
    expect(
      checkAttestationConditions(
        pod([{ name: 'agent', imageID: `registry.local/acme/agent@${D1}` }]),
        conditions,
      ),
    ).toEqual({ ok: true });
    expect(
      checkAttestationConditions(
        pod([{ name: 'agent', imageID: `registry.local/acme/agent@${D2}` }]),
        conditions,
      ),
    ).toEqual({ ok: true });
  });

  it('refuses a pod whose tag now runs another image, naming container and digest', () => {
    expect(
      checkAttestationConditions(
        pod([{ name: 'agent', imageID: `registry.local/acme/agent@${D3}` }]),
        conditions,
      ),
    ).toEqual({
      ok: false,
      reason: 'ImageDigestNotAllowed',
      message: `container agent runs image ${D3} (registry.local/acme/agent:v1), which is not one of spec.attestation.images.digests`,
    });
  });

  it('refuses a container that is not running yet (no imageID)', () => {
    const r = checkAttestationConditions(pod([]), conditions);
    expect(r).toMatchObject({ ok: false, reason: 'ImageNotRunning' });
    expect(!r.ok && r.message).toContain('container agent reports no running image digest yet');
  });

  it('refuses an imageID without a digest', () => {
    const r = checkAttestationConditions(
      pod([{ name: 'agent', imageID: 'registry.local/acme/agent:v1' }]),
      conditions,
    );
    expect(r).toMatchObject({ ok: false, reason: 'ImageNotRunning' });
    expect(!r.ok && r.message).toContain('is "registry.local/acme/agent:v1"');
  });

  it('checks init containers too', () => {
    const r = checkAttestationConditions(
      pod(
        [
          { name: 'agent', imageID: D1 },
          { name: 'setup', imageID: D3 },
        ],
        true,
      ),
      conditions,
    );
    expect(r).toMatchObject({ ok: false, reason: 'ImageDigestNotAllowed' });
    expect(!r.ok && r.message).toContain('container setup runs image');
  });

  it('checks nothing when no digests are listed (old objects)', () => {
    expect(checkAttestationConditions(pod([]), {})).toEqual({ ok: true });
    expect(checkAttestationConditions(pod([]), { images: {} })).toEqual({ ok: true });
  });
});

describe('spec.attestation.images.signatures', () => {
  const keys = [{ name: 'release', publicKey: 'PEM' }];
  const signed = { images: { signatures: { keys } } };
  const running = pod([{ name: 'agent', imageID: `registry.local/acme/agent@${D1}` }]);
  const verdicts = (v: SignatureVerdict) => new Map([['agent', v]]);

  it('asks to verify each running digest not pinned in digests, with the spec image as reference', () => {
    expect(signatureChecks(running, signed)).toEqual([
      { container: 'agent', reference: 'registry.local/acme/agent:v1', digest: D1, keys },
    ]);
    expect(signatureChecks(running, { images: { digests: [D1], signatures: { keys } } })).toEqual([]);
    expect(signatureChecks(running, { images: { digests: [D1] } })).toEqual([]);
    expect(signatureChecks(pod([]), signed)).toEqual([]);
  });

  it('accepts a container whose running image verified', () => {
    expect(
      checkAttestationConditions(running, signed, undefined, verdicts({ ok: true, key: 'release' })),
    ).toEqual({
      ok: true,
    });
  });

  it.each([
    ['ImageNotSigned' as const],
    ['ImageSignatureInvalid' as const],
    ['ImageSignatureUnverifiable' as const],
  ])('refuses with the verdict reason %s and its message', (reason) => {
    const r = checkAttestationConditions(
      running,
      signed,
      undefined,
      verdicts({ ok: false, reason, message: 'why' }),
    );
    expect(r).toEqual({
      ok: false,
      reason,
      message: `container agent runs image ${D1} (registry.local/acme/agent:v1) without a valid signature by spec.attestation.images.signatures.keys: why`,
    });
  });

  it('fails closed when no verdict was gathered', () => {
    expect(checkAttestationConditions(running, signed)).toMatchObject({
      ok: false,
      reason: 'ImageSignatureUnverifiable',
    });
  });

  it('lets a pinned digest through without a signature, and says so when neither holds', () => {
    const both = { images: { digests: [D1], signatures: { keys } } };
    expect(checkAttestationConditions(running, both)).toEqual({ ok: true });
    const other = pod([{ name: 'agent', imageID: D2 }]);
    const r = checkAttestationConditions(
      other,
      both,
      undefined,
      verdicts({ ok: false, reason: 'ImageNotSigned', message: 'no signature' }),
    );
    expect(!r.ok && r.message).toContain(
      ', not one of spec.attestation.images.digests, without a valid signature',
    );
  });

  it('still requires the container to run', () => {
    expect(checkAttestationConditions(pod([]), signed)).toMatchObject({
      ok: false,
      reason: 'ImageNotRunning',
    });
  });
});
