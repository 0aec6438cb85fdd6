import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AgentIdentity } from '../../core/api/index.js';
import { getCondition } from '../../core/conditions.js';
import { decideAgentIdentity } from './agentidentity.js';

const T1 = new Date('2026-02-01T09:00:00Z');
const T2 = new Date('2026-02-01T10:00:00Z');

/** Builder: an AgentIdentity with sensible defaults. */
function agent(
  spec: Partial<AgentIdentity['spec']> = {},
  extra: { generation?: number; status?: AgentIdentity['status'] } = {},
): AgentIdentity {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name: 'support-bot', namespace: 'team-a', generation: extra.generation ?? 3, uid: 'u' },
    spec: { serviceAccountName: 'support-bot-sa', ...spec },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

/** Run decide once and feed its status back in, as the API server would. */
function reconciledOnce(a: AgentIdentity, saExists: boolean, now = T1): AgentIdentity {
  return { ...a, status: decideAgentIdentity({ agent: a, serviceAccountExists: saExists }, now).status };
}

describe('decideAgentIdentity', () => {
  it('Ready when the ServiceAccount exists and the agent is not suspended', () => {
    const d = decideAgentIdentity({ agent: agent(), serviceAccountExists: true }, T1);
    expect(d.status.observedGeneration).toBe(3);
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Ready',
      observedGeneration: 3,
    });
    expect(getCondition(d.status.conditions, 'Suspended')).toMatchObject({
      status: 'False',
      reason: 'Active',
    });
    expect(d.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Ready' })]);
  });

  it('Ready=False ServiceAccountNotFound, naming the field and what to do, with a Warning Event', () => {
    const d = decideAgentIdentity({ agent: agent(), serviceAccountExists: false }, T1);
    const ready = getCondition(d.status.conditions, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'ServiceAccountNotFound' });
    expect(ready?.message).toBe(
      'spec.serviceAccountName: ServiceAccount team-a/support-bot-sa not found; create it or name an existing ServiceAccount',
    );
    expect(d.events).toEqual([
      { type: 'Warning', reason: 'ServiceAccountNotFound', action: 'Reconcile', note: ready?.message },
    ]);
  });

  it('Ready=False InvalidSpec for an image signing key that is not ECDSA P-256, naming the field', () => {
    const pem = (k: { publicKey: { export(o: object): string | Buffer } }) =>
      k.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const p256 = pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    const rsa = pem(generateKeyPairSync('rsa', { modulusLength: 1024 }));
    const signed = (keys: Array<{ name: string; publicKey: string }>) =>
      agent({ attestation: { images: { signatures: { keys } } } } as Partial<AgentIdentity['spec']>);
    const bad = decideAgentIdentity(
      {
        agent: signed([
          { name: 'new', publicKey: p256 },
          { name: 'old', publicKey: rsa },
        ]),
        serviceAccountExists: true,
      },
      T1,
    );
    const ready = getCondition(bad.status.conditions, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(ready?.message).toBe(
      'spec.attestation.images.signatures.keys[1].publicKey: is an RSA key; only ECDSA P-256 keys (what cosign generate-key-pair writes) are supported; pods whose images need a signature are refused attestation (ImageSignatureUnverifiable) until it is fixed',
    );
    expect(bad.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'InvalidSpec' })]);
    const good = decideAgentIdentity(
      { agent: signed([{ name: 'new', publicKey: p256 }]), serviceAccountExists: true },
      T1,
    );
    expect(getCondition(good.status.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
  });

  it('becomes Ready when the ServiceAccount appears later, moving lastTransitionTime and emitting Ready', () => {
    const missing = reconciledOnce(agent(), false, T1);
    const d = decideAgentIdentity({ agent: missing, serviceAccountExists: true }, T2);
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({
      status: 'True',
      lastTransitionTime: '2026-02-01T10:00:00Z',
    });
    expect(getCondition(d.status.conditions, 'Suspended')?.lastTransitionTime).toBe('2026-02-01T09:00:00Z');
    expect(d.events.map((e) => `${e.type}/${e.reason}`)).toEqual(['Normal/Ready']);
  });

  it('a steady state produces no Events and an identical status (so no write)', () => {
    const ready = reconciledOnce(agent(), true);
    const d = decideAgentIdentity({ agent: ready, serviceAccountExists: true }, T2);
    expect(d.events).toEqual([]);
    expect(d.status).toEqual(ready.status);
  });

  it('suspension: Suspended=True with the reason, Ready=False Suspended, and one Warning Event', () => {
    const ready = reconciledOnce(agent(), true);
    const killed = {
      ...ready,
      spec: { ...ready.spec, suspended: true, suspendReason: 'exfiltration suspected (INC-42)' },
    };
    const d = decideAgentIdentity({ agent: killed, serviceAccountExists: true }, T2);
    expect(getCondition(d.status.conditions, 'Suspended')).toMatchObject({
      status: 'True',
      reason: 'Suspended',
      message: 'spec.suspended is true: exfiltration suspected (INC-42)',
    });
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Suspended',
    });
    expect(d.events).toEqual([
      {
        type: 'Warning',
        reason: 'Suspended',
        action: 'Reconcile',
        note: 'spec.suspended is true: exfiltration suspected (INC-42)',
      },
    ]);
  });

  it('says so when no suspend reason was given', () => {
    const d = decideAgentIdentity(
      { agent: agent({ suspended: true, suspendReason: '  ' }), serviceAccountExists: true },
      T1,
    );
    expect(getCondition(d.status.conditions, 'Suspended')?.message).toBe(
      'spec.suspended is true: no reason given',
    );
  });

  it('resuming emits Resumed and Ready', () => {
    const killed = reconciledOnce(agent({ suspended: true }), true);
    const revived = { ...killed, spec: { ...killed.spec, suspended: false } };
    const d = decideAgentIdentity({ agent: revived, serviceAccountExists: true }, T2);
    expect(d.events.map((e) => `${e.type}/${e.reason}`)).toEqual(['Normal/Resumed', 'Normal/Ready']);
  });

  it('a missing ServiceAccount outranks suspension in Ready (it is the thing to fix)', () => {
    const d = decideAgentIdentity({ agent: agent({ suspended: true }), serviceAccountExists: false }, T1);
    expect(getCondition(d.status.conditions, 'Ready')?.reason).toBe('ServiceAccountNotFound');
    expect(getCondition(d.status.conditions, 'Suspended')?.status).toBe('True');
    expect(d.events.map((e) => e.reason).sort()).toEqual(['ServiceAccountNotFound', 'Suspended']);
  });

  it('a spec edit bumps observedGeneration on status and conditions without an Event', () => {
    const ready = reconciledOnce(agent(), true);
    const edited = { ...ready, metadata: { ...ready.metadata, generation: 4 } };
    const d = decideAgentIdentity({ agent: edited, serviceAccountExists: true }, T2);
    expect(d.status.observedGeneration).toBe(4);
    expect(d.status.conditions.every((c) => c.observedGeneration === 4)).toBe(true);
    expect(d.events).toEqual([]);
  });

  it('keeps conditions owned by others', () => {
    const other = {
      type: 'Revoked',
      status: 'True' as const,
      reason: 'KillSwitch',
      message: 'x',
      lastTransitionTime: '2026-01-01T00:00:00Z',
    };
    const a = agent({}, { status: { conditions: [other] } });
    const d = decideAgentIdentity({ agent: a, serviceAccountExists: true }, T1);
    expect(d.status.conditions.map((c) => c.type)).toEqual(['Revoked', 'Ready', 'Suspended']);
  });
});
