/** The `warden.dev/agent` label value of an agent's AuditRecords (selectors read and write it). */
import { createHash } from 'node:crypto';

/** Label values are at most 63 characters; long agent names are hashed. */
export function agentLabelValue(agent: string): string {
  return agent.length <= 63 ? agent : `h-${createHash('sha256').update(agent).digest('hex').slice(0, 40)}`;
}
