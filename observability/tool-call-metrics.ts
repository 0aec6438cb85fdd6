/**
 * Optional Prometheus series per agent and MCP tool (`warden controller --metrics-tool-calls`):
 * warden_tool_calls_total{namespace, agent, tool, decision}. Off by default: agent and tool names
 * are labels here, which docs/metrics.md otherwise avoids. The cardinality is bounded: at most
 * `maxAgents` namespace/agent pairs (later ones are counted as namespace="other", agent="other")
 * and `maxToolsPerAgent` tool names per agent (later ones as tool="other"), each with decision
 * allow|deny — at most maxAgents × (maxToolsPerAgent + 1) × 2 series, plus the "other" agent's.
 * Names are admitted first come, first kept for the life of the process.
 */
import { Counter, type Registry } from 'prom-client';

export interface ToolCallMetricsLimits {
  readonly maxAgents: number;
  readonly maxToolsPerAgent: number;
}

export const DEFAULT_TOOL_CALL_LIMITS: ToolCallMetricsLimits = { maxAgents: 200, maxToolsPerAgent: 20 };

export const OTHER = 'other';

export interface ToolCallMetrics {
  /** One MCP tool call decided by a broker of this agent. */
  toolCall(namespace: string, agent: string, tool: string, decision: 'Allow' | 'Deny'): void;
}

export function createToolCallMetrics(
  registry: Registry,
  limits: ToolCallMetricsLimits = DEFAULT_TOOL_CALL_LIMITS,
): ToolCallMetrics {
  const calls = new Counter({
    name: 'warden_tool_calls_total',
    help: 'MCP tool calls decided, per agent and tool (opt-in: --metrics-tool-calls; bounded, see docs/metrics.md).',
    labelNames: ['namespace', 'agent', 'tool', 'decision'] as const,
    registers: [registry],
  });
  const tools = new Map<string, Set<string>>();
  return {
    toolCall(namespace, agent, tool, decision) {
      const key = `${namespace}/${agent}`;
      let known = tools.get(key);
      if (!known && tools.size < limits.maxAgents) {
        known = new Set();
        tools.set(key, known);
      }
      const labels = known
        ? { namespace, agent, tool: known.has(tool) || known.size < limits.maxToolsPerAgent ? tool : OTHER }
        : { namespace: OTHER, agent: OTHER, tool: OTHER };
      if (known && labels.tool !== OTHER) known.add(tool);
      calls.inc({ ...labels, decision: decision === 'Allow' ? 'allow' : 'deny' });
    },
  };
}
