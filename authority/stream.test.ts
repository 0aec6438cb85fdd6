/** The stream handler over a real HTTP server with an in-memory policy source (no API server). */
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryAuditSink } from './audit.js';
import { httpCall, openStream } from './int-fixtures.js';
import { StaticKeySource } from './keystore.js';
import type { ChangeListener, PolicySource } from './policy-store.js';
import { FailureRateLimiter } from './ratelimit.js';
import { createAuthorityServer } from './server.js';
import { Sessions } from './session.js';
import { buildSnapshot, type IdentityView } from './snapshot.js';
import { handleStream, openStreamCount } from './stream.js';

const ISSUER = 'https://authority.test';

/** A PolicySource holding one identity in memory; `set` changes it and notifies like a watch. */
class MemorySource implements PolicySource {
  private listeners = new Set<ChangeListener>();
  constructor(public id: IdentityView | null) {}
  identity() {
    return this.id;
  }
  snapshot(ns: string, agent: string) {
    return buildSnapshot(ns, agent, this.id, []);
  }
  policySet() {
    return null;
  }
  subscribe(l: ChangeListener) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(id: IdentityView | null, ns = 'team') {
    this.id = id;
    for (const l of this.listeners) l(ns);
  }
}

const identity = (suspended = false): IdentityView => ({
  name: 'bot',
  namespace: 'team',
  labels: {},
  spec: { serviceAccountName: 'sa', suspended } as IdentityView['spec'],
});
const subject = { namespace: 'team', agent: 'bot', serviceAccount: 'sa', pod: 'bot-1', podUID: 'u1' };

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
});

async function serve(store: PolicySource, ttlSeconds: number, heartbeatMs: number) {
  const keys = StaticKeySource.generate();
  const sessions = new Sessions({ issuer: ISSUER, keys, ttlSeconds });
  const audit = new MemoryAuditSink();
  const server = createAuthorityServer({
    issuer: ISSUER,
    keys,
    audit,
    limiter: new FailureRateLimiter(),
    log: pino({ level: 'silent' }),
    token: async () => ({}),
    stream: (ctx) => handleStream(ctx, { sessions, store, audit, heartbeatMs }),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/stream`, sessions, audit };
}

describe('handleStream', () => {
  it('pushes a snapshot per change and skips notifications that change nothing', async () => {
    const store = new MemorySource(identity());
    const { url, sessions } = await serve(store, 600, 60_000);
    const s = await openStream(url, { authorization: `Bearer ${sessions.issue(subject).token}` });
    const first = await s.next();
    expect(first.event).toBe('snapshot');
    store.set(identity()); // same state: no event
    store.set(identity(true));
    const next = await s.next();
    expect((next.data as { agent: { suspended: boolean } }).agent.suspended).toBe(true);
    expect(next.id).not.toBe(first.id);
    store.set(identity(true), 'other-namespace'); // other namespaces do not concern this agent
    store.set(null);
    expect((await s.next()).data).toMatchObject({ agent: null });
    s.close();
  });

  it('sends heartbeats and ends with "expired" when the session does', async () => {
    const { url, sessions } = await serve(new MemorySource(identity()), 1, 20);
    const raw = await httpCall(url, {
      headers: { authorization: `Bearer ${sessions.issue(subject).token}` },
    });
    expect(raw.status).toBe(200);
    expect(raw.headers['content-type']).toContain('text/event-stream');
    expect(raw.text).toContain('retry: 1000');
    expect(raw.text).toContain(': ping');
    expect(raw.text.trimEnd().split('\n\n').at(-1)).toMatch(/^event: expired/);
    expect(openStreamCount()).toBe(0);
  });

  it('refuses POST', async () => {
    const { url, sessions } = await serve(new MemorySource(identity()), 600, 60_000);
    const res = await httpCall(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${sessions.issue(subject).token}` },
    });
    expect(res.status).toBe(405);
    expect(res.body.error).toBe('invalid_request');
  });
});
