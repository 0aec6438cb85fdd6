import type { ASTNode } from '@marcbachmann/cel-js';
import {
  CACHED_MATCHES,
  type CelActivation,
  celEnvironment,
  cidrProblem,
  HELPER_FUNCTIONS,
  VARIABLE_FIELDS,
  VARIABLE_NAMES,
} from './cel-env.js';
import { closest } from './hints.js';
import { regexProblem } from './regex-safety.js';

/**
 * Compiles one CEL expression: parse, type-check against the typed variables,
 * then walk the AST for what the type checker cannot see — unsafe regular
 * expressions, invalid time zones/CIDR literals — and estimate its worst-case cost.
 */

/** Limits that bound what an expression may cost, given the input bounds. */
export interface CostBounds {
  /** Longest list/map the input builder lets through. */
  readonly maxListLength: number;
  /** Longest string the input builder lets through. */
  readonly maxStringLength: number;
  /** Compile-time ceiling on one expression's estimated worst-case cost. */
  readonly maxExpressionCost: number;
}

export const MAX_EXPRESSION_LENGTH = 4096;

export interface CompiledExpression {
  /** As written in the policy. */
  readonly source: string;
  /** What is evaluated: `source` with `.matches(` calls pointed at the cached-regex variant. */
  readonly programSource: string;
  /** Evaluate against an activation; throws on evaluation errors. */
  readonly evaluate: (activation: CelActivation) => unknown;
  /** Estimated worst-case cost under the input bounds (abstract units, roughly AST-node visits). */
  readonly cost: number;
  readonly resultType: string;
  /** Root variables the expression reads (agent, user, request, context). */
  readonly variables: ReadonlySet<string>;
}

export interface ExpressionProblem {
  readonly code: string;
  /** What is wrong, without position (the caller adds it). */
  readonly summary: string;
  readonly offset: number | undefined;
  readonly hint: string | undefined;
}

export type ExpressionResult =
  | { readonly ok: true; readonly expression: CompiledExpression }
  | { readonly ok: false; readonly problem: ExpressionProblem };

interface CelError {
  code?: string;
  summary?: string;
  message: string;
  range?: { start: number; end: number };
}

const ALL_FIELDS = new Set<string>(Object.values(VARIABLE_FIELDS).flat());
const TIME_ZONE_METHODS = new Set([
  'getFullYear',
  'getMonth',
  'getDate',
  'getDayOfMonth',
  'getDayOfWeek',
  'getDayOfYear',
  'getHours',
  'getMinutes',
  'getSeconds',
  'getMilliseconds',
]);
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
const LINEAR_STRING_FUNCTIONS = new Set([
  'matches',
  'contains',
  'startsWith',
  'endsWith',
  'indexOf',
  'lastIndexOf',
  'split',
  'lowerAscii',
  'upperAscii',
  'replace',
  'trim',
  'glob',
  'join',
  'substring',
  'string',
  'size',
]);

let functionNames: readonly string[] | undefined;
function knownFunctionNames(): readonly string[] {
  if (!functionNames) {
    const defs = celEnvironment().getDefinitions();
    functionNames = [...new Set([...defs.functions.map((f) => f.name), ...HELPER_FUNCTIONS])].filter(
      (n) => n !== CACHED_MATCHES,
    );
  }
  return functionNames;
}

/** Turn a library error into a problem with a hint where we can offer one. */
function describeCelError(err: CelError): ExpressionProblem {
  const summary = err.summary ?? err.message.split('\n')[0] ?? err.message;
  const offset = err.range?.start;
  const code = err.code ?? 'invalid_expression';
  const variable = /^Unknown variable: (\S+)/.exec(summary);
  if (variable) {
    const name = variable[1] as string;
    const guess = closest(name, VARIABLE_NAMES);
    return {
      code: 'unknown_variable',
      summary: `undeclared reference to '${name}'`,
      offset,
      hint: guess ? `did you mean '${guess}'?` : `declared variables are ${VARIABLE_NAMES.join(', ')}`,
    };
  }
  const key = /^No such key: (\S+)/.exec(summary);
  if (key) {
    const name = key[1] as string;
    const guess = closest(name, ALL_FIELDS);
    return {
      code: 'unknown_field',
      summary: `undefined field '${name}'`,
      offset,
      hint: guess
        ? `did you mean '${guess}'?`
        : 'see docs/policy.md for the fields of agent, user, request and context',
    };
  }
  const overload = /^found no matching overload for '(?:[\w.<>, ]+\.)?(\w+)\(/.exec(summary);
  if (overload) {
    const name = overload[1] as string;
    const known = knownFunctionNames();
    const guess = known.includes(name) ? null : closest(name, known);
    return {
      code: 'no_matching_overload',
      summary,
      offset,
      hint: guess
        ? `did you mean '${guess}'?`
        : known.includes(name)
          ? 'the function exists but not for these argument types; check the types (ints are written 1, doubles 1.0)'
          : 'see docs/policy.md for available functions',
    };
  }
  return { code, summary, offset, hint: undefined };
}

