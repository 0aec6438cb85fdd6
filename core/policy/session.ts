/**
 * The one rule for MCP traffic that names no tool, shared by the broker (local decision)
 * and the authority (central decision before minting), so the two cannot disagree.
 */

import type { PolicySet } from './policy-set.js';
import { rulesFor } from './policy-set.js';
import type { Decision } from './types.js';

/**
 * MCP protocol traffic that names no tool (initialize, tools/list, notifications) still
 * needs the upstream credential. It is allowed when some Allow rule could serve MCP
 * requests to the target — every tools/call is still decided per tool — and denied when
 * the agent is suspended or an unconditional Deny rule covers the whole target (e.g. a
 * namespace-wide stop).
 */
export function decideSessionTraffic(set: PolicySet, target: string): Decision {
  const base = { evaluationMicros: 0, condition: null } as const;
  if (set.agent.suspended) {
    return {
      ...base,
      decision: 'Deny',
      policy: null,
      rule: null,
      reason: 'AgentSuspended',
      message: 'the agent is suspended',
    };
  }
  for (const ref of rulesFor(set.deny, target)) {
    const r = ref.rule;
    if (!r.toolMatchers && !r.http && r.conditions.length === 0) {
      return {
        ...base,
        decision: 'Deny',
        policy: ref.policy.id,
        rule: r.index,
        reason: 'DeniedByPolicy',
        message: `AccessPolicy ${ref.policy.id} rule ${r.index} denies every request to ${target}`,
      };
    }
  }
  for (const ref of rulesFor(set.allow, target)) {
    const r = ref.rule;
    if (r.toolMatchers || !r.http) {
      return {
        ...base,
        decision: 'Allow',
        policy: ref.policy.id,
        rule: r.index,
        reason: 'Allowed',
        message: `MCP protocol traffic to ${target} (no tool named) allowed: AccessPolicy ${ref.policy.id} rule ${r.index} serves MCP requests to it`,
      };
    }
  }
  return {
    ...base,
    decision: 'Deny',
    policy: null,
    rule: null,
    reason: 'NoMatchingAllow',
    message: `no AccessPolicy allows MCP requests to ${target} for this agent`,
  };
}
