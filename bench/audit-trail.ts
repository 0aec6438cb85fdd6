/**
 * A realistic audit trail for the scale benchmarks (bench/audit-scale.bench.ts): entries of several
 * agents, users and tools, with a share of denials, driven through the real AuditWriter.
 */
import type { AuditEntry } from '../core/api/index.js';

export const USERS = [
  'https://idp.example|alice',
  'https://idp.example|bob',
  'https://idp.example|carol',
  'agent acting alone',
];
export const TOOLS = [
  'jira.get_issue',
  'jira.search',
  'jira.add_comment',
  'github.get_file',
  'github.create_pr',
  'db.query',
];

/** Entry `i` of a synthetic trail: one in 13 denied, users and tools in rotation; ~330 bytes as JSON. */
export function syntheticEntry(i: number, timeMs: number): AuditEntry {
  const tool = TOOLS[i % TOOLS.length] as string;
  const deny = i % 13 === 7;
  return {
    time: new Date(timeMs).toISOString(),
    kind: 'Decision',
    decision: deny ? 'Deny' : 'Allow',
    pod: 'support-bot-7d9f8c6b5-x2k4q',
    user: USERS[(i >> 3) % USERS.length] as string,
    target: tool.split('.')[0] as string,
    tool,
    policy: 'support-read',
    requestId: `req-${i.toString(36)}-${(i * 2654435761) % 1e9}`,
    reasons: [
      deny
        ? {
            policy: 'support-read',
            rule: 2,
            condition: 'business-hours',
            message: 'ConditionFailed: outside business hours',
          }
        : { policy: 'support-read', rule: 0, message: 'Allowed by rule 0' },
    ],
    ...(deny ? { message: 'ConditionFailed: outside business hours' } : {}),
  };
}
