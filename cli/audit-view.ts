/**
 * `kubectl warden audit`, the pure part: filtering entries, the table and JSON views, and the
 * chain-verification report. The command (cli/commands/audit.ts) only reads objects.
 */
import type { AuditEntry, AuditRecord } from '../core/api/index.js';
import { type NamedRecord, type PrunedThrough, type VerifyResult, verifyChain } from '../core/audit/chain.js';
import { agentLabelValue, timeSelectors } from '../core/audit/labels.js';
import { entryUser, qualifiedUser } from '../core/audit/user.js';
import { PROBLEM_CLASS, type ProblemClass } from '../core/audit/verify.js';
import { LABEL_AGENT, LABEL_AUDIT_DENIED } from '../core/constants.js';
import { CliError } from './command.js';

export interface AuditFilter {
  agent?: string;
  user?: string;
  tool?: string;
  decision?: 'Allow' | 'Deny';
  /** Entries at or after this time (ms since epoch). */
  sinceMs?: number;
  /** Entries at or before this time (ms since epoch). */
  untilMs?: number;
}

/** One entry with where it came from. */
export interface AuditRow extends AuditEntry {
  namespace: string;
  agent: string;
  record: string;
}

/** `--since 1h` / `30m` / `2d` / `45s` (that long ago) → ms, or an RFC 3339 time; also --until. */
export function parseSince(value: string, now: number, flag = '--since'): number {
  const m = /^([0-9]+)(s|m|h|d)$/.exec(value.trim());
  if (m) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
    return now - Number(m[1]) * unit;
  }
  const t = Date.parse(value);
  if (Number.isFinite(t) && /^\d{4}-\d{2}-\d{2}T/.test(value)) return t;
  throw new CliError(`${flag}: "${value}" is neither a duration (30m, 1h, 2d) nor an RFC 3339 time`, 2);
}

export function parseDecision(value: string | undefined): 'Allow' | 'Deny' | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (v === 'allow') return 'Allow';
  if (v === 'deny') return 'Deny';
  throw new CliError(`--decision: "${value}" must be Allow or Deny`, 2);
}

/** `*` globs for --user/--tool; without a `*` the value must match exactly. Compiled once per query. */
function globMatcher(pattern: string): (value: string | undefined) => boolean {
  if (!pattern.includes('*')) return (value) => value === pattern;
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return (value) => value !== undefined && re.test(value);
}

/**
 * --user: matches the entry's subject (core/audit/user.ts entryUser: broker and authority entries,
 * old records' `sub (issuer)` spelling included), or `sub (issuer)` to name one issuer's user.
 */
function userMatcher(pattern: string): (e: AuditEntry) => boolean {
  const m = globMatcher(pattern);
  return (e) => {
    const u = entryUser(e);
    return m(u.user) || (u.issuer !== undefined && m(qualifiedUser(u)));
  };
}

/** Every entry of the records that passes the filter, oldest first. */
export function filterEntries(records: readonly AuditRecord[], f: AuditFilter): AuditRow[] {
  return sortRows(matchingRows(records, f));
}

