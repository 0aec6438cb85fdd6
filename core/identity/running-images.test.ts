import { describe, expect, it } from 'vitest';
import type { PodLike } from './agent.js';
import { checkAttestationConditions, runningDigest } from './attestation.js';

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
