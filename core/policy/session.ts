/**
 * The one rule for MCP traffic that names no tool, shared by the broker (local decision), the
 * authority (central decision before minting) and replay, so the three cannot disagree.
 */

import { decide } from './decide.js';
import type { PolicySet } from './policy-set.js';
import type { Decision, PolicyInput } from './types.js';

/**
 * MCP protocol traffic that names no tool (initialize, tools/list, notifications, a GET stream)
 * still needs the upstream credential, and that credential is the deciding rule's
 * (`credentialFor`). So it is decided by decide() itself, with the agent, user, context and chain
 * of the request and a request of kind "mcp" without tool or arguments: allowed by the first Allow
 * rule serving MCP requests to the target whose `when` holds for that input — never by a rule whose
 * conditions do not hold (its credential scopes are not this caller's). Denied when the agent is
 * suspended, when a Deny rule covering the whole target holds (or cannot be evaluated), and when no
 * serving rule's conditions hold (ConditionFailed / EvaluationError naming the condition, or
 * NoMatchingAllow). Every tools/call is still decided per tool.
 */
export function decideSessionTraffic(set: PolicySet, input: PolicyInput): Decision {
  const { target, time, chain } = input.request;
  return decide(set, { ...input, request: { kind: 'mcp', target, time, ...(chain ? { chain } : {}) } });
}