function isNode(v: unknown): v is ASTNode {
  return typeof v === 'object' && v !== null && 'op' in v && 'args' in v && 'start' in v;
}

/** Children of any node, found generically so new node kinds are still walked. */
function children(node: ASTNode): ASTNode[] {
  const out: ASTNode[] = [];
  const visit = (v: unknown): void => {
    if (isNode(v)) out.push(v);
    else if (Array.isArray(v)) for (const x of v) visit(x);
  };
  visit(node.args);
  return out;
}

function literalString(node: ASTNode | undefined): string | null {
  return node?.op === 'value' && typeof node.args === 'string' ? node.args : null;
}

/** Checks the type checker cannot make: regex safety, time zone and CIDR literals. */
function lint(node: ASTNode): ExpressionProblem | null {
  if (node.op === 'rcall' || node.op === 'call') {
    const name = node.args[0];
    const callArgs = node.op === 'rcall' ? node.args[2] : node.args[1];
    if (name === CACHED_MATCHES) {
      return {
        code: 'no_matching_overload',
        summary: `found no matching overload for '${CACHED_MATCHES}'`,
        offset: node.start,
        hint: "did you mean 'matches'?",
      };
    }
    if (name === 'matches' && node.op === 'rcall') {
      const patternNode = callArgs[0];
      const pattern = literalString(patternNode);
      if (pattern === null) {
        return {
          code: 'dynamic_regex',
          summary: 'matches() needs a string literal pattern',
          offset: patternNode?.start ?? node.start,
          hint: 'patterns computed from request data could be chosen by an attacker; write the pattern as a literal',
        };
      }
      const problem = regexProblem(pattern);
      if (problem)
        return {
          code: problem.code,
          summary: problem.message,
          offset: patternNode?.start,
          hint: problem.hint,
        };
    }
    if (node.op === 'rcall' && TIME_ZONE_METHODS.has(name) && callArgs.length === 1) {
      const tz = literalString(callArgs[0]);
      if (tz !== null && !isTimeZone(tz)) {
        return {
          code: 'invalid_time_zone',
          summary: `unknown time zone '${tz}'`,
          offset: callArgs[0]?.start,
          hint: "use an IANA time zone name such as 'Europe/Berlin', 'America/New_York' or 'UTC'",
        };
      }
    }
    if (name === 'inCidr') {
      const cidrNode = node.op === 'rcall' ? callArgs[0] : callArgs[1];
      const cidr = literalString(cidrNode);
      const problem = cidr === null ? null : cidrProblem(cidr);
      if (problem)
        return { code: 'invalid_cidr', summary: problem, offset: cidrNode?.start, hint: undefined };
    }
  }
  for (const child of children(node)) {
    const p = lint(child);
    if (p) return p;
  }
  return null;
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const VARIABLE_SET = new Set<string>(VARIABLE_NAMES);

/** Root variables referenced anywhere in the AST (comprehension variables that shadow one count too: an over-approximation). */
function referencedVariables(node: ASTNode, out: Set<string> = new Set()): Set<string> {
  if (node.op === 'id' && VARIABLE_SET.has(node.args)) out.add(node.args);
  for (const child of children(node)) referencedVariables(child, out);
  return out;
}

/**
 * Worst-case cost under the input bounds: one unit per node; a comprehension
 * costs its body once per element of the longest list; linear string and list
 * functions cost a pass over the longest string/list (scaled down: a character
 * comparison is much cheaper than a node visit).
 */
export function estimateCost(node: ASTNode, bounds: CostBounds): number {
  const kids = children(node);
  if (node.op === 'rcall' && COMPREHENSIONS.has(node.args[0] as string)) {
    const [receiver, ...body] = kids;
    const bodyCost = body.reduce((sum, b) => sum + estimateCost(b, bounds), 0);
    return 1 + (receiver ? estimateCost(receiver, bounds) : 0) + bounds.maxListLength * (1 + bodyCost);
  }
  let cost = 1;
  for (const k of kids) cost += estimateCost(k, bounds);
  if ((node.op === 'rcall' || node.op === 'call') && LINEAR_STRING_FUNCTIONS.has(node.args[0] as string)) {
    cost += Math.ceil(Math.max(bounds.maxStringLength, bounds.maxListLength) / 32);
  }
  if (node.op === 'in') cost += bounds.maxListLength;
  return cost;
}

/**
 * Compile one expression. `expectBool` requires the result type to be bool
 * (conditions); credential claims may be any type.
 */
export function compileExpression(source: string, expectBool: boolean, bounds: CostBounds): ExpressionResult {
  if (source.trim() === '') {
    return {
      ok: false,
      problem: {
        code: 'empty_expression',
        summary: 'expression is empty',
        offset: 0,
        hint: "write a CEL expression, e.g. 'user.present'",
      },
    };
  }
  if (source.length > MAX_EXPRESSION_LENGTH) {
    return {
      ok: false,
      problem: {
        code: 'expression_too_long',
        summary: `expression is ${source.length} characters long; the limit is ${MAX_EXPRESSION_LENGTH}`,
        offset: MAX_EXPRESSION_LENGTH,
        hint: 'split it into several conditions',
      },
    };
  }
  const env = celEnvironment();
  let parsed: ReturnType<typeof env.parse>;
  try {
    parsed = env.parse(source);
  } catch (err) {
    return { ok: false, problem: describeCelError(err as CelError) };
  }
  // check() also records the checked types on the AST, so evaluation skips re-checking.
  const checked = parsed.check();
  if (!checked.valid) return { ok: false, problem: describeCelError(checked.error as CelError) };
  const resultType = checked.type ?? 'dyn';
  if (expectBool && resultType !== 'bool' && resultType !== 'dyn') {
    return {
      ok: false,
      problem: {
        code: 'not_bool',
        summary: `a condition must evaluate to bool, but this expression has type '${resultType}'`,
        offset: 0,
        hint: 'compare the value, e.g. "context.purpose == \'support\'"',
      },
    };
  }
  const lintProblem = lint(parsed.ast);
  if (lintProblem) return { ok: false, problem: lintProblem };
  const cost = estimateCost(parsed.ast, bounds);
  if (cost > bounds.maxExpressionCost) {
    return {
      ok: false,
      problem: {
        code: 'cost_exceeded',
        summary: `estimated worst-case cost ${cost} exceeds the limit of ${bounds.maxExpressionCost}`,
        offset: 0,
        hint: 'avoid nested comprehensions (all/exists/map/filter inside each other) over request data',
      },
    };
  }
  const program = withCachedMatches(source, parsed.ast);
  // The library's parse result is a function of the activation; the cast documents that
  // it accepts our typed activation (its declared parameter type is Record<string, any>).
  const evaluate = program.parsed ?? (parsed as unknown as (activation: CelActivation) => unknown);
  return {
    ok: true,
    expression: {
      source,
      programSource: program.parsed ? program.source : source,
      evaluate,
      cost,
      resultType,
      variables: referencedVariables(parsed.ast),
    },
  };
}

/** Receivers and patterns of every `.matches(...)` call, in source order. */
function matchesCalls(node: ASTNode, out: { receiverEnd: number; patternStart: number }[] = []) {
  if (node.op === 'rcall' && node.args[0] === 'matches') {
    const receiver = node.args[1];
    const pattern = node.args[2][0];
    if (pattern) out.push({ receiverEnd: receiver.end, patternStart: pattern.start });
  }
  for (const child of children(node)) matchesCalls(child, out);
  return out;
}

/**
 * The library's `matches` builds a RegExp on every call and cannot be
 * overridden, so the evaluated program calls `cachedMatches` instead — same
 * semantics, the RegExp compiled once per (already safety-checked, literal)
 * pattern. The rewrite only touches the `.matches(` text between receiver and
 * pattern; if that text is not exactly that, or the result does not check, the
 * original program is used.
 */
function withCachedMatches(
  source: string,
  ast: ASTNode,
): { source: string; parsed: ((activation: CelActivation) => unknown) | null } {
  const calls = matchesCalls(ast).sort((a, b) => b.receiverEnd - a.receiverEnd);
  if (calls.length === 0) return { source, parsed: null };
  let rewritten = source;
  for (const { receiverEnd, patternStart } of calls) {
    const between = rewritten.slice(receiverEnd, patternStart);
    if (!/^\s*\.\s*matches\s*\(\s*$/.test(between)) return { source, parsed: null };
    rewritten = `${rewritten.slice(0, receiverEnd)}.${CACHED_MATCHES}(${rewritten.slice(patternStart)}`;
  }
  try {
    const parsed = celEnvironment().parse(rewritten);
    if (!parsed.check().valid) return { source, parsed: null };
    return { source: rewritten, parsed: parsed as unknown as (activation: CelActivation) => unknown };
  } catch {
    return { source, parsed: null };
  }
}

/**
 * One program for "all of these conditions hold": `(c1) && (c2) && …`, parsed
 * and checked once. Evaluating it costs one library call instead of one per
 * condition. It is only trusted when it returns `true` (then every operand was
 * true); any other outcome is re-evaluated condition by condition to find which
 * failed. Null when there is nothing to gain or it does not compile.
 */
export function compileConjunction(
  sources: readonly string[],
): ((activation: CelActivation) => unknown) | null {
  if (sources.length < 2) return null;
  try {
    const parsed = celEnvironment().parse(sources.map((s) => `(${s})`).join(' && '));
    if (!parsed.check().valid) return null;
    return parsed as unknown as (activation: CelActivation) => unknown;
  } catch {
    return null;
  }
}
