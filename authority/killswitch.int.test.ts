/**
 * The authority's kill-switch and audit endpoints over HTTP, against the real API server:
 * POST /v1/audit (session-authenticated, agent and pod stamped from the session) and
 * POST /v1/introspect (RFC 7662 with the stateless revocation rule).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import type { BrokerAuditAdmission } from '../core/ports/audit.js';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { KubeConfigApi } from '../kube/kube.js';
import type { AuditSubject, BrokerAuditTrail, BrokerEvent, BrokerEventSink } from './audit-endpoint.js';
import { type Authority, createAuthority } from './index.js';
import {
  createAgentIdentity,
  createServiceAccount,
  type Fixture,
  fixture,
  form,
  httpCall,
  patchAgentIdentity,
  sessionFor,
  TEST_BROKER_IMAGE,
} from './int-fixtures.js';
import { JwtMinter } from './mint/jwt.js';
import { policy, provider } from './mint/testing.js';

class RecordingTrail implements BrokerAuditTrail {
  readonly got: Array<{ who: AuditSubject; events: readonly BrokerEvent[]; resent: boolean }> = [];
  /** While set, batches are "being persisted" until it is called (the trail's writer, slowed down). */
  persisting: Promise<void> | undefined;
  /** Which events the trail meets for the first time (default all); `unreadable` rejects. */
  admits: ((e: BrokerEvent) => boolean) | 'unreadable' = () => true;
  async admitBrokerEvents(
    who: AuditSubject,
    events: readonly BrokerEvent[],
    opts: { resent: boolean },
  ): Promise<BrokerAuditAdmission> {
    this.got.push({ who, events, resent: opts.resent });
    const admits = this.admits;
    if (admits === 'unreadable') throw new Error('the chain could not be read');
    return { fresh: events.filter((e) => admits(e)), persisted: this.persisting ?? Promise.resolve() };
  }
}

const ISSUER = 'https://warden-authority.test';
let f: Fixture;
let authority: Authority;
let base: string;
let session: string;
const sink = new RecordingTrail();
/** The counters' view (decision stats, circuit breaker, tool usage): what they were given. */
const counted: string[] = [];
const counter: BrokerEventSink = {
  recordBrokerEvents: (_who, events) => {
    for (const e of events) counted.push(e.entry.id ?? '');
  },
};

beforeAll(async () => {
  const kc = kubeConfig();
  f = fixture(kc, await freshNamespace('authority-killswitch'));
  await createServiceAccount(f, 'bot-sa');
  await createAgentIdentity(f, 'bot', { serviceAccountName: 'bot-sa' });
  authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace: f.namespace,
    watchNamespace: f.namespace,
    issuer: ISSUER,
    log: pino({ level: 'silent' }),
    brokerAuditTrail: sink,
    brokerAuditSinks: [counter],
  });
  base = `http://127.0.0.1:${await authority.listen(0, '127.0.0.1')}`;
  session = await sessionFor(f, base, { pod: 'bot-0', agent: 'bot' });
});

afterAll(async () => {
  await authority?.close();
});

