import { describe, expect, it } from 'vitest';
import type { AgentIdentity } from '../../core/api/index.js';
import { recordName } from '../../core/audit/chain.js';
import { agentLabelValue } from '../../core/audit/labels.js';
import { LABEL_AGENT } from '../../core/constants.js';
import { chainsOf, defaultRetentionInterval, sequenceOf } from './audit-retention.js';

const agent = (name: string, prunedThrough?: string): AgentIdentity =>
  ({
    metadata: { name, namespace: 'ns' },
    spec: { serviceAccountName: name },
    ...(prunedThrough ? { status: { audit: { prunedThrough } } } : {}),
  }) as AgentIdentity;
const item = (labelAgent: string, name: string, created = '2026-11-29T12:00:00Z') => ({
  metadata: { name, labels: { [LABEL_AGENT]: agentLabelValue(labelAgent) }, creationTimestamp: created },
});

describe('sequenceOf', () => {
  it('reads the sequence of a record named for the agent only', () => {
    expect(sequenceOf('bot', recordName('bot', 42))).toBe(42);
    expect(sequenceOf('bot', 'bot-42')).toBeUndefined();
    expect(sequenceOf('bot', recordName('other', 42))).toBeUndefined();
    const long = 'a'.repeat(250);
    expect(sequenceOf(long, recordName(long, 7))).toBe(7);
  });
});

describe('chainsOf', () => {
  it('groups records by agent label and name; anything else counts as unmanaged', () => {
    const digest = 'b'.repeat(64);
    const { chains, unmanaged } = chainsOf(
      [
        item('bot', recordName('bot', 0)),
        item('bot', recordName('bot', 1)),
        item('bot', 'bot-forged-name'),
        item('gone', recordName('gone', 0)),
        item('bot', recordName('bot', 2), 'not a time'),
      ],
      [agent('bot', `0:${digest}`), agent('idle')],
    );
    expect(unmanaged).toBe(3);
    expect(chains).toEqual([
      {
        agent: 'bot',
        previousCut: { sequence: 0, digest },
        records: [
          { name: recordName('bot', 0), sequence: 0, createdMs: Date.parse('2026-11-29T12:00:00Z') },
          { name: recordName('bot', 1), sequence: 1, createdMs: Date.parse('2026-11-29T12:00:00Z') },
        ],
      },
      { agent: 'idle', records: [] },
    ]);
  });
});

describe('defaultRetentionInterval', () => {
  it('looks every 30 s with a size limit, else a tenth of the age between 10 s and 1 h', () => {
    expect(defaultRetentionInterval({ maxRecordsPerAgent: 10, maxAgeMs: 86_400_000 })).toBe(30_000);
    expect(defaultRetentionInterval({ maxAgeMs: 60_000 })).toBe(10_000);
    expect(defaultRetentionInterval({ maxAgeMs: 30 * 86_400_000 })).toBe(3_600_000);
  });
});
