import type { CelActivation } from './cel-env.js';
import type { CompiledExpression } from './expression.js';
import type { GlobMatcher } from './glob.js';
import type { Effect } from './types.js';

/** A policy after compilation: matchers and programs ready to run, no source re-parsing. */
export interface CompiledPolicy {
  /** `namespace/name`. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly effect: Effect;
  readonly description: string | undefined;
  readonly selector: CompiledSelector;
  readonly rules: readonly CompiledRule[];
}

export interface CompiledSelector {
  /** null = any name. */
  readonly names: ReadonlySet<string> | null;
  /** Empty = any labels. */
  readonly matchLabels: readonly (readonly [string, string])[];
}

export interface CompiledRule {
  /** Index in `spec.rules`. */
  readonly index: number;
  readonly targets: readonly string[];
  /** Patterns as written, for explain output. */
  readonly tools: readonly string[] | null;
  readonly toolMatchers: readonly GlobMatcher[] | null;
  /**
   * The literal text each tool glob starts with (up to its first `*` or `?`; folded for Deny rules,
   * as their matchers compare), so a policy set can index rules by tool. Absent or null = not indexed:
   * the rule is tried for every tool, as before.
   */
  readonly toolPrefixes?: readonly string[] | null;
  /**
   * Per tool glob, TOOL_GRAM characters every matching name contains (glob.ts toolGlobGram), for
   * the globs that start with a wildcard; '' where none is known. Absent or null = not indexed.
   */
  readonly toolGrams?: readonly string[] | null;
  readonly http: CompiledHttpMatch | null;
  readonly conditions: readonly CompiledCondition[];
  /** Condition names joined with ", " (what an Allow/Deny decision reports), or null without conditions. */
  readonly conditionNames: string | null;
  /** All conditions as one program (fast path; trusted only when it returns true), or null. */
  readonly allConditions: ((activation: CelActivation) => unknown) | null;
  /** Sum of the conditions' estimated costs. */
  readonly conditionsCost: number;
  readonly credential: CompiledCredential | null;
  /** Quotas on the calls this rule allows; empty = none. */
  readonly limits: readonly CompiledLimit[];
}

/** One of a rule's `limits`, checked and with its window in milliseconds. */
export interface CompiledLimit {
  /** Index in the rule's `limits`. */
  readonly index: number;
  readonly per: 'agent' | 'user' | 'agent+user';
  readonly calls: number;
  readonly window: string;
  readonly windowMs: number;
}

export interface CompiledHttpMatch {
  /** null = any method. */
  readonly methods: ReadonlySet<string> | null;
  readonly paths: readonly string[];
  /** null = any path. */
  readonly pathMatchers: readonly GlobMatcher[] | null;
}

export interface CompiledCondition {
  readonly name: string;
  readonly expression: CompiledExpression;
}

export interface CompiledCredential {
  readonly ttl: string | undefined;
  readonly scopes: readonly string[];
  readonly claims: readonly { readonly name: string; readonly expression: CompiledExpression }[];
}
