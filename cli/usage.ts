/**
 * `kubectl warden usage`, the pure part: counts from the audit trail (calls, denials, credentials
 * issued, distinct users, busiest hours) grouped by tool, user, target, day or agent, and the
 * table (with a bar chart), JSON and CSV views. The command (cli/commands/usage.ts) only reads.
 */
import type { AuditEntry, AuditRecord } from '../core/api/index.js';
import { entryUser } from '../core/audit/user.js';
import { formatColumns } from './globals.js';

export const USAGE_BY = ['tool', 'user', 'target', 'day', 'agent'] as const;
export type UsageBy = (typeof USAGE_BY)[number];

/** Users that are not a human: not counted as distinct users. */
const NOT_A_USER = new Set(['agent acting alone', 'unverified user', '']);

export interface UsageRow {
  readonly key: string;
  readonly calls: number;
  readonly allowed: number;
  readonly denied: number;
  /** Distinct human users among the calls. */
  readonly users: number;
}

export interface UsageReport {
  readonly since: string;
  readonly until: string;
  readonly by: UsageBy;
  readonly agents: readonly string[];
  readonly totals: {
    /** Decisions on tool calls, HTTP requests and PostgreSQL sessions (MCP protocol messages apart). */
    readonly calls: number;
    readonly allowed: number;
    readonly denied: number;
    /** Credentials the authority issued (Credential entries allowed). */
    readonly credentialsIssued: number;
    /** Distinct human users the agents acted for. */
    readonly distinctUsers: number;
    /** Calls made with no user ("agent acting alone"). */
    readonly actingAlone: number;
    /** MCP protocol messages naming no tool (initialize, tools/list, notifications). */
    readonly protocolMessages: number;
  };
  readonly rows: readonly UsageRow[];
  /** Calls per hour of the day (UTC), index 0–23. */
  readonly hours: readonly number[];
  /** The three busiest hours of the day (UTC), most calls first. */
  readonly busiestHours: readonly { readonly hour: number; readonly calls: number }[];
}

export interface UsageInputs {
  readonly records: readonly AuditRecord[];
  /** Only these agents (empty = all). */
  readonly agentNames: readonly string[];
  readonly sinceMs: number;
  readonly now: Date;
  readonly by: UsageBy;
  /** -A: agents are named namespace/name. */
  readonly qualify?: boolean;
}

/**
 * MCP traffic that names no tool: decided as a session, not a call. `mcpTargets` are the targets
 * seen with tool calls: a request to one of them naming no tool (the stream's GET, a DELETE, a
 * refused POST) is protocol traffic too, whether it was allowed or refused.
 */
export function isProtocolMessage(e: AuditEntry, mcpTargets: ReadonlySet<string> = new Set()): boolean {
  if (e.replay?.kind === 'session') return true;
  if (e.tool || e.path !== undefined || e.method === undefined) return false;
  // JSON-RPC methods are lower case (initialize, tools/list); an HTTP method is upper case.
  return e.method !== e.method.toUpperCase() || (e.target !== undefined && mcpTargets.has(e.target));
}

function keyOf(e: AuditEntry, by: UsageBy, agent: string): string {
  switch (by) {
    case 'tool':
      if (e.tool) return e.tool;
      if (e.path !== undefined) return `${e.target ?? ''} ${e.method ?? ''} (HTTP)`.trim();
      return `${e.target ?? ''} (${e.method ? `refused ${e.method}` : 'session'})`;
    case 'user':
      return entryUser(e).user || 'agent acting alone';
    case 'target':
      return e.target ?? '(none)';
    case 'day':
      return e.time.slice(0, 10);
    case 'agent':
      return agent;
  }
}

interface Acc {
  calls: number;
  allowed: number;
  denied: number;
  users: Set<string>;
}

