/**
 * The policy stream against the real API server: snapshots pushed from watches on edits,
 * suspension, deletion and new CredentialProviders; resume with Last-Event-ID; session authentication.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { MemoryAuditSink } from './audit.js';
import { type Authority, createAuthority } from './index.js';
import {
  createAgentIdentity,
  createPod,
  createServiceAccount,
  createWardenObject,
  type Fixture,
  fixture,
  httpCall,
  openStream,
  patchAgentIdentity,
  projectedToken,
  type SseEvent,
  sessionFor,
  TEST_BROKER_IMAGE,
} from './int-fixtures.js';
import type { PolicySnapshot } from './snapshot.js';

let f: Fixture;
let authority: Authority;
let base: string;
let session: string;
const audit = new MemoryAuditSink();

const snapshotOf = (e: SseEvent) => e.data as PolicySnapshot;

beforeAll(async () => {
  const kc = kubeConfig();
  f = fixture(kc, await freshNamespace('authority-stream'));
  await createServiceAccount(f, 'bot-sa');
  await createAgentIdentity(f, 'support-bot', { serviceAccountName: 'bot-sa' });
  await createWardenObject(f, 'AccessPolicy', 'jira-read', {
    agentSelector: { names: ['support-bot'] },
    rules: [{ targets: ['jira'], tools: ['jira.get_*'] }],
  });
  await createWardenObject(f, 'AccessPolicy', 'other-agent', {
    agentSelector: { names: ['billing-bot'] },
    rules: [{ targets: ['*'] }],
  });
  authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace: f.namespace,
    watchNamespace: f.namespace,
    issuer: 'https://warden-authority.test',
    audit,
    log: pino({ level: 'silent' }),
  });
  base = `http://127.0.0.1:${await authority.listen(0, '127.0.0.1')}`;
  session = await sessionFor(f, base, { pod: 'bot-1', agent: 'support-bot' });
});

afterAll(async () => {
  await authority?.close();
});

describe('GET /v1/stream', () => {
  it('sends the agent snapshot, then every change', async () => {
    const stream = await openStream(`${base}/v1/stream`, { authorization: `Bearer ${session}` });
    try {
      expect(stream.status).toBe(200);
      const first = snapshotOf(await stream.next());
      expect(first.agent).toMatchObject({
        name: 'support-bot',
        suspended: false,
        serviceAccountName: 'bot-sa',
      });
      expect(first.policies.map((p) => p.name)).toEqual(['jira-read']); // not other agents' policies
      expect(audit.events.some((e) => e.kind === 'Stream' && e.decision === 'Allow')).toBe(true);

      // A policy edit arrives as a new snapshot.
      await createWardenObject(f, 'AccessPolicy', 'deny-delete', {
        effect: 'Deny',
        rules: [{ targets: ['jira'], tools: ['jira.delete_*'] }],
      });
      const second = snapshotOf(await stream.next((e) => snapshotOf(e).policies.length === 2));
      expect(second.policies.map((p) => p.name)).toEqual(['deny-delete', 'jira-read']);
      expect(second.version).not.toBe(first.version);

      // The kill switch arrives as a snapshot with suspended: true.
      await patchAgentIdentity(f, 'support-bot', { suspended: true, suspendReason: 'incident 9' });
      const killed = snapshotOf(await stream.next((e) => snapshotOf(e).agent?.suspended === true));
      expect(killed.agent?.suspendReason).toBe('incident 9');

      // Resuming with the current version resends nothing but a confirmation.
      const resumed = await openStream(`${base}/v1/stream`, {
        authorization: `Bearer ${session}`,
        'last-event-id': killed.version,
      });
      expect(await resumed.next()).toEqual({
        event: 'current',
        id: killed.version,
        data: { version: killed.version },
      });
      resumed.close();

      // Resuming from an older version gets the full current snapshot.
      const behind = await openStream(`${base}/v1/stream`, {
        authorization: `Bearer ${session}`,
        'last-event-id': first.version,
      });
      expect(snapshotOf(await behind.next()).version).toBe(killed.version);
      behind.close();

      await patchAgentIdentity(f, 'support-bot', { suspended: false });
      expect(
        snapshotOf(await stream.next((e) => snapshotOf(e).agent?.suspended === false)).agent?.suspended,
      ).toBe(false);
    } finally {
      stream.close();
    }
  });

  it('sends CredentialProviders created after the stream opened, without their secret references', async () => {
    const stream = await openStream(`${base}/v1/stream`, { authorization: `Bearer ${session}` });
    try {
      const first = snapshotOf(await stream.next());
      expect(first.providers.map((p) => p.name)).not.toContain('tickets');
      await createWardenObject(f, 'CredentialProvider', 'tickets', {
        target: { url: 'https://tickets.example/api', protocol: 'HTTP' },
        type: 'APIKey',
        apiKey: { secretRef: { name: 'tickets-api-key', key: 'key' } },
        inject: { header: 'X-Api-Key', format: '{token}' },
      });
      const e = await stream.next((ev) => snapshotOf(ev).providers.some((p) => p.name === 'tickets'));
      const next = snapshotOf(e);
      expect(next.version).not.toBe(first.version);
      expect(next.providers.find((p) => p.name === 'tickets')).toEqual({
        name: 'tickets',
        url: 'https://tickets.example/api',
        protocol: 'HTTP',
        inject: { header: 'X-Api-Key', format: '{token}' },
      });
      expect(JSON.stringify(e.data)).not.toContain('tickets-api-key');
      expect(JSON.stringify(e.data)).not.toContain('secretRef');
    } finally {
      stream.close();
    }
  });

  it('reports a deleted AgentIdentity as agent: null', async () => {
    await createAgentIdentity(f, 'temp-bot', { serviceAccountName: 'bot-sa' });
    const tempSession = await sessionFor(f, base, { pod: 'temp-1', agent: 'temp-bot' });
    const stream = await openStream(`${base}/v1/stream`, { authorization: `Bearer ${tempSession}` });
    try {
      expect(snapshotOf(await stream.next()).agent?.name).toBe('temp-bot');
      await kubeConfig().makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: f.namespace,
        plural: PLURAL.AgentIdentity,
        name: 'temp-bot',
      });
      const gone = snapshotOf(await stream.next((e) => snapshotOf(e).agent === null));
      expect(gone.policies).toEqual([]);
    } finally {
      stream.close();
    }
  });

  it.each([
    ['no Authorization header', {}, 'missing Authorization'],
    ['a garbage session', { authorization: 'Bearer abc.def.ghi' }, 'malformed'],
    ['a service-account token instead of a session', { authorization: 'Bearer SA' }, 'session token'],
  ])('refuses %s with 401 invalid_token', async (_name, headers, message) => {
    const h = { ...headers } as Record<string, string>;
    if (h.authorization === 'Bearer SA') {
      const pod = await createPod(f, `sa-${Date.now()}`, { serviceAccount: 'bot-sa', agent: 'support-bot' });
      h.authorization = `Bearer ${await projectedToken(f, 'bot-sa', pod)}`;
    }
    const res = await httpCall(`${base}/v1/stream`, { headers: h });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_token');
    expect(res.body.error_description).toContain(message);
    expect(res.headers['www-authenticate']).toContain('invalid_token');
    expect(audit.events.at(-1)).toMatchObject({ kind: 'Stream', decision: 'Deny', error: 'invalid_token' });
  });
});
