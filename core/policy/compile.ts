import { parseDuration } from '../api/duration.js';
import { DEFAULT_BOUNDS, type PolicyBounds } from './bounds.js';
import type {
  CompiledCondition,
  CompiledCredential,
  CompiledHttpMatch,
  CompiledLimit,
  CompiledPolicy,
  CompiledRule,
  CompiledSelector,
} from './compiled.js';
import { type CompiledExpression, compileConjunction, compileExpression } from './expression.js';
import { compilePathGlob, compileToolGlob, globProblem, toolGlobGram, toolGlobPrefix } from './glob.js';
import { lineColumn } from './hints.js';
import type { AccessPolicySpecLike, PolicyCompileError, PolicyRuleLike } from './types.js';

export type { CompiledPolicy } from './compiled.js';

export interface CompilePolicyInput {
  readonly namespace: string;
  readonly name: string;
  readonly spec: AccessPolicySpecLike;
}

export type CompilePolicyResult =
  | { readonly ok: true; readonly compiled: CompiledPolicy }
  | { readonly ok: false; readonly errors: readonly PolicyCompileError[] };

export interface CompileOptions {
  readonly bounds?: PolicyBounds;
}

const MAX_RULES = 64;
const MAX_TARGETS = 32;
const MAX_TOOLS = 64;
const MAX_CONDITIONS = 16;
const MAX_CONDITION_NAME = 63;
const HTTP_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  '*',
]);
const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/** One-line rendering for status conditions and CLI output: `AccessPolicy ns/name: path: message`. */
export function formatCompileError(
  policy: { namespace: string; name: string },
  error: PolicyCompileError,
): string {
  return `AccessPolicy ${policy.namespace}/${policy.name}: ${error.path}: ${error.message}`;
}

/**
 * Compile an AccessPolicy: every CEL expression is parsed and type-checked once,
 * globs become matchers. Returns every problem found (not just the first), each
 * with its field path, and for expressions the line:column and a hint.
 */
export function compileAccessPolicy(
  policy: CompilePolicyInput,
  options: CompileOptions = {},
): CompilePolicyResult {
  const bounds = options.bounds ?? DEFAULT_BOUNDS;
  const errors: PolicyCompileError[] = [];
  const fail = (path: string, code: string, message: string): void => {
    errors.push({ path, code, message });
  };
  const { spec } = policy;

  const effect = spec.effect ?? 'Allow';
  if (effect !== 'Allow' && effect !== 'Deny') {
    fail('spec.effect', 'invalid_effect', `effect '${String(effect)}' is not valid; use Allow or Deny`);
  }

  const selector = compileSelector(spec, fail);

  const rulesIn = Array.isArray(spec.rules) ? spec.rules : [];
  if (rulesIn.length === 0) fail('spec.rules', 'no_rules', 'a policy needs at least one rule');
  if (rulesIn.length > MAX_RULES) {
    fail(
      'spec.rules',
      'too_many_rules',
      `${rulesIn.length} rules; the limit is ${MAX_RULES} — split the policy`,
    );
  }

  const rules: CompiledRule[] = [];
  rulesIn.slice(0, MAX_RULES).forEach((rule, index) => {
    const compiled = compileRule(rule, index, `spec.rules[${index}]`, bounds, errors, effect === 'Deny');
    if (compiled) rules.push(compiled);
  });

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    compiled: {
      id: `${policy.namespace}/${policy.name}`,
      namespace: policy.namespace,
      name: policy.name,
      effect,
      description: spec.description,
      selector,
      rules,
    },
  };
}

function compileSelector(
  spec: AccessPolicySpecLike,
  fail: (path: string, code: string, message: string) => void,
): CompiledSelector {
  const names = spec.agentSelector?.names ?? [];
  names.forEach((n, i) => {
    if (typeof n !== 'string' || n === '')
      fail(`spec.agentSelector.names[${i}]`, 'invalid_name', 'agent name must be a non-empty string');
  });
  const labels = Object.entries(spec.agentSelector?.matchLabels ?? {}).filter(
    (e): e is [string, string] => typeof e[1] === 'string',
  );
  return { names: names.length > 0 ? new Set(names) : null, matchLabels: labels };
}

