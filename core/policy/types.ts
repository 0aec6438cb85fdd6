/**
 * Shapes the policy engine works on. The `*Like` types are structural so the
 * generated CRD types (core/api/generated) are assignable to them without a
 * dependency from core/policy on generated code.
 */

export type Effect = 'Allow' | 'Deny';

export interface PolicyConditionLike {
  readonly name: string;
  readonly expression: string;
}

export interface HttpMatchLike {
  /** GET, POST, ... or "*"; absent or empty means any method. */
  readonly methods?: readonly string[] | undefined;
  /** Path globs: "*" matches within one segment, "**" any number of segments; absent/empty = any path. */
  readonly paths?: readonly string[] | undefined;
}

export interface RuleCredentialLike {
  readonly ttl?: string | undefined;
  readonly scopes?: readonly string[] | undefined;
  /** Extra claims: claim name → CEL expression evaluated at issuance. */
  readonly claims?: Readonly<Record<string, string | undefined>> | undefined;
}

export interface PolicyRuleLike {
  readonly targets: readonly string[];
  readonly tools?: readonly string[] | undefined;
  readonly http?: HttpMatchLike | undefined;
  readonly when?: readonly PolicyConditionLike[] | undefined;
  readonly credential?: RuleCredentialLike | undefined;
  /** Quotas on the calls this rule allows (enforced by the broker, counted by the authority). */
  readonly limits?: readonly RuleLimitLike[] | undefined;
}

export interface RuleLimitLike {
  readonly per: string;
  readonly calls: number;
  readonly window: string;
}

export interface AgentSelectorLike {
  readonly names?: readonly string[] | undefined;
  readonly matchLabels?: Readonly<Record<string, string | undefined>> | undefined;
}

export interface AccessPolicySpecLike {
  readonly description?: string | undefined;
  readonly agentSelector?: AgentSelectorLike | undefined;
  readonly effect?: Effect | undefined;
  readonly rules: readonly PolicyRuleLike[];
}

/** One compile problem, located by field path and (for expressions) source position. */
export interface PolicyCompileError {
  /** Field path inside the AccessPolicy, e.g. `spec.rules[2].when[0].expression`. */
  readonly path: string;
  /** Human message naming the problem, the position and a hint. */
  readonly message: string;
  /** Stable machine code, e.g. `unknown_variable`, `unsafe_regex`, `not_bool`. */
  readonly code: string;
  /** 1-based line/column and 0-based offset inside the expression (expression errors only). */
  readonly line?: number;
  readonly column?: number;
  readonly offset?: number;
}

/** The variables handed to CEL, as callers provide them (plain JS, before bounding). */
export interface PolicyInput {
  readonly agent?: AgentInput;
  /** The human the agent acts for; absent/null = "agent acting alone". */
  readonly user?: UserInput | null | undefined;
  readonly request: RequestInput;
  readonly context?: ContextInput | null | undefined;
}

export interface AgentInput {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly pod?:
    | {
        readonly name?: string | undefined;
        readonly uid?: string | undefined;
        readonly node?: string | undefined;
        readonly images?: readonly string[] | undefined;
      }
    | undefined;
}

export interface UserInput {
  readonly sub: string;
  readonly issuer?: string | undefined;
  readonly groups?: readonly string[] | undefined;
  readonly department?: string | undefined;
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

export type RequestKind = 'mcp' | 'http' | 'postgresql';

export interface RequestInput {
  readonly kind: RequestKind;
  /** CredentialProvider name. */
  readonly target: string;
  /** MCP tool name (kind "mcp"). */
  readonly tool?: string | undefined;
  /** MCP tool arguments — attacker-controlled, bounded before evaluation. */
  readonly args?: unknown;
  /** HTTP method and path (kind "http"). */
  readonly method?: string | undefined;
  readonly path?: string | undefined;
  /** Request time; the engine never reads the clock for it. */
  readonly time: Date;
  /**
   * The agents a delegated call came through before the calling agent, origin first (from a
   * verified Warden token another agent's broker injected). CEL `request.chain` is these plus
   * the calling agent; absent = a call no agent delegated.
   */
  readonly chain?: readonly AgentRefInput[] | undefined;
}

export interface AgentRefInput {
  readonly name: string;
  readonly namespace: string;
}

export interface ContextInput {
  readonly purpose?: string | undefined;
  readonly ticketId?: string | undefined;
  readonly model?: string | undefined;
  readonly chainStep?: number | bigint | undefined;
  readonly geo?: string | undefined;
}

export type DecisionReason =
  | 'Allowed'
  | 'DeniedByPolicy'
  | 'NoMatchingAllow'
  | 'ConditionFailed'
  | 'EvaluationError'
  | 'InputTooLarge'
  | 'InvalidInput'
  | 'CostExceeded'
  | 'AgentSuspended';

export interface Decision {
  readonly decision: 'Allow' | 'Deny';
  /** Deciding policy as `namespace/name`, or null when no policy decided (default deny, bounds, suspension). */
  readonly policy: string | null;
  /** Index of the deciding rule inside `spec.rules`. */
  readonly rule: number | null;
  /** Name of the condition that failed/errored, or the matched conditions of the deciding rule. */
  readonly condition: string | null;
  readonly reason: DecisionReason;
  readonly message: string;
  readonly evaluationMicros: number;
}
