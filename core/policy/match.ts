import type { CompiledPolicy, CompiledRule } from './compiled.js';
import type { RequestKind } from './types.js';

/** The agent a policy set is built for. */
export interface PolicySetAgent {
  readonly name: string;
  readonly namespace: string;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly serviceAccount?: string | undefined;
  /** The kill switch (AgentIdentity spec.suspended). */
  readonly suspended?: boolean | undefined;
  readonly suspendReason?: string | undefined;
}

/** Why a policy does not select an agent, or null when it does. */
export function selectorMismatch(policy: CompiledPolicy, agent: PolicySetAgent): string | null {
  if (policy.namespace !== agent.namespace) {
    return `policy is in namespace '${policy.namespace}', the agent in '${agent.namespace}'`;
  }
  const { names, matchLabels } = policy.selector;
  if (names && !names.has(agent.name)) return `agentSelector.names does not include '${agent.name}'`;
  for (const [key, value] of matchLabels) {
    const actual = agent.labels?.[key];
    if (actual !== value) {
      return actual === undefined
        ? `agentSelector.matchLabels requires ${key}=${value}; the agent has no label '${key}'`
        : `agentSelector.matchLabels requires ${key}=${value}; the agent has ${key}=${actual}`;
    }
  }
  return null;
}

export function ruleTargets(rule: CompiledRule, target: string): boolean {
  return rule.targets.includes(target) || rule.targets.includes('*');
}

/** The request fields the rule matcher needs. */
export interface RequestShape {
  readonly kind: RequestKind;
  readonly tool?: string | undefined;
  readonly method?: string | undefined;
  readonly path?: string | undefined;
}

/**
 * Does the rule apply to this request (target already matched)? MCP requests
 * match `tools`, HTTP requests match `http`; a rule with neither applies to
 * every request to its targets; a rule with only the other kind does not apply.
 */
export function ruleAppliesTo(rule: CompiledRule, req: RequestShape): boolean {
  const { toolMatchers, http } = rule;
  if (!toolMatchers && !http) return true;
  if (req.kind === 'mcp') {
    const tool = req.tool;
    if (!toolMatchers || tool === undefined) return false;
    for (const m of toolMatchers) if (m(tool)) return true;
    return false;
  }
  if (req.kind === 'http') {
    if (!http) return false;
    if (http.methods && !http.methods.has((req.method ?? '').toUpperCase())) return false;
    if (!http.pathMatchers) return true;
    const path = req.path ?? '';
    for (const m of http.pathMatchers) if (m(path)) return true;
    return false;
  }
  return false;
}

/** Why a rule does not apply to a request, or null when it does (for explain; mirrors ruleAppliesTo). */
export function requestMismatch(rule: CompiledRule, req: RequestShape): string | null {
  const { toolMatchers, http } = rule;
  if (!toolMatchers && !http) return null;
  if (req.kind === 'mcp') {
    if (!toolMatchers) return 'rule lists only http methods/paths; this is an MCP tool call';
    const tool = req.tool;
    if (tool === undefined) return 'request has no tool name';
    for (const m of toolMatchers) if (m(tool)) return null;
    return `tool '${tool}' matches none of ${JSON.stringify(rule.tools)}`;
  }
  if (req.kind === 'http') {
    if (!http) return 'rule lists only MCP tools; this is an HTTP request';
    const method = (req.method ?? '').toUpperCase();
    if (http.methods && !http.methods.has(method))
      return `method '${method}' is not in ${JSON.stringify([...http.methods])}`;
    if (http.pathMatchers) {
      const path = req.path ?? '';
      for (const m of http.pathMatchers) if (m(path)) return null;
      return `path '${path}' matches none of ${JSON.stringify(http.paths)}`;
    }
    return null;
  }
  return `rule lists tools/http; a ${req.kind} request matches only rules without them`;
}
