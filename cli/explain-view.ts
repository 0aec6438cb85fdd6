/**
 * Pure parts of `kubectl warden explain`: turning flags into a policy input and
 * an Explanation into a table or JSON.
 */
import type { Explanation, PolicyInput, UserInput } from '../core/policy/index.js';
import { CliError } from './command.js';

export interface ExplainFlags {
  readonly agent: string;
  readonly tool?: string | undefined;
  readonly target?: string | undefined;
  readonly method?: string | undefined;
  readonly path?: string | undefined;
  readonly args?: Record<string, unknown> | undefined;
  readonly userClaims?: Record<string, unknown> | undefined;
  readonly context?: Record<string, unknown> | undefined;
  readonly time?: string | undefined;
}

/**
 * The target: --target, else the tool name's prefix before the first dot
 * ("jira.create_issue" → "jira"), the convention MCP providers are named by.
 */
export function resolveTarget(flags: Pick<ExplainFlags, 'target' | 'tool'>): string {
  if (flags.target) return flags.target;
  const dot = flags.tool?.indexOf('.') ?? -1;
  if (flags.tool && dot > 0) return flags.tool.slice(0, dot);
  throw new CliError(
    '--target is required (it can be left out only when --tool has a "<target>." prefix, e.g. jira.create_issue)',
    2,
  );
}

function stringField(claims: Record<string, unknown>, key: string): string | undefined {
  const v = claims[key];
  return typeof v === 'string' ? v : undefined;
}

/** User claims as a verified token would yield them: sub, iss, groups, department; the rest stay in user.claims. */
export function userFromClaims(claims: Record<string, unknown> | undefined): UserInput | null {
  if (!claims) return null;
  const groups = claims.groups;
  if (groups !== undefined && (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string'))) {
    throw new CliError('--user-claims: "groups" must be a list of strings', 2);
  }
  const { sub, iss, groups: _g, department: _d, ...rest } = claims;
  return {
    sub: typeof sub === 'string' ? sub : 'cli-user',
    issuer: typeof iss === 'string' ? iss : undefined,
    groups: (groups as string[] | undefined) ?? [],
    department: stringField(claims, 'department'),
    claims: rest,
  };
}

export function explainInput(flags: ExplainFlags, now: Date): PolicyInput {
  const time = flags.time ? new Date(flags.time) : now;
  if (Number.isNaN(time.getTime()))
    throw new CliError(`--time: '${flags.time}' is not an RFC 3339 time, e.g. 2026-01-05T10:00:00Z`, 2);
  if (!flags.tool && !flags.method && !flags.path && !flags.target) {
    throw new CliError(
      'say what is requested: --tool for an MCP tool call, --method/--path for HTTP, or --target alone for a connection',
      2,
    );
  }
  const target = resolveTarget(flags);
  const kind = flags.tool ? 'mcp' : flags.method || flags.path ? 'http' : 'postgresql';
  return {
    user: userFromClaims(flags.userClaims),
    request: {
      kind,
      target,
      tool: flags.tool,
      args: flags.args,
      method: flags.method?.toUpperCase(),
      path: flags.path,
      time,
    },
    context: (flags.context ?? null) as PolicyInput['context'],
  };
}

/** A problem with a policy that could not be compiled (it is not evaluated). */
export interface InvalidPolicy {
  readonly policy: string;
  readonly errors: readonly string[];
}

export function formatExplainJson(explanation: Explanation, invalid: readonly InvalidPolicy[]): string {
  return JSON.stringify({ ...explanation, invalidPolicies: invalid }, null, 2);
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** Human output: the decision and why, then one line per policy / rule / condition. */
export function formatExplainTable(explanation: Explanation, invalid: readonly InvalidPolicy[]): string {
  const d = explanation.decision;
  const lines: string[] = [];
  lines.push(`DECISION  ${d.decision.toUpperCase()} (${d.reason})`);
  lines.push(`WHY       ${d.message}`);
  if (d.policy)
    lines.push(
      `DECIDED   ${d.policy} rule ${d.rule ?? '-'}${d.condition ? `, condition ${d.condition}` : ''}`,
    );
  lines.push(`TOOK      ${d.evaluationMicros.toFixed(1)} µs`);
  lines.push('');
  const rows: string[][] = [['POLICY', 'EFFECT', 'RULE', 'MATCH', 'CONDITION', 'RESULT']];
  for (const p of explanation.policies) {
    if (!p.selected) {
      rows.push([p.policy, p.effect, '-', `not selected: ${p.notSelectedReason ?? ''}`, '', '']);
      continue;
    }
    for (const r of p.rules) {
      const match = r.mismatch === null ? 'yes' : `no: ${r.mismatch}`;
      if (r.conditions.length === 0 || r.mismatch !== null) {
        rows.push([
          p.policy,
          p.effect,
          String(r.index),
          match,
          r.conditions.length === 0 ? '(none)' : '',
          r.mismatch === null ? r.outcome : '',
        ]);
        continue;
      }
      r.conditions.forEach((c, i) => {
        const result = c.result === 'error' ? `error: ${c.error ?? ''}` : c.result;
        rows.push(
          i === 0
            ? [p.policy, p.effect, String(r.index), match, c.name, result]
            : ['', '', '', '', c.name, result],
        );
      });
    }
  }
  for (const bad of invalid)
    rows.push([bad.policy, '?', '-', 'invalid, not evaluated', '', bad.errors[0] ?? '']);
  if (rows.length === 1) lines.push('No AccessPolicies in the namespace.');
  else lines.push(...table(rows));
  return lines.join('\n');
}
