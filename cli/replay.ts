/**
 * `kubectl warden replay`, the pure part: the proposed AccessPolicies applied to the live ones,
 * every recorded decision decided again with the engine the broker uses (the broker's own
 * compileSnapshot → core/policy decide / decideSessionTraffic, no copy), and what would change,
 * grouped. The command (cli/commands/replay.ts) only reads files and objects.
 */
import { parseAllDocuments } from 'yaml';
import { compileSnapshot, type PolicySnapshot } from '../broker/snapshot.js';
import type { AccessPolicy, AgentIdentity, AuditEntry, AuditRecord } from '../core/api/index.js';
import { type ReplaySkip, replayInputOf } from '../core/audit/replay.js';
import { entryUser } from '../core/audit/user.js';
import type { AccessPolicySpecLike, PolicySet } from '../core/policy/index.js';
import { compileAccessPolicy, type Decision, decide, formatCompileError } from '../core/policy/index.js';
import { decideSessionTraffic } from '../core/policy/session.js';
import { formatColumns } from './globals.js';

export interface SourceFile {
  readonly path: string;
  readonly text: string;
}

/** The proposed change: policies added or changed (by namespace/name) and policies deleted. */
export interface Proposal {
  readonly upserts: ReadonlyMap<
    string,
    { readonly namespace: string; readonly name: string; readonly spec: unknown }
  >;
  readonly deletes: ReadonlySet<string>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads the proposed AccessPolicies (`-f`; documents of kind AccessPolicy, or a `kind: List` of
 * them) and the deletions (`--delete name` or `namespace/name`). A policy without a namespace is
 * in `defaultNamespace`. Every problem (unreadable YAML, another kind, a policy that does not
 * compile) is returned with the file and document: a proposal that is not valid is not replayed.
 */
export function parseProposal(
  files: readonly SourceFile[],
  deletes: readonly string[],
  defaultNamespace: string,
): { proposal: Proposal; problems: string[] } {
  const problems: string[] = [];
  const upserts = new Map<string, { namespace: string; name: string; spec: unknown }>();
  const take = (value: unknown, where: string): void => {
    if (!isObject(value)) {
      problems.push(`${where}: expected an AccessPolicy (a mapping with kind: AccessPolicy)`);
      return;
    }
    if (value.kind === 'List' && Array.isArray(value.items)) {
      for (const [i, item] of value.items.entries()) take(item, `${where} items[${i}]`);
      return;
    }
    if (value.kind !== 'AccessPolicy') {
      problems.push(
        `${where}: kind ${String(value.kind)} is not replayed; only AccessPolicy documents (or a List of them) describe a policy change`,
      );
      return;
    }
    const metadata = isObject(value.metadata) ? value.metadata : {};
    const name = typeof metadata.name === 'string' ? metadata.name : '';
    const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : defaultNamespace;
    if (!name) {
      problems.push(`${where}: metadata.name is required`);
      return;
    }
    if (!isObject(value.spec)) {
      problems.push(`${where}: AccessPolicy ${namespace}/${name} has no spec`);
      return;
    }
    const compiled = compileAccessPolicy({
      namespace,
      name,
      spec: value.spec as unknown as AccessPolicySpecLike,
    });
    if (!compiled.ok) {
      for (const e of compiled.errors)
        problems.push(`${where}: ${formatCompileError({ namespace, name }, e)}`);
      return;
    }
    const key = `${namespace}/${name}`;
    if (upserts.has(key)) problems.push(`${where}: AccessPolicy ${key} is proposed twice`);
    upserts.set(key, { namespace, name, spec: value.spec });
  };
  for (const file of files) {
    parseAllDocuments(file.text).forEach((doc, i) => {
      const where = `${file.path} (document ${i + 1})`;
      if (doc.errors.length > 0) {
        problems.push(`${where}: invalid YAML: ${doc.errors[0]?.message.split('\n')[0]}`);
        return;
      }
      const value: unknown = doc.toJS({ maxAliasCount: 50 });
      if (value !== null && value !== undefined) take(value, where);
    });
  }
  const deleted = new Set<string>();
  for (const d of deletes) {
    const key = d.includes('/') ? d : `${defaultNamespace}/${d}`;
    if (upserts.has(key)) problems.push(`--delete ${d}: AccessPolicy ${key} is also proposed in a file`);
    deleted.add(key);
  }
  return { proposal: { upserts, deletes: deleted }, problems };
}

/** One side of a change. */
export interface Verdict {
  readonly decision: 'Allow' | 'Deny';
  readonly reason: string;
  readonly policy: string | null;
  readonly rule: number | null;
  readonly condition: string | null;
  readonly message?: string;
}

export type Direction = 'allow→deny' | 'deny→allow';

export interface ChangeExample {
  readonly time: string;
  readonly namespace: string;
  readonly agent: string;
  readonly requestId?: string;
  readonly what: string;
  readonly user: string;
  readonly before: Verdict;
  readonly after: Verdict;
  readonly approximate: boolean;
}

export interface ChangeGroup {
  readonly direction: Direction;
  /** The rule the change comes from: the one deciding now, else the one that decided before. */
  readonly policy: string;
  readonly what: string;
  readonly user: string;
  readonly count: number;
  /** Of count, changes on entries with withheld values (docs/audit.md). */
  readonly approximate: number;
  readonly examples: readonly ChangeExample[];
}

export interface ReplayReport {
  readonly since: string;
  readonly until: string;
  readonly namespaces: readonly string[];
  readonly agents: readonly string[];
  readonly policies: {
    readonly added: readonly string[];
    readonly changed: readonly string[];
    readonly deleted: readonly string[];
  };
  readonly entries: {
    readonly total: number;
    readonly replayed: number;
    readonly skipped: Readonly<Partial<Record<ReplaySkip | 'agent-gone', number>>>;
  };
  readonly changes: {
    readonly total: number;
    readonly allowToDeny: number;
    readonly denyToAllow: number;
    readonly approximate: number;
  };
  /** Replayed entries the live policies (without the proposal) already decide differently than recorded. */
  readonly drift: number;
  readonly groups: readonly ChangeGroup[];
  /** Deleted policies that do not exist (nothing to delete: a typo?). */
  readonly warnings: readonly string[];
}

export interface ReplayInputs {
  readonly records: readonly AuditRecord[];
  readonly agents: readonly AgentIdentity[];
  /** The live AccessPolicies of the namespaces replayed. */
  readonly policies: readonly AccessPolicy[];
  readonly proposal: Proposal;
  /** Only these agents (empty = every agent with records). */
  readonly agentNames: readonly string[];
  readonly sinceMs: number;
  readonly now: Date;
  /** Examples kept per group. */
  readonly examplesPerGroup?: number;
}

const EXAMPLES = 3;

/** Policies of one namespace as the broker's snapshot carries them. */
function snapshotPolicies(items: readonly { name: string; spec: unknown }[]): PolicySnapshot['policies'] {
  return [...items].sort((a, b) => a.name.localeCompare(b.name)).map((p) => ({ name: p.name, spec: p.spec }));
}

/**
 * The agent's policy set exactly as its broker would build it (compileSnapshot: a Deny policy that
 * does not compile denies everything; a broken Allow policy is skipped). The agent is taken as not
 * suspended: replay measures policy, not the kill switch.
 */
function policySet(
  namespace: string,
  agent: AgentIdentity,
  policies: PolicySnapshot['policies'],
): { ok: true; set: PolicySet } | { ok: false; message: string } {
  const snapshot: PolicySnapshot = {
    version: 'replay',
    namespace,
    agent: {
      name: agent.metadata?.name ?? '',
      labels: (agent.metadata?.labels ?? {}) as Record<string, string>,
      ...(agent.spec?.serviceAccountName ? { serviceAccountName: agent.spec.serviceAccountName } : {}),
      suspended: false,
      auditMode: 'BestEffort',
    },
    policies,
    invalidPolicies: [],
  };
  const c = compileSnapshot(snapshot);
  return c.ok ? { ok: true, set: c.snapshot.set } : { ok: false, message: c.message };
}

function what(e: AuditEntry, kind: string): string {
  if (kind === 'session') return `${e.target ?? ''} (MCP session traffic)`;
  if (kind === 'postgresql') return `${e.target ?? ''} (PostgreSQL session)`;
  if (kind === 'http') return `${e.target ?? ''} ${e.method ?? ''} ${e.path ?? ''}`;
  return e.tool ?? '';
}

function verdictOf(d: Decision): Verdict {
  return {
    decision: d.decision,
    reason: d.reason,
    policy: d.policy,
    rule: d.rule,
    condition: d.condition,
    message: d.message,
  };
}

function recordedVerdict(e: AuditEntry, recorded: { decision: 'Allow' | 'Deny'; reason: string }): Verdict {
  const r = e.reasons?.[0];
  return {
    decision: recorded.decision,
    reason: recorded.reason,
    policy: e.policy ?? r?.policy ?? null,
    rule: r?.rule ?? null,
    condition: r?.condition ?? null,
  };
}

function ruleName(v: Verdict): string | null {
  if (!v.policy) return null;
  return v.rule !== null ? `${v.policy} rule ${v.rule}` : v.policy;
}

function deciding(before: Verdict, after: Verdict): string {
  const now = ruleName(after);
  if (now) return after.condition && after.reason === 'ConditionFailed' ? `${now} (${after.condition})` : now;
  const was = ruleName(before);
  if (was) return `${was} (no longer ${before.decision === 'Allow' ? 'allows' : 'denies'})`;
  return after.reason;
}

/** Re-decides every recorded decision in scope against the live policies with the proposal applied. */
export function replayTrail(inputs: ReplayInputs): ReplayReport {
  const { proposal } = inputs;
  const wanted = new Set(inputs.agentNames);
  const agentsByKey = new Map(inputs.agents.map((a) => [`${a.metadata?.namespace}/${a.metadata?.name}`, a]));
  const live = new Map<string, Map<string, { name: string; spec: unknown }>>();
  for (const p of inputs.policies) {
    const ns = p.metadata?.namespace ?? '';
    const name = p.metadata?.name ?? '';
    if (!live.has(ns)) live.set(ns, new Map());
    live.get(ns)?.set(name, { name, spec: p.spec });
  }
  const added: string[] = [];
  const changed: string[] = [];
  const deleted: string[] = [];
  const warnings: string[] = [];
  for (const [key, p] of proposal.upserts) (live.get(p.namespace)?.has(p.name) ? changed : added).push(key);
  for (const key of proposal.deletes) {
    const [ns = '', name = ''] = key.split('/');
    if (live.get(ns)?.has(name)) deleted.push(key);
    else warnings.push(`--delete ${key}: no such AccessPolicy; nothing deleted`);
  }
  const proposedOf = (ns: string) => {
    const m = new Map(live.get(ns) ?? []);
    for (const key of proposal.deletes) if (key.startsWith(`${ns}/`)) m.delete(key.slice(ns.length + 1));
    for (const p of proposal.upserts.values())
      if (p.namespace === ns) m.set(p.name, { name: p.name, spec: p.spec });
    return snapshotPolicies([...m.values()]);
  };

  type Sets = { current: ReturnType<typeof policySet>; proposed: ReturnType<typeof policySet> } | null;
  const sets = new Map<string, Sets>();
  const setsFor = (ns: string, agentName: string): Sets => {
    const key = `${ns}/${agentName}`;
    if (!sets.has(key)) {
      const agent = agentsByKey.get(key);
      sets.set(
        key,
        agent
          ? {
              current: policySet(ns, agent, snapshotPolicies([...(live.get(ns)?.values() ?? [])])),
              proposed: policySet(ns, agent, proposedOf(ns)),
            }
          : null,
      );
    }
    return sets.get(key) ?? null;
  };
  const decideWith = (
    s: ReturnType<typeof policySet>,
    kind: string,
    input: Parameters<typeof decide>[1],
  ): Verdict => {
    if (!s.ok) {
      return {
        decision: 'Deny',
        reason: 'PolicySnapshotInvalid',
        policy: null,
        rule: null,
        condition: null,
        message: s.message,
      };
    }
    const d = kind === 'session' ? decideSessionTraffic(s.set, input) : decide(s.set, input);
    return verdictOf(d);
  };

  let total = 0;
  let replayed = 0;
  let drift = 0;
  const skipped: Partial<Record<ReplaySkip | 'agent-gone', number>> = {};
  const groups = new Map<
    string,
    {
      group: Omit<ChangeGroup, 'examples' | 'count' | 'approximate'>;
      count: number;
      approximate: number;
      examples: ChangeExample[];
    }
  >();
  const namespaces = new Set<string>();
  const agentsSeen = new Set<string>();
  const perGroup = inputs.examplesPerGroup ?? EXAMPLES;

  for (const record of inputs.records) {
    const ns = record.metadata?.namespace ?? '';
    const agentName = record.spec.agent;
    if (wanted.size > 0 && !wanted.has(agentName)) continue;
    if (Date.parse(record.spec.endTime) < inputs.sinceMs) continue;
    for (const entry of record.spec.entries) {
      const t = Date.parse(entry.time);
      if (!(t >= inputs.sinceMs) || t > inputs.now.getTime()) continue;
      total++;
      namespaces.add(ns);
      agentsSeen.add(`${ns}/${agentName}`);
      const back = replayInputOf(entry);
      if (!back.ok) {
        skipped[back.skip] = (skipped[back.skip] ?? 0) + 1;
        continue;
      }
      const s = setsFor(ns, agentName);
      if (!s) {
        skipped['agent-gone'] = (skipped['agent-gone'] ?? 0) + 1;
        continue;
      }
      replayed++;
      const current = decideWith(s.current, back.kind, back.input);
      const after = decideWith(s.proposed, back.kind, back.input);
      if (current.decision !== back.recorded.decision) drift++;
      if (after.decision === back.recorded.decision) continue;
      const before = recordedVerdict(entry, back.recorded);
      const direction: Direction = before.decision === 'Allow' ? 'allow→deny' : 'deny→allow';
      const w = what(entry, back.kind);
      const user = entryUser(entry).user;
      const policy = deciding(before, after);
      const key = JSON.stringify([direction, policy, w, user]);
      let g = groups.get(key);
      if (!g) {
        g = { group: { direction, policy, what: w, user }, count: 0, approximate: 0, examples: [] };
        groups.set(key, g);
      }
      g.count++;
      if (back.approximate) g.approximate++;
      if (g.examples.length < perGroup) {
        g.examples.push({
          time: entry.time,
          namespace: ns,
          agent: agentName,
          ...(entry.requestId ? { requestId: entry.requestId } : {}),
          what: w,
          user,
          before,
          after,
          approximate: back.approximate,
        });
      }
    }
  }
  const list: ChangeGroup[] = [...groups.values()]
    .map((g) => ({ ...g.group, count: g.count, approximate: g.approximate, examples: g.examples }))
    .sort(
      (a, b) =>
        b.count - a.count || a.direction.localeCompare(b.direction) || a.policy.localeCompare(b.policy),
    );
  const sum = (d: Direction) => list.filter((g) => g.direction === d).reduce((n, g) => n + g.count, 0);
  const allowToDeny = sum('allow→deny');
  const denyToAllow = sum('deny→allow');
  return {
    since: new Date(inputs.sinceMs).toISOString(),
    until: inputs.now.toISOString(),
    namespaces: [...namespaces].sort(),
    agents: [...agentsSeen].sort(),
    policies: { added: added.sort(), changed: changed.sort(), deleted: deleted.sort() },
    entries: { total, replayed, skipped },
    changes: {
      total: allowToDeny + denyToAllow,
      allowToDeny,
      denyToAllow,
      approximate: list.reduce((n, g) => n + g.approximate, 0),
    },
    drift,
    groups: list,
    warnings,
  };
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** The human report. */
export function formatReplay(r: ReplayReport): string {
  const lines: string[] = [];
  const p = r.policies;
  const change = [
    p.added.length ? `added ${p.added.join(', ')}` : '',
    p.changed.length ? `changed ${p.changed.join(', ')}` : '',
    p.deleted.length ? `deleted ${p.deleted.join(', ')}` : '',
  ].filter(Boolean);
  lines.push(`Proposed: ${change.length ? change.join('; ') : 'no change to any AccessPolicy'}`);
  for (const w of r.warnings) lines.push(`Warning: ${w}`);
  const skippedTotal = Object.values(r.entries.skipped).reduce((n, v) => n + (v ?? 0), 0);
  lines.push(
    `Replayed ${r.entries.replayed} of ${r.entries.total} audit entries of ${r.agents.length} ${r.agents.length === 1 ? 'agent' : 'agents'} (${r.agents.join(', ') || 'none'}) from ${r.since} to ${r.until}.`,
  );
  if (skippedTotal > 0) {
    const why = Object.entries(r.entries.skipped)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    lines.push(`Skipped ${skippedTotal}: ${why} (docs/audit.md says which entries carry replay data).`);
  }
  if (r.drift > 0)
    lines.push(
      `Note: ${r.drift} replayed ${r.drift === 1 ? 'decision is' : 'decisions are'} already decided differently by the live policies (changed since recorded); the changes below compare with what was recorded.`,
    );
  const approx = r.changes.approximate ? ` (${r.changes.approximate} approximate: withheld values)` : '';
  lines.push(
    `Would change: ${r.changes.total} — allow→deny ${r.changes.allowToDeny}, deny→allow ${r.changes.denyToAllow}${approx}.`,
  );
  if (r.groups.length === 0) return lines.join('\n');
  lines.push('');
  lines.push(
    formatColumns(
      ['CHANGE', 'COUNT', 'TOOL/REQUEST', 'USER', 'POLICY/RULE'],
      r.groups.map((g) => [
        g.direction,
        g.approximate ? `${g.count} (~${g.approximate})` : String(g.count),
        clip(g.what, 48),
        clip(g.user, 32),
        g.policy,
      ]),
    ),
  );
  lines.push('');
  lines.push('Examples:');
  for (const g of r.groups) {
    for (const e of g.examples) {
      const id = e.requestId ? ` request ${e.requestId}` : '';
      lines.push(
        `  ${e.time} ${e.namespace}/${e.agent}${id}: ${e.what} for ${e.user || 'agent acting alone'}: ${e.before.decision} (${e.before.reason}) → ${e.after.decision} (${e.after.reason})${e.approximate ? ' [approximate]' : ''}`,
      );
      if (e.after.message) lines.push(`    ${clip(e.after.message, 200)}`);
    }
  }
  return lines.join('\n');
}
