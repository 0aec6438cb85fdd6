import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createToolCallMetrics } from './tool-call-metrics.js';

async function series(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((l) => l.startsWith('warden_tool_calls_total{'));
}

describe('warden_tool_calls_total', () => {
  it('counts calls per agent, tool and decision', async () => {
    const registry = new Registry();
    const m = createToolCallMetrics(registry);
    m.toolCall('agents', 'support-bot', 'jira.get_issue', 'Allow');
    m.toolCall('agents', 'support-bot', 'jira.get_issue', 'Allow');
    m.toolCall('agents', 'support-bot', 'jira.delete_issue', 'Deny');
    expect(await series(registry)).toEqual([
      'warden_tool_calls_total{namespace="agents",agent="support-bot",tool="jira.get_issue",decision="allow"} 2',
      'warden_tool_calls_total{namespace="agents",agent="support-bot",tool="jira.delete_issue",decision="deny"} 1',
    ]);
  });

  it('bounds the tools per agent and the agents: later names are counted as other', async () => {
    const registry = new Registry();
    const m = createToolCallMetrics(registry, { maxAgents: 2, maxToolsPerAgent: 3 });
    for (const agent of ['a', 'b', 'c', 'd'])
      for (let t = 0; t < 10; t++) m.toolCall('ns', agent, `tool-${t}`, 'Allow');
    // A tool admitted before the limit keeps its own series.
    m.toolCall('ns', 'a', 'tool-0', 'Allow');
    const lines = await series(registry);
    expect(lines).toHaveLength(2 * 4 + 1);
    expect(lines).toContain(
      'warden_tool_calls_total{namespace="ns",agent="a",tool="tool-0",decision="allow"} 2',
    );
    expect(lines).toContain(
      'warden_tool_calls_total{namespace="ns",agent="a",tool="other",decision="allow"} 7',
    );
    expect(lines).toContain(
      'warden_tool_calls_total{namespace="other",agent="other",tool="other",decision="allow"} 20',
    );
  });
});
