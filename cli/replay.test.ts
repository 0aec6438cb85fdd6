import { describe, expect, it } from 'vitest';
import type { AccessPolicy, AgentIdentity, AuditEntry, AuditRecord } from '../core/api/index.js';
import { recordReplay } from '../core/audit/replay.js';
import { formatReplay, parseProposal, replayTrail } from './replay.js';

const NS = 'agents';
const NOW = new Date('2026-12-04T12:00:00Z');
const SINCE = NOW.getTime() - 3_600_000;

function policy(name: string, spec: Record<string, unknown>, ns = NS): AccessPolicy {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name, namespace: ns },
    spec: spec as unknown as AccessPolicy['spec'],
  };
}

function agent(name: string, labels: Record<string, string> = {}): AgentIdentity {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name, namespace: NS, labels },
    spec: { serviceAccountName: name },
  };
}

const tools = policy('jira-tools', { rules: [{ targets: ['jira'], tools: ['jira.*'] }] });
const noDelete = policy('no-delete', { effect: 'Deny', rules: [{ targets: ['*'], tools: ['*.delete_*'] }] });

/** A Decision entry as the broker records it, at minute `m` before NOW. */
function call(
  m: number,
  tool: string,
  decision: 'Allow' | 'Deny',
  extra: { args?: Record<string, unknown>; user?: { sub: string; groups?: string[] }; reason?: string } = {},
): AuditEntry {
  return {
    time: new Date(NOW.getTime() - m * 60_000).toISOString(),
    kind: 'Decision',
    decision,
    user: extra.user?.sub ?? 'agent acting alone',
    target: 'jira',
    tool,
    requestId: `r-${tool}-${m}`,
    policy: decision === 'Allow' ? `${NS}/jira-tools` : `${NS}/no-delete`,
    replay: recordReplay(
      { kind: 'mcp', args: extra.args ?? {}, user: extra.user ?? null },
      { decision, reason: extra.reason ?? (decision === 'Allow' ? 'Allowed' : 'DeniedByPolicy') },
    ),
  };
}

function record(agentName: string, entries: AuditEntry[], seq = 0): AuditRecord {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AuditRecord',
    metadata: { name: `${agentName}-${seq}`, namespace: NS },
    spec: {
      agent: agentName,
      sequence: seq,
      previousDigest: seq === 0 ? '' : 'a'.repeat(64),
      digest: 'b'.repeat(64),
      startTime: entries[0]?.time ?? NOW.toISOString(),
      endTime: entries.at(-1)?.time ?? NOW.toISOString(),
      entries,
    },
  };
}

const trail = [
  record('bot', [
    // Older than the window: not replayed.
    call(120, 'jira.search', 'Allow'),
    call(50, 'jira.get_issue', 'Allow'),
    call(40, 'jira.search', 'Allow', { args: { q: 'printer' } }),
    call(30, 'jira.search', 'Allow', { args: { q: 'fire', password: 'hunter2' } }),
    call(20, 'jira.delete_issue', 'Deny'),
    {
      time: new Date(NOW.getTime() - 15 * 60_000).toISOString(),
      kind: 'Decision',
      decision: 'Allow',
      target: 'jira',
      tool: 'jira.get_issue',
    },
    {
      time: new Date(NOW.getTime() - 14 * 60_000).toISOString(),
      kind: 'Credential',
      decision: 'Allow',
      target: 'jira',
    },
    call(10, 'jira.search', 'Deny', { reason: 'InputTooLarge' }),
  ]),
];

function run(
  files: { path: string; text: string }[],
  deletes: string[] = [],
  o: { agents?: AgentIdentity[]; policies?: AccessPolicy[]; only?: string[] } = {},
) {
  const { proposal, problems } = parseProposal(files, deletes, NS);
  expect(problems).toEqual([]);
  return replayTrail({
    records: trail,
    agents: o.agents ?? [agent('bot')],
    policies: o.policies ?? [tools, noDelete],
    proposal,
    agentNames: o.only ?? [],
    sinceMs: SINCE,
    now: NOW,
  });
}

const stricter = {
  path: 'stricter.yaml',
  text: `apiVersion: warden.dev/v1alpha1
kind: AccessPolicy
metadata: {name: jira-tools}
spec:
  rules:
    - targets: [jira]
      tools: ["jira.get_*"]
`,
};