/** Oldest first (in place). */
export function sortRows(rows: AuditRow[]): AuditRow[] {
  return rows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

/**
 * The entries of the records that pass the filter, in record order: the command feeds it one page
 * of records at a time and keeps only the rows.
 */
export function matchingRows(records: readonly AuditRecord[], f: AuditFilter): AuditRow[] {
  const rows: AuditRow[] = [];
  const user = f.user ? userMatcher(f.user) : undefined;
  const tool = f.tool ? globMatcher(f.tool) : undefined;
  for (const r of records) {
    if (f.agent && r.spec.agent !== f.agent) continue;
    // A whole record outside the time range: no entry of it can match.
    if (f.sinceMs !== undefined && Date.parse(r.spec.endTime) < f.sinceMs) continue;
    if (f.untilMs !== undefined && Date.parse(r.spec.startTime) > f.untilMs) continue;
    for (const e of r.spec.entries) {
      if (f.decision && e.decision !== f.decision) continue;
      if (user && !user(e)) continue;
      if (tool && !tool(e.tool) && !tool(e.target)) continue;
      if (f.sinceMs !== undefined || f.untilMs !== undefined) {
        const t = Date.parse(e.time);
        if (f.sinceMs !== undefined && t < f.sinceMs) continue;
        if (f.untilMs !== undefined && t > f.untilMs) continue;
      }
      // One spelling of the user in every view: an old authority entry's `sub (issuer)` is split.
      const who = entryUser(e);
      rows.push({
        ...e,
        ...(e.user !== undefined ? { user: who.user } : {}),
        ...(who.issuer !== undefined ? { userIssuer: who.issuer } : {}),
        namespace: r.metadata?.namespace ?? '',
        agent: r.spec.agent,
        record: r.metadata?.name ?? '',
      });
    }
  }
  return rows;
}

/**
 * The label selectors whose union lists every record that can hold a matching entry: by agent, by
 * `denied` for --decision Deny (`!=false` also lists records written before the label existed), and
 * by end hour for --since/--until (core/audit/labels.ts timeSelectors: the hours in range plus the
 * records without the label). One empty selector lists everything.
 */
export function auditSelectors(f: AuditFilter, now: number): string[] {
  const base = [
    ...(f.agent ? [`${LABEL_AGENT}=${agentLabelValue(f.agent)}`] : []),
    ...(f.decision === 'Deny' ? [`${LABEL_AUDIT_DENIED}!=false`] : []),
  ];
  const time =
    f.sinceMs !== undefined ? timeSelectors(f.sinceMs, Math.max(f.untilMs ?? now, f.sinceMs)) : undefined;
  if (!time) return [base.join(',')];
  return time.map((t) => [...base, t].join(','));
}

/** The reason column: why it was decided, policy/rule/condition first. */
export function reasonText(e: AuditEntry): string {
  const r = e.reasons?.[0];
  if (r && (r.policy || r.condition)) {
    const where = [r.policy, r.rule !== undefined && r.rule >= 0 ? `rule ${r.rule}` : '', r.condition ?? '']
      .filter(Boolean)
      .join(' ');
    return where ? `${where}: ${r.message ?? ''}` : (r.message ?? '');
  }
  return e.message ?? (e.policy ? `policy ${e.policy}` : '');
}

function what(e: AuditEntry): string {
  if (e.tool) return e.target && !e.tool.startsWith(`${e.target}.`) ? `${e.target}/${e.tool}` : e.tool;
  if (e.method || e.path) return `${e.target ?? ''} ${e.method ?? ''} ${e.path ?? ''}`.trim();
  return e.target ?? '';
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

export interface TableOptions {
  /** -A: a NAMESPACE column first. */
  namespaces?: boolean;
  /** -o wide: the credential id and the AuditRecord each entry is in. */
  wide?: boolean;
}

export function formatTable(rows: readonly AuditRow[], opts: TableOptions = {}): string {
  if (rows.length === 0) return 'No audit entries match.';
  const header = [
    ...(opts.namespaces ? ['NAMESPACE'] : []),
    'TIME',
    'AGENT',
    'KIND',
    'DECISION',
    'USER',
    'TARGET/TOOL',
    ...(opts.wide ? ['CREDENTIAL', 'RECORD'] : []),
    'REASON',
  ];
  const lines: string[][] = rows.map((r) => [
    ...(opts.namespaces ? [r.namespace] : []),
    r.time.replace(/\.\d+Z$/, 'Z'),
    r.agent,
    r.kind,
    r.decision ?? '',
    opts.wide ? qualifiedUser(entryUser(r)) : clip(r.user ?? '', 32),
    clip(what(r), opts.wide ? 256 : 40),
    ...(opts.wide ? [r.credentialId ?? '', r.record] : []),
    opts.wide ? reasonText(r) : clip(reasonText(r), 100),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cols: string[]) =>
    cols
      .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...lines.map(fmt)].join('\n');
}

/** Runs verifyChain over the records with the retention cuts; the report names objects. */
export function verifyRecords(
  records: readonly AuditRecord[],
  pruned: Record<string, PrunedThrough>,
): VerifyResult {
  const named: NamedRecord[] = records.map((r) => ({
    ...(r.metadata?.name ? { name: r.metadata.name } : {}),
    spec: r.spec,
  }));
  return verifyChain(named, {}, pruned);
}

/**
 * Exit status bits of `kubectl warden audit --verify`, one per class of problem (added up when
 * several are found). 1 stays "could not verify" (an error) and 2 a usage error.
 */
export const VERIFY_EXIT: Readonly<Record<ProblemClass, number>> = {
  forged: 4,
  gap: 8,
  altered: 16,
  truncated: 32,
};

const CLASS_ORDER: readonly ProblemClass[] = ['forged', 'gap', 'altered', 'truncated'];

/** The exit status for a verification result: 0, or the sum of the bits of the classes found. */
export function verifyExitCode(v: VerifyResult): number {
  const found = new Set(v.problems.map((p) => PROBLEM_CLASS[p.kind]));
  return CLASS_ORDER.reduce((code, c) => (found.has(c) ? code | VERIFY_EXIT[c] : code), 0);
}

/** `--help` text: the exit statuses of --verify. */
export const VERIFY_EXIT_HELP = [
  'Exit status:',
  '  0   success; with --verify: every record in scope verified',
  '  1   error (could not read the trail or the audit keys)',
  '  2   usage error',
  '  With --verify, a problem sets its bit (several add up, e.g. 36 = forged + truncated):',
  `  ${VERIFY_EXIT.forged}   FORGED     a record without the controller's valid signature (missing, bad, unknown key),`,
  '             a copy of a genuine record, or an anchored head the controller did not sign',
  `  ${VERIFY_EXIT.gap}   GAP        records missing inside the chain (deleted?)`,
  `  ${VERIFY_EXIT.altered}  ALTERED    a record whose content no longer matches its signed digest, or whose link`,
  '             does not match the record before it',
  `  ${VERIFY_EXIT.truncated}  TRUNCATED  the newest records are missing: the head anchored in the AgentIdentity`,
  '             status is ahead of the newest record',
  '  Not problems (exit 0), each on its own line: LEGACY (unsigned records written before audit',
  '  signing began), UNANCHORED (a chain without an anchored head, whose newest records could',
  '  be deleted unnoticed) and PRUNED (records retention deleted on purpose: which, why, when).',
].join('\n');

export function formatVerify(namespace: string, v: VerifyResult): string {
  const noteLines = v.notes.map((n) => `  ${n.kind.toUpperCase().padEnd(10)} agent ${n.agent}: ${n.message}`);
  if (v.ok) {
    return [
      `audit trail OK in namespace ${namespace}: ${v.records} record(s), ${v.entries} entr${v.entries === 1 ? 'y' : 'ies'}; no forged, missing, altered or truncated record`,
      ...noteLines,
    ].join('\n');
  }
  const code = verifyExitCode(v);
  const classes = CLASS_ORDER.filter((c) => code & VERIFY_EXIT[c]).map(
    (c) => `${c.toUpperCase()} ${VERIFY_EXIT[c]}`,
  );
  return [
    `audit trail BROKEN in namespace ${namespace}: ${v.problems.length} problem(s) in ${v.records} record(s)`,
    ...v.problems.map((p) => {
      const cls = PROBLEM_CLASS[p.kind];
      const label = cls.toUpperCase().padEnd(10);
      const where = p.name ? `auditrecord/${p.name}` : `${p.agent}#${p.sequence}`;
      return `  ${label} ${where}: ${p.message}`;
    }),
    ...noteLines,
    `exit status ${code} (${classes.join(' + ')})`,
  ].join('\n');
}
