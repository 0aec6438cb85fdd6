/**
 * status.audit.forged of an AgentIdentity: how many AuditRecords the audit writer found that the
 * controller did not sign, and the last one. Written by its one owner, the audit writer's field
 * manager (docs/conventions.md §5), as a read-modify-write that carries the resourceVersion read:
 * two replicas finding forged records at once both count, neither increment is lost.
 */
import type { AgentIdentity } from '../core/api/index.js';
import { ConflictError, isNotFound } from '../kube/errors.js';
import { type KubeApi, resourcePath } from '../kube/kube.js';
import { AGENT_IDENTITIES } from '../kube/resources.js';
import type { StatusWriter } from '../kube/status.js';

const ATTEMPTS = 5;

export interface ForgedRecord {
  namespace: string;
  agent: string;
  /** The AuditRecord's name. */
  record: string;
  reason: string;
  /** When it was found. */
  time: Date;
}

/** Pure: status.audit.forged after one more forged record. */
export function nextForged(
  current: { count?: number } | undefined,
  found: Pick<ForgedRecord, 'record' | 'reason' | 'time'>,
): { count: number; lastRecord: string; lastReason: string; lastTime: string } {
  return {
    count: (current?.count ?? 0) + 1,
    lastRecord: found.record,
    lastReason: found.reason.slice(0, 1024),
    lastTime: found.time.toISOString(),
  };
}

/**
 * Counts a forged AuditRecord on its AgentIdentity. `status` must be the writer of
 * AUDIT_FIELD_MANAGER. A missing AgentIdentity is nothing to count on; a conflict re-reads.
 */
export async function recordForged(api: KubeApi, status: StatusWriter, found: ForgedRecord): Promise<void> {
  const path = resourcePath(AGENT_IDENTITIES, found.namespace, found.agent);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let agent: AgentIdentity;
    try {
      agent = await api.request<AgentIdentity>('GET', path);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    const forged = nextForged(agent.status?.audit?.forged, found);
    try {
      await status.write(AGENT_IDENTITIES, agent, { audit: { forged } });
      return;
    } catch (err) {
      if (err instanceof ConflictError) continue;
      throw err;
    }
  }
  throw new Error(
    `AgentIdentity ${found.namespace}/${found.agent}: status changed ${ATTEMPTS} times while counting forged AuditRecord ${found.record}`,
  );
}
