import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { USAGE_FIELD_MANAGER } from '../core/constants.js';
import type { KubeApi } from '../kube/kube.js';
import { ApiStatusWriter } from '../kube/status.js';
import { createToolCallMetrics } from '../observability/tool-call-metrics.js';
import type { BrokerEvent } from './audit-endpoint.js';
import {
  accumulateUsage,
  MAX_PENDING_TOOLS,
  type PendingUsage,
  ToolUsageStats,
  usagePatch,
} from './tool-usage-stats.js';

const T = '2026-12-04T12:00:00.000Z';
const ev = (
  tool: string | undefined,
  decision: 'Allow' | 'Deny' = 'Allow',
  kind: 'Decision' | 'Credential' = 'Decision',
): BrokerEvent => ({
  entry: { time: T, kind, decision, target: 'jira', ...(tool ? { tool } : {}) },
});
const empty = (): PendingUsage => ({ tools: new Map(), other: { calls: 0, denied: 0 } });

describe('accumulateUsage', () => {
  it('counts tool calls per tool, denials included; other events are not tool calls', () => {
    const p = accumulateUsage(empty(), [
      ev('a'),
      ev('a', 'Deny'),
      ev('b'),
      ev(undefined),
      ev('a', 'Allow', 'Credential'),
    ]);
    expect(Object.fromEntries(p.tools)).toEqual({ a: { calls: 2, denied: 1 }, b: { calls: 1, denied: 0 } });
  });

  it('keeps at most MAX_PENDING_TOOLS names in memory, the rest as other', () => {
    const events = Array.from({ length: MAX_PENDING_TOOLS + 5 }, (_, i) =>
      ev(`t${i}`, i % 2 ? 'Deny' : 'Allow'),
    );
    const p = accumulateUsage(empty(), events);
    expect(p.tools.size).toBe(MAX_PENDING_TOOLS);
    expect(p.other.calls).toBe(5);
  });
});

describe('usagePatch', () => {
  it('adds to the current counters and keeps the busiest tools, the rest summed as other', () => {
    const current = {
      since: '2026-12-01T00:00:00.000Z',
      tools: [
        { name: 'a', calls: 10, denied: 1 },
        { name: 'b', calls: 5 },
      ],
      otherTools: { calls: 3, denied: 3 },
    };
    const p = accumulateUsage(empty(), [ev('b'), ev('c', 'Deny'), ev('c', 'Deny')]);
    expect(usagePatch(current, p, T, 2)).toEqual({
      since: '2026-12-01T00:00:00.000Z',
      tools: [
        { name: 'a', calls: 10, denied: 1 },
        { name: 'b', calls: 6, denied: 0 },
      ],
      otherTools: { calls: 5, denied: 5 },
    });
  });

  it('starts the counters at the first write', () => {
    expect(usagePatch(undefined, accumulateUsage(empty(), [ev('a')]), T)).toEqual({
      since: T,
      tools: [{ name: 'a', calls: 1, denied: 0 }],
    });
  });

  it('never names more than the top tools, however many are called', () => {
    const events = Array.from({ length: 50 }, (_, i) => ev(`t${i % 25}`));
    const u = usagePatch(undefined, accumulateUsage(empty(), events), T);
    expect(u.tools).toHaveLength(10);
    expect(u.otherTools).toEqual({ calls: 30, denied: 0 });
  });
});

describe('ToolUsageStats with --metrics-tool-calls', () => {
  it('counts each tool call of the batch in warden_tool_calls_total', async () => {
    const registry = new Registry();
    // No status write happens here (nothing is flushed), so the API is never called.
    const stats = new ToolUsageStats({
      api: {} as KubeApi,
      status: new ApiStatusWriter({} as KubeApi, USAGE_FIELD_MANAGER),
      log: pino({ level: 'silent' }),
      metrics: createToolCallMetrics(registry),
    });
    const who = { namespace: 'agents', agent: 'bot', pod: 'bot-0', podUID: 'u', session: 's' };
    stats.recordBrokerEvents(who, [ev('jira.search'), ev('jira.search', 'Deny'), ev(undefined)]);
    const text = await registry.metrics();
    expect(text).toContain(
      'warden_tool_calls_total{namespace="agents",agent="bot",tool="jira.search",decision="allow"} 1',
    );
    expect(text).toContain(
      'warden_tool_calls_total{namespace="agents",agent="bot",tool="jira.search",decision="deny"} 1',
    );
  });
});