function compileRule(
  rule: PolicyRuleLike,
  index: number,
  path: string,
  bounds: PolicyBounds,
  errors: PolicyCompileError[],
  /** Deny rules match tool names case-insensitively after Unicode normalisation (glob.ts foldToolName). */
  denies: boolean,
): CompiledRule | null {
  const before = errors.length;
  const fail = (p: string, code: string, message: string): void => {
    errors.push({ path: p, code, message });
  };

  const targets = Array.isArray(rule.targets) ? rule.targets : [];
  if (targets.length === 0)
    fail(
      `${path}.targets`,
      'no_targets',
      'a rule needs at least one target (a CredentialProvider name, or "*")',
    );
  if (targets.length > MAX_TARGETS)
    fail(`${path}.targets`, 'too_many_targets', `${targets.length} targets; the limit is ${MAX_TARGETS}`);
  targets.forEach((t, i) => {
    if (typeof t !== 'string' || t === '')
      fail(
        `${path}.targets[${i}]`,
        'invalid_target',
        'target must be a non-empty CredentialProvider name or "*"',
      );
  });

  let toolMatchers: CompiledRule['toolMatchers'] = null;
  let toolPrefixes: string[] | null = null;
  let toolGrams: string[] | null = null;
  if (rule.tools !== undefined && rule.tools.length > 0) {
    if (rule.tools.length > MAX_TOOLS)
      fail(`${path}.tools`, 'too_many_tools', `${rule.tools.length} tool globs; the limit is ${MAX_TOOLS}`);
    rule.tools.forEach((t, i) => {
      const problem = typeof t === 'string' ? globProblem(t) : 'tool glob must be a string';
      if (problem) fail(`${path}.tools[${i}]`, 'invalid_glob', problem);
    });
    // Allow globs stay exact (widening an Allow by case would allow calls nobody wrote down);
    // Deny globs fold case and compatibility forms, so DELETE and ｄｅｌｅｔｅ cannot step around them.
    toolMatchers = rule.tools.map((t) => compileToolGlob(String(t), { caseInsensitive: denies }));
    toolPrefixes = rule.tools.map((t) => toolGlobPrefix(String(t), { caseInsensitive: denies }));
    toolGrams = rule.tools.map((t) => toolGlobGram(String(t), { caseInsensitive: denies }));
  }

  const http = rule.http ? compileHttp(rule.http, `${path}.http`, fail) : null;

  const conditions: CompiledCondition[] = [];
  const seen = new Set<string>();
  const when = rule.when ?? [];
  if (when.length > MAX_CONDITIONS)
    fail(`${path}.when`, 'too_many_conditions', `${when.length} conditions; the limit is ${MAX_CONDITIONS}`);
  when.forEach((cond, i) => {
    const condPath = `${path}.when[${i}]`;
    const name = typeof cond.name === 'string' ? cond.name : '';
    if (name === '')
      fail(`${condPath}.name`, 'missing_name', 'every condition needs a name (it is what a denial reports)');
    else if (name.length > MAX_CONDITION_NAME)
      fail(
        `${condPath}.name`,
        'name_too_long',
        `condition name is longer than ${MAX_CONDITION_NAME} characters`,
      );
    else if (seen.has(name))
      fail(
        `${condPath}.name`,
        'duplicate_name',
        `condition name '${name}' is used twice in this rule; names must be unique so a denial is unambiguous`,
      );
    seen.add(name);
    const expression = compileOne(
      String(cond.expression ?? ''),
      true,
      `${condPath}.expression`,
      bounds,
      errors,
    );
    if (expression) conditions.push({ name, expression });
  });

  const credential = rule.credential
    ? compileCredential(rule.credential, `${path}.credential`, bounds, errors)
    : null;

  const limits = compileLimits(rule.limits, `${path}.limits`, denies, fail);

  if (errors.length > before) return null;
  return {
    limits,
    index,
    targets,
    tools: rule.tools && rule.tools.length > 0 ? rule.tools : null,
    toolMatchers,
    toolPrefixes,
    toolGrams,
    http,
    conditions,
    conditionNames: conditions.length === 0 ? null : conditions.map((c) => c.name).join(', '),
    allConditions: compileConjunction(conditions.map((c) => c.expression.programSource)),
    conditionsCost: conditions.reduce((sum, c) => sum + c.expression.cost, 0),
    credential,
  };
}

