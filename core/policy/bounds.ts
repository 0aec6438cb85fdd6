/**
 * Limits that keep evaluation bounded when tool arguments are attacker-controlled.
 * Input limits are enforced when the CEL input is built (violations deny with
 * reason InputTooLarge); the expression cost limit at compile time; the
 * decision cost budget during evaluation (CostExceeded).
 */
export interface PolicyBounds {
  /** Approximate serialized size of request.args + user.claims + context, in bytes (UTF-16 code units). */
  readonly maxInputBytes: number;
  /** Deepest nesting of objects/arrays in request.args and user.claims. */
  readonly maxDepth: number;
  /** Total number of values (scalars, lists, maps) in request.args and user.claims. */
  readonly maxNodes: number;
  /** Longest list or map. */
  readonly maxListLength: number;
  /** Longest string anywhere in the input (including map keys, tool name, path). */
  readonly maxStringLength: number;
  /** Compile-time ceiling on one expression's estimated worst-case cost. */
  readonly maxExpressionCost: number;
  /** Per-decision budget: the sum of the estimated costs of the conditions evaluated. */
  readonly maxDecisionCost: number;
}

export const DEFAULT_BOUNDS: PolicyBounds = Object.freeze({
  maxInputBytes: 64 * 1024,
  maxDepth: 16,
  maxNodes: 4096,
  maxListLength: 256,
  maxStringLength: 8192,
  maxExpressionCost: 1_000_000,
  maxDecisionCost: 10_000_000,
});