export function usageOf(inputs: UsageInputs): UsageReport {
  const wanted = new Set(inputs.agentNames);
  const rows = new Map<string, Acc>();
  const users = new Set<string>();
  const agents = new Set<string>();
  const hours = new Array<number>(24).fill(0);
  let calls = 0;
  let allowed = 0;
  let denied = 0;
  let credentialsIssued = 0;
  let actingAlone = 0;
  let protocolMessages = 0;
  const until = inputs.now.getTime();
  const mcpTargets = new Set<string>();
  for (const r of inputs.records)
    for (const e of r.spec.entries)
      if (e.target && (e.tool || e.replay?.kind === 'mcp' || e.replay?.kind === 'session'))
        mcpTargets.add(e.target);
  for (const r of inputs.records) {
    if (wanted.size > 0 && !wanted.has(r.spec.agent)) continue;
    if (Date.parse(r.spec.endTime) < inputs.sinceMs) continue;
    const agent = inputs.qualify ? `${r.metadata?.namespace ?? ''}/${r.spec.agent}` : r.spec.agent;
    for (const e of r.spec.entries) {
      const t = Date.parse(e.time);
      if (!(t >= inputs.sinceMs) || t > until) continue;
      if (e.kind === 'Credential') {
        if (e.decision === 'Allow') credentialsIssued++;
        continue;
      }
      if (e.kind !== 'Decision') continue;
      agents.add(agent);
      if (isProtocolMessage(e, mcpTargets)) {
        protocolMessages++;
        continue;
      }
      calls++;
      const deny = e.decision === 'Deny';
      if (deny) denied++;
      else allowed++;
      const user = entryUser(e).user;
      if (user === '' || user === 'agent acting alone') actingAlone++;
      else if (!NOT_A_USER.has(user)) users.add(user);
      const hour = new Date(t).getUTCHours();
      hours[hour] = (hours[hour] ?? 0) + 1;
      const key = keyOf(e, inputs.by, agent);
      let acc = rows.get(key);
      if (!acc) {
        acc = { calls: 0, allowed: 0, denied: 0, users: new Set() };
        rows.set(key, acc);
      }
      acc.calls++;
      if (deny) acc.denied++;
      else acc.allowed++;
      if (!NOT_A_USER.has(user)) acc.users.add(user);
    }
  }
  const list = [...rows.entries()]
    .map(([key, a]) => ({ key, calls: a.calls, allowed: a.allowed, denied: a.denied, users: a.users.size }))
    .sort((a, b) =>
      inputs.by === 'day' ? a.key.localeCompare(b.key) : b.calls - a.calls || a.key.localeCompare(b.key),
    );
  const busiestHours = hours
    .map((n, hour) => ({ hour, calls: n }))
    .filter((h) => h.calls > 0)
    .sort((a, b) => b.calls - a.calls || a.hour - b.hour)
    .slice(0, 3);
  return {
    since: new Date(inputs.sinceMs).toISOString(),
    until: inputs.now.toISOString(),
    by: inputs.by,
    agents: [...agents].sort(),
    totals: {
      calls,
      allowed,
      denied,
      credentialsIssued,
      distinctUsers: users.size,
      actingAlone,
      protocolMessages,
    },
    rows: list,
    hours,
    busiestHours,
  };
}

const BLOCKS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A horizontal bar of `value / max` of `width` characters, in eighths. */
export function bar(value: number, max: number, width = 30): string {
  if (max <= 0 || value <= 0) return '';
  const eighths = Math.max(1, Math.round((value / max) * width * 8));
  return '█'.repeat(Math.floor(eighths / 8)) + (BLOCKS[eighths % 8] ?? '');
}

function pct(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${Math.round((part / whole) * 100)}%`;
}

const HEADERS: Record<UsageBy, string> = {
  tool: 'TOOL',
  user: 'USER',
  target: 'TARGET',
  day: 'DAY (UTC)',
  agent: 'AGENT',
};

/** The table: totals, one row per key with a bar of its calls, and calls per hour of the day. */
export function formatUsage(r: UsageReport): string {
  const t = r.totals;
  const lines = [
    `Usage of ${r.agents.length} ${r.agents.length === 1 ? 'agent' : 'agents'} (${r.agents.join(', ') || 'none'}) from ${r.since} to ${r.until}:`,
    `  calls ${t.calls} (allowed ${t.allowed}, denied ${t.denied}, ${pct(t.denied, t.calls)}), credentials issued ${t.credentialsIssued}, distinct users ${t.distinctUsers}, acting alone ${t.actingAlone}, MCP protocol messages ${t.protocolMessages}`,
  ];
  if (r.busiestHours.length > 0) {
    lines.push(
      `  busiest hours (UTC): ${r.busiestHours.map((h) => `${String(h.hour).padStart(2, '0')}:00 (${h.calls})`).join(', ')}`,
    );
  }
  if (r.rows.length === 0) return [...lines, '', 'No calls in this window.'].join('\n');
  const max = Math.max(...r.rows.map((x) => x.calls));
  lines.push('');
  lines.push(
    formatColumns(
      [HEADERS[r.by], 'CALLS', 'DENIED', 'USERS', ''],
      r.rows.map((x) => [
        x.key.length > 48 ? `${x.key.slice(0, 47)}…` : x.key,
        String(x.calls),
        `${x.denied} (${pct(x.denied, x.calls)})`,
        String(x.users),
        bar(x.calls, max),
      ]),
    ),
  );
  const peak = Math.max(...r.hours);
  lines.push('');
  lines.push('Calls per hour of the day (UTC):');
  for (let h = 0; h < 24; h++) {
    const n = r.hours[h] ?? 0;
    if (n === 0) continue;
    lines.push(
      `  ${String(h).padStart(2, '0')}:00  ${String(n).padStart(String(peak).length)}  ${bar(n, peak, 40)}`,
    );
  }
  return lines.join('\n');
}

function csvField(v: string | number): string {
  // Tool and user names come from agents: a cell a spreadsheet would run as a formula gets a
  // leading apostrophe (OWASP's advice against CSV injection).
  const s = /^[=+\-@\t\r]/.test(String(v)) ? `'${v}` : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV: one row per key, RFC 4180 quoting. */
export function usageCsv(r: UsageReport): string {
  const rows = [[r.by, 'calls', 'allowed', 'denied', 'users']];
  for (const x of r.rows)
    rows.push([x.key, String(x.calls), String(x.allowed), String(x.denied), String(x.users)]);
  return rows.map((cols) => cols.map(csvField).join(',')).join('\n');
}