const QUOTA_SCOPES: ReadonlySet<string> = new Set(['agent', 'user', 'agent+user']);
/** Largest quota window (the CRD's pattern allows up to 24h). */
const MAX_QUOTA_WINDOW_MS = 24 * 3_600_000;

function compileLimits(
  limits: PolicyRuleLike['limits'],
  path: string,
  denies: boolean,
  fail: (p: string, code: string, message: string) => void,
): CompiledLimit[] {
  if (limits === undefined || limits.length === 0) return [];
  if (denies) {
    fail(
      path,
      'limits_on_deny',
      'quotas apply to Allow rules only; a Deny rule already denies every call it matches',
    );
    return [];
  }
  if (limits.length > 4) fail(path, 'too_many_limits', `${limits.length} limits; the limit is 4`);
  return limits.map((l, i) => {
    const at = `${path}[${i}]`;
    if (!QUOTA_SCOPES.has(l.per))
      fail(`${at}.per`, 'invalid_scope', `'${l.per}' is not agent, user or agent+user`);
    if (!Number.isSafeInteger(l.calls) || l.calls < 1)
      fail(`${at}.calls`, 'invalid_calls', `calls must be a whole number of at least 1, got ${l.calls}`);
    const windowMs = typeof l.window === 'string' ? parseDuration(l.window) : undefined;
    if (windowMs === undefined || windowMs < 1000 || windowMs > MAX_QUOTA_WINDOW_MS)
      fail(
        `${at}.window`,
        'invalid_window',
        `'${l.window}' is not a window from 1s to 24h; write it like "30s", "1m" or "1h"`,
      );
    return {
      index: i,
      per: l.per as CompiledLimit['per'],
      calls: l.calls,
      window: l.window,
      windowMs: windowMs ?? 0,
    };
  });
}

function compileHttp(
  http: NonNullable<PolicyRuleLike['http']>,
  path: string,
  fail: (p: string, code: string, message: string) => void,
): CompiledHttpMatch {
  const methods = (http.methods ?? []).map((m, i) => {
    const upper = String(m).toUpperCase();
    if (!HTTP_METHODS.has(upper)) {
      fail(
        `${path}.methods[${i}]`,
        'invalid_method',
        `'${m}' is not an HTTP method; use GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or "*"`,
      );
    }
    return upper;
  });
  const paths = http.paths ?? [];
  paths.forEach((p, i) => {
    const problem =
      globProblem(p) ??
      (p.startsWith('/') || p === '**' ? null : `path glob '${p}' must start with '/' (or be "**")`);
    if (problem) fail(`${path}.paths[${i}]`, 'invalid_glob', problem);
  });
  return {
    methods: methods.length === 0 || methods.includes('*') ? null : new Set(methods),
    paths,
    pathMatchers: paths.length === 0 ? null : paths.map(compilePathGlob),
  };
}

function compileCredential(
  credential: NonNullable<PolicyRuleLike['credential']>,
  path: string,
  bounds: PolicyBounds,
  errors: PolicyCompileError[],
): CompiledCredential {
  if (credential.ttl !== undefined && !GO_DURATION.test(credential.ttl)) {
    errors.push({
      path: `${path}.ttl`,
      code: 'invalid_duration',
      message: `'${credential.ttl}' is not a duration; write it like "5m", "1h" or "90s"`,
    });
  }
  const claims: { name: string; expression: CompiledExpression }[] = [];
  for (const [name, source] of Object.entries(credential.claims ?? {})) {
    if (source === undefined) continue;
    const expression = compileOne(String(source), false, `${path}.claims.${name}`, bounds, errors);
    if (expression) claims.push({ name, expression });
  }
  return { ttl: credential.ttl, scopes: credential.scopes ?? [], claims };
}

function compileOne(
  source: string,
  expectBool: boolean,
  path: string,
  bounds: PolicyBounds,
  errors: PolicyCompileError[],
): CompiledExpression | null {
  const result = compileExpression(source, expectBool, bounds);
  if (result.ok) return result.expression;
  const { problem } = result;
  const offset = problem.offset ?? 0;
  const { line, column } = lineColumn(source, offset);
  errors.push({
    path,
    code: problem.code,
    message: `${problem.summary} at ${line}:${column}${problem.hint ? ` (${problem.hint})` : ''}`,
    line,
    column,
    offset,
  });
  return null;
}
