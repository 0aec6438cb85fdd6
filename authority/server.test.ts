/**
 * The authority's HTTP surface and its audit: an issuance (/v1/token, /v1/credentials) is answered
 * only once its audit entry is persisted (docs/faults.md); denials and other endpoints at once.
 */
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from './audit.js';
import { OAuthError } from './errors.js';
import { StaticKeySource } from './keystore.js';
import { FailureRateLimiter } from './ratelimit.js';
import type { RequestContext } from './request.js';
import { createAuthorityServer, DURABLE_AUDIT_ENDPOINTS } from './server.js';

/** A trail whose writes the test completes: `kept` is what a persisted record returns. */
class HeldTrail implements AuditSink {
  readonly got: Array<{ event: AuditEvent; persisted: boolean }> = [];
  kept: Promise<boolean> = Promise.resolve(true);
  record(event: AuditEvent): void {
    this.got.push({ event, persisted: false });
  }
  persist(event: AuditEvent): Promise<boolean> {
    this.got.push({ event, persisted: true });
    return this.kept;
  }
}

const issue = async (ctx: RequestContext): Promise<Record<string, unknown>> => {
  ctx.audit = { kind: 'Credential', namespace: 'agents', agent: 'bot', credentialId: 'jti-1' };
  return { access_token: 'issued' };
};
const refuse = async (ctx: RequestContext): Promise<Record<string, unknown>> => {
  ctx.audit = { kind: 'Credential', namespace: 'agents', agent: 'bot' };
  throw new OAuthError('access_denied', 'no rule allows it');
};

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function serve(trail: HeldTrail, credentials = issue, auditPersistTimeoutMs = 3000) {
  const server = createAuthorityServer({
    issuer: 'https://warden-authority.test',
    keys: StaticKeySource.generate(),
    audit: trail,
    limiter: new FailureRateLimiter({ burst: 1e6, refillPerSecond: 1, maxSources: 10 }),
    log: pino({ level: 'silent' }),
    token: issue,
    credentials,
    routes: { '/v1/introspect': async () => ({ active: false }) },
    auditPersistTimeoutMs,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const post = (url: string) => fetch(url, { method: 'POST' });

describe('authority answers and their audit entries', () => {
  it('names the issuing endpoints as the ones that wait', () => {
    expect([...DURABLE_AUDIT_ENDPOINTS].sort()).toEqual(['/v1/credentials', '/v1/token']);
  });

  it.each(['/v1/credentials', '/v1/token'])(
    'answers %s only once its audit entry is persisted',
    async (path) => {
      const trail = new HeldTrail();
      let persist = () => {};
      trail.kept = new Promise<boolean>((r) => {
        persist = () => r(true);
      });
      const base = await serve(trail);
      let answered = false;
      const res = post(`${base}${path}`).then((r) => {
        answered = true;
        return r;
      });
      // The request is handled and its entry handed over; the answer waits for the write.
      for (let i = 0; i < 200 && trail.got.length === 0; i++) await new Promise((r) => setImmediate(r));
      for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      expect(trail.got.map((g) => [g.event.decision, g.persisted])).toEqual([['Allow', true]]);
      expect(answered).toBe(false);
      persist();
      const r = await res;
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ access_token: 'issued' });
    },
  );

  it('hands nothing out when the entry is not persisted in time: 503, the issuance and the refusal both recorded', async () => {
    const trail = new HeldTrail();
    trail.kept = new Promise<boolean>(() => {});
    const base = await serve(trail, issue, 20);
    const r = await post(`${base}/v1/credentials`);
    expect(r.status).toBe(503);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body.error).toBe('temporarily_unavailable');
    expect(String(body.error_description)).toMatch(/could not record this issuance in the audit trail/);
    expect(body).not.toHaveProperty('access_token');
    expect(trail.got.map((g) => [g.event.decision, g.persisted, g.event.error])).toEqual([
      ['Allow', true, undefined],
      ['Deny', false, 'temporarily_unavailable'],
    ]);
  });

  it('hands nothing out when the entry was refused as invalid and dropped: 500, the refusal recorded', async () => {
    const trail = new HeldTrail();
    trail.kept = Promise.resolve(false);
    const base = await serve(trail);
    const r = await post(`${base}/v1/token`);
    expect(r.status).toBe(500);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body.error).toBe('server_error');
    expect(String(body.error_description)).toMatch(/audit trail refused the record holding this issuance/);
    expect(body).not.toHaveProperty('access_token');
    expect(trail.got.map((g) => [g.event.decision, g.persisted, g.event.error])).toEqual([
      ['Allow', true, undefined],
      ['Deny', false, 'server_error'],
    ]);
  });

  it('answers a denial at once (it grants nothing; the broker spools its own entry of it)', async () => {
    const trail = new HeldTrail();
    trail.kept = new Promise<boolean>(() => {});
    const base = await serve(trail, refuse);
    const r = await post(`${base}/v1/credentials`);
    expect(r.status).toBe(403);
    expect(trail.got.map((g) => [g.event.decision, g.persisted])).toEqual([['Deny', false]]);
  });

  it('answers other endpoints without waiting for the trail', async () => {
    const trail = new HeldTrail();
    trail.kept = new Promise<boolean>(() => {});
    const base = await serve(trail);
    const r = await post(`${base}/v1/introspect`);
    expect(r.status).toBe(200);
    expect(trail.got.map((g) => [g.event.endpoint, g.persisted])).toEqual([['/v1/introspect', false]]);
  });
});
