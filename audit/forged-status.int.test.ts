/**
 * status.audit.forged against the real API server: written by the audit writer's field manager,
 * and concurrent finds all count (the read-modify-write carries the resourceVersion and re-reads
 * on 409).
 */
import { describe, expect, it } from 'vitest';
import type { AgentIdentity } from '../core/api/index.js';
import { API_VERSION, AUDIT_FIELD_MANAGER, PLURAL } from '../core/constants.js';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { KubeConfigApi } from '../kube/kube.js';
import { ApiStatusWriter } from '../kube/status.js';
import { recordForged } from './forged-status.js';

const api = new KubeConfigApi(kubeConfig());
const status = new ApiStatusWriter(api, AUDIT_FIELD_MANAGER);

describe('recordForged', () => {
  it('counts every forged record of concurrent finds, under the audit field manager', async () => {
    const ns = await freshNamespace('forged-status');
    const path = `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}`;
    await api.request('POST', path, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AgentIdentity',
        metadata: { name: 'bot' },
        spec: { serviceAccountName: 'bot' },
      },
    });
    const time = new Date('2026-12-04T12:00:00Z');
    await Promise.all(
      [0, 1, 2, 3].map((i) =>
        recordForged(api, status, {
          namespace: ns,
          agent: 'bot',
          record: `bot-${i}`,
          reason: 'unsigned',
          time,
        }),
      ),
    );
    const agent = await api.request<AgentIdentity>('GET', `${path}/bot`);
    expect(agent.status?.audit?.forged?.count).toBe(4);
    expect(agent.status?.audit?.forged?.lastReason).toBe('unsigned');
    expect(agent.status?.audit?.forged?.lastTime).toBe(time.toISOString());
    const owners = (agent.metadata?.managedFields ?? []).filter(
      (m) => m.subresource === 'status' && JSON.stringify(m.fieldsV1 ?? {}).includes('"f:forged"'),
    );
    expect(owners.map((m) => m.manager)).toEqual([AUDIT_FIELD_MANAGER]);
  });

  it('has nothing to count on a missing AgentIdentity', async () => {
    const ns = await freshNamespace('forged-missing');
    await expect(
      recordForged(api, status, {
        namespace: ns,
        agent: 'gone',
        record: 'gone-0',
        reason: 'unsigned',
        time: new Date(),
      }),
    ).resolves.toBeUndefined();
  });
});