const ship = (body: unknown, auth = `Bearer ${session}`) =>
  httpCall(`${base}/v1/audit`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const event = {
  time: new Date().toISOString(),
  kind: 'Decision',
  decision: 'Deny',
  user: 'agent acting alone',
  target: 'jira',
  tool: 'jira.delete_issue',
  requestId: 'r-1',
  reason: 'NoMatchingAllow',
  message: 'no rule allows it',
};

describe('POST /v1/audit', () => {
  it('accepts a batch and stamps agent and pod from the session, whatever the body claims', async () => {
    const res = await ship({
      events: [{ ...event, pod: 'victim-pod', agent: 'other-agent', namespace: 'kube-system' }, event],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ accepted: 2 });
    const last = sink.got.at(-1);
    expect(last?.who).toMatchObject({ namespace: f.namespace, agent: 'bot', pod: 'bot-0' });
    expect(last?.events.map((e) => e.entry.pod)).toEqual(['bot-0', 'bot-0']);
  });

  it('refuses a caller without a session, and records nothing', async () => {
    const before = sink.got.length;
    const res = await ship({ events: [event] }, 'Bearer not-a-session');
    expect(res.status).toBe(401);
    expect(sink.got.length).toBe(before);
  });

  it('rejects a malformed event, naming it, and records nothing of the batch', async () => {
    const before = sink.got.length;
    const res = await ship({ events: [event, { ...event, decision: 'Maybe' }] });
    expect(res.status).toBe(400);
    expect(res.body.error_description).toBe('events[1].decision: must be Allow or Deny');
    expect(sink.got.length).toBe(before);
  });

  it('answers only once the trail persisted the batch, and 503 (ship again) when it does not in time', async () => {
    let persisted = () => {};
    sink.persisting = new Promise<void>((r) => {
      persisted = r;
    });
    try {
      const ids = { ...event, id: '0123456789abcdef-1' };
      let answered = false;
      const first = ship({ events: [ids] }).then((r) => {
        answered = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(answered).toBe(false);
      persisted();
      expect((await first).status).toBe(200);
      // Never persisted: after ACK_TIMEOUT_MS (3 s) the broker is told to keep it and ship again.
      sink.persisting = new Promise<void>(() => {});
      const late = await ship({ events: [ids] });
      expect(late.status).toBe(503);
      expect(late.body.error).toBe('temporarily_unavailable');
      expect(String(late.body.error_description)).toMatch(/not yet persisted.*ship them again/);
      expect(sink.got.at(-1)?.events[0]?.entry.id).toBe('0123456789abcdef-1');
    } finally {
      sink.persisting = undefined;
    }
  });

  it('tells the trail whether the broker ships the batch again (resent: true only)', async () => {
    expect((await ship({ events: [event], resent: true })).status).toBe(200);
    expect(sink.got.at(-1)?.resent).toBe(true);
    expect((await ship({ events: [event], resent: 'yes' })).status).toBe(200);
    expect(sink.got.at(-1)?.resent).toBe(false);
    expect((await ship({ events: [event] })).status).toBe(200);
    expect(sink.got.at(-1)?.resent).toBe(false);
  });

  it('gives the counters only the events the trail admitted as new (one count per entry)', async () => {
    const id = (n: number) => ({ ...event, id: `00000000000000f1-${n}` });
    counted.length = 0;
    sink.admits = (e) => e.entry.id !== '00000000000000f1-1';
    try {
      expect((await ship({ events: [id(1), id(2)], resent: true })).status).toBe(200);
    } finally {
      sink.admits = () => true;
    }
    expect(counted).toEqual(['00000000000000f1-2']);
  });

  it('answers 503 and counts nothing when the trail cannot tell what it holds', async () => {
    counted.length = 0;
    sink.admits = 'unreadable';
    try {
      const res = await ship({ events: [{ ...event, id: '00000000000000f2-1' }] });
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('temporarily_unavailable');
    } finally {
      sink.admits = () => true;
    }
    expect(counted).toEqual([]);
  });

  it('rejects an event id that is not the broker format, naming it', async () => {
    const res = await ship({ events: [event, { ...event, id: 'forged id' }] });
    expect(res.status).toBe(400);
    expect(res.body.error_description).toMatch(/^events\[1\]\.id: must be <16 hex digits>-<sequence from 1>/);
  });

  it('rejects an oversized batch', async () => {
    const res = await ship({ events: Array.from({ length: 501 }, () => event) });
    expect(res.status).toBe(400);
    expect(String(res.body.error_description)).toContain('at most 500');
  });
});

describe('POST /v1/introspect', () => {
  const minter = () => new JwtMinter({ issuer: ISSUER, keys: authority.keys });
  const mintFor = async (agent: string) => {
    const r = await minter().mint({
      agent: { name: agent, namespace: f.namespace, labels: {} },
      user: null,
      provider: { ...provider({ type: 'JWT' }), namespace: f.namespace },
      policy: policy(),
      secrets: { read: async () => '' },
    });
    if (r.credential.kind !== 'headers') throw new Error('expected headers');
    return (r.credential.headers.Authorization ?? '').replace(/^Bearer /, '');
  };
  const introspect = (token: string) =>
    httpCall(`${base}/v1/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ token }),
    });
  const setStatus = (status: Record<string, unknown>) =>
    new KubeConfigApi(kubeConfig()).request(
      'PATCH',
      `/apis/${GROUP}/${VERSION}/namespaces/${f.namespace}/${PLURAL.AgentIdentity}/bot/status`,
      { body: { status }, contentType: 'application/merge-patch+json' },
    );

  it('answers active for a live token of an active agent, with its claims', async () => {
    const res = await introspect(await mintFor('bot'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: true, client_id: `system:warden:agent:${f.namespace}:bot` });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it.each([
    ['garbage', 'not.a.jwt'],
    ['a session token (wrong typ)', () => session],
  ])('answers inactive for %s', async (_n, t) => {
    const res = await introspect(typeof t === 'function' ? t() : t);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ active: false });
  });

  it('answers inactive while the agent is suspended, and for tokens minted before the revocation after a revive', async () => {
    const token = await mintFor('bot');
    await patchAgentIdentity(f, 'bot', { suspended: true });
    expect((await introspect(token)).body).toEqual({ active: false });
    // The revocation reconciler records requestedAt; tokens issued up to then stay revoked.
    await new Promise((r) => setTimeout(r, 1100));
    await setStatus({ revocation: { requestedAt: new Date().toISOString() } });
    await patchAgentIdentity(f, 'bot', { suspended: false });
    expect((await introspect(token)).body).toEqual({ active: false });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await introspect(await mintFor('bot'))).body).toMatchObject({ active: true });
  });

  it('answers inactive for an agent that no longer exists', async () => {
    expect((await introspect(await mintFor('ghost'))).body).toEqual({ active: false });
  });

  it('refuses a request without the token parameter', async () => {
    const res = await httpCall(`${base}/v1/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ nothing: 'x' }),
    });
    expect(res.status).toBe(400);
  });
});
