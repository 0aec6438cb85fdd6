/**
 * `warden controller` against the real API server: a forged AuditRecord in the way of its writer
 * is told on the agent — an Event AuditRecordForged and status.audit.forged — and the chain goes
 * on past it; the audit keys are published in the controller's namespace.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentIdentity, AuditEntry, AuditRecord } from '../core/api/index.js';
import { recordName, sealRecord } from '../core/audit/chain.js';
import { API_VERSION, AUDIT_KEYS_CONFIGMAP, LABEL_AGENT, PLURAL } from '../core/constants.js';
import { startTestController } from '../e2e/agent-stack.js';
import { eventually } from '../e2e/eventually.js';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { KubeConfigApi, type ObjectList } from '../kube/kube.js';
import type { RunningController } from './run.js';

const entry = (i: number): AuditEntry => ({
  time: new Date(Date.UTC(2026, 11, 4, 12, 0, i)).toISOString(),
  kind: 'Decision',
  decision: 'Deny',
  requestId: `req-${i}`,
});

describe('warden controller: a forged AuditRecord', () => {
  let ns = '';
  let controller: RunningController;
  const api = new KubeConfigApi(kubeConfig());
  const base = () => `/apis/${API_VERSION}/namespaces/${ns}`;

  beforeAll(async () => {
    ns = await freshNamespace('ctl-forged');
    await api.request('POST', `${base()}/${PLURAL.AgentIdentity}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AgentIdentity',
        metadata: { name: 'bot' },
        spec: { serviceAccountName: 'bot' },
      },
    });
    controller = await startTestController(kubeConfig(), {
      namespace: ns,
      log: pino({ level: 'silent' }),
      identityPrefix: 'forged',
      audit: { maxEntries: 1, maxBytes: 1 << 20, maxAgeMs: 0 },
    });
  });

  afterAll(async () => {
    await controller?.stop();
  });

  it('publishes its audit keys, skips the forged record and reports it (Event + status)', async () => {
    const cm = await api.request<{ data: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${ns}/configmaps/${AUDIT_KEYS_CONFIGMAP}`,
    );
    expect(JSON.parse(cm.data['jwks.json'] ?? '{}').keys).toHaveLength(1);

    controller.auditWriter.record(ns, 'bot', entry(0));
    await controller.auditWriter.flush(true);
    const [mine] = (await api.request<ObjectList<AuditRecord>>('GET', `${base()}/${PLURAL.AuditRecord}`))
      .items;
    const forged = sealRecord({
      agent: 'bot',
      sequence: 1,
      previousDigest: mine?.spec.digest ?? '',
      entries: [entry(9)],
    });
    await api.request('POST', `${base()}/${PLURAL.AuditRecord}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AuditRecord',
        metadata: { name: recordName('bot', 1), labels: { [LABEL_AGENT]: 'bot' } },
        spec: forged,
      },
    });
    controller.auditWriter.record(ns, 'bot', entry(1));
    await controller.auditWriter.flush(true);

    const next = await api.request<AuditRecord>(
      'GET',
      `${base()}/${PLURAL.AuditRecord}/${recordName('bot', 2)}`,
    );
    expect(next.spec.previousDigest).toBe(mine?.spec.digest);
    const status = await eventually('status.audit.forged', async () => {
      const a = await api.request<AgentIdentity>('GET', `${base()}/${PLURAL.AgentIdentity}/bot`);
      return a.status?.audit?.forged;
    });
    expect(status).toMatchObject({
      count: 1,
      lastRecord: recordName('bot', 1),
      lastReason: 'the record is not signed',
    });
    const event = await eventually('Event AuditRecordForged', async () => {
      const events = await api.request<
        ObjectList<{ reason?: string; note?: string; type?: string; regarding?: { name?: string } }>
      >('GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
      return events.items.find((e) => e.reason === 'AuditRecordForged');
    });
    expect(event).toMatchObject({ type: 'Warning', regarding: { name: 'bot' } });
    expect(event.note).toContain(
      `AuditRecord ${recordName('bot', 1)} was not written by the Warden controller`,
    );
    const head = (await api.request<AgentIdentity>('GET', `${base()}/${PLURAL.AgentIdentity}/bot`)).status
      ?.audit?.head;
    expect(head?.sequence).toBe(2);
  });
});