describe('replayTrail', () => {
  it('reports the calls a stricter policy would deny, grouped, with approximate ones marked', () => {
    const r = run([stricter]);
    expect(r.policies).toEqual({ added: [], changed: [`${NS}/jira-tools`], deleted: [] });
    expect(r.entries).toEqual({
      total: 7,
      replayed: 4,
      skipped: { 'no-replay-data': 1, 'not-a-policy-decision': 1, 'input-not-reproducible': 1 },
    });
    expect(r.changes).toEqual({ total: 2, allowToDeny: 2, denyToAllow: 0, approximate: 1 });
    expect(r.drift).toBe(0);
    expect(r.groups).toHaveLength(1);
    const g = r.groups[0];
    expect(g).toMatchObject({
      direction: 'allow→deny',
      what: 'jira.search',
      user: 'agent acting alone',
      count: 2,
      approximate: 1,
      policy: `${NS}/jira-tools (no longer allows)`,
    });
    expect(g?.examples[0]?.after).toMatchObject({ decision: 'Deny', reason: 'NoMatchingAllow' });
    expect(g?.examples[0]?.before).toMatchObject({
      decision: 'Allow',
      reason: 'Allowed',
      policy: `${NS}/jira-tools`,
    });
  });

  it('reports denials a deletion lifts, naming the deciding rule now', () => {
    const r = run([], ['no-delete']);
    expect(r.policies.deleted).toEqual([`${NS}/no-delete`]);
    expect(r.changes).toMatchObject({ allowToDeny: 0, denyToAllow: 1 });
    expect(r.groups[0]).toMatchObject({
      direction: 'deny→allow',
      what: 'jira.delete_issue',
      policy: `${NS}/jira-tools rule 0`,
    });
  });

  it('an added Deny policy names its rule', () => {
    const r = run([
      {
        path: 'add.yaml',
        text: `kind: List
items:
  - apiVersion: warden.dev/v1alpha1
    kind: AccessPolicy
    metadata: {name: no-search, namespace: ${NS}}
    spec:
      effect: Deny
      rules: [{targets: [jira], tools: [jira.search], when: [{name: has-query, expression: "has(request.args.q)"}]}]
`,
      },
    ]);
    expect(r.policies.added).toEqual([`${NS}/no-search`]);
    // Only the two calls with a q argument are denied; the call without one still holds no q.
    expect(r.changes.allowToDeny).toBe(2);
    expect(r.groups[0]?.policy).toBe(`${NS}/no-search rule 0`);
  });

  it('changes nothing for an identical proposal, and says when the live policies drifted', () => {
    expect(run([], [], {}).changes.total).toBe(0);
    const drifted = run([], [], { policies: [noDelete] });
    expect(drifted.drift).toBe(3);
    expect(drifted.changes.allowToDeny).toBe(3);
  });

  it('selects the agents asked for and counts entries of a deleted AgentIdentity', () => {
    expect(run([stricter], [], { only: ['other'] }).entries.total).toBe(0);
    expect(run([stricter], [], { agents: [] }).entries.skipped['agent-gone']).toBe(4);
  });

  it('a Deny policy that does not compile in the live set denies everything, as in the broker', () => {
    const broken = policy('broken', {
      effect: 'Deny',
      rules: [{ targets: ['*'], when: [{ name: 'x', expression: 'nope(' }] }],
    });
    const r = run([], [], { policies: [tools, noDelete, broken] });
    expect(r.drift).toBe(3);
    expect(r.groups[0]?.examples[0]?.after.reason).toBe('PolicySnapshotInvalid');
  });

  it('prints a readable report', () => {
    const text = formatReplay(run([stricter]));
    expect(text).toContain(`Proposed: changed ${NS}/jira-tools`);
    expect(text).toContain('Replayed 4 of 7 audit entries of 1 agent');
    expect(text).toContain('Skipped 3: 1 no-replay-data, 1 not-a-policy-decision, 1 input-not-reproducible');
    expect(text).toContain('Would change: 2 — allow→deny 2, deny→allow 0 (1 approximate: withheld values).');
    expect(text).toMatch(/allow→deny\s+2 \(~1\)\s+jira\.search\s+agent acting alone/);
    expect(text).toContain('[approximate]');
  });
});

describe('parseProposal', () => {
  it.each([
    ['invalid YAML', 'kind: [', /invalid YAML/],
    ['another kind', 'kind: AgentIdentity\nmetadata: {name: x}', /kind AgentIdentity is not replayed/],
    ['no name', 'kind: AccessPolicy\nspec: {rules: []}', /metadata.name is required/],
    ['no spec', 'kind: AccessPolicy\nmetadata: {name: x}', /has no spec/],
    [
      'a policy that does not compile',
      'kind: AccessPolicy\nmetadata: {name: x}\nspec: {rules: [{targets: [a], when: [{name: c, expression: "usr.present"}]}]}',
      /spec\.rules\[0\]\.when\[0\]/,
    ],
  ])('refuses %s, naming the file and document', (_n, text, message) => {
    const { problems } = parseProposal([{ path: 'p.yaml', text }], [], NS);
    expect(problems[0]).toMatch(/^p\.yaml \(document 1\)/);
    expect(problems[0]).toMatch(message);
  });

  it('refuses a policy both changed and deleted', () => {
    const { problems } = parseProposal([stricter], ['jira-tools'], NS);
    expect(problems).toEqual([
      `--delete jira-tools: AccessPolicy ${NS}/jira-tools is also proposed in a file`,
    ]);
  });

  it('warns about deleting a policy that does not exist', () => {
    expect(run([], ['nothing-here']).warnings).toEqual([
      `--delete ${NS}/nothing-here: no such AccessPolicy; nothing deleted`,
    ]);
  });
});
