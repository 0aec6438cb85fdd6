import type { CelActivation } from './cel-env.js';
import type { CompiledCondition } from './compiled.js';

/** First line of a CEL error (the library appends a source excerpt on later lines). */
export function errorSummary(err: unknown): string {
  const summary =
    err && typeof err === 'object' && 'summary' in err && typeof err.summary === 'string'
      ? err.summary
      : ((err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '');
  // Library messages name fields and types; cap them so no large value can ride along into audit.
  return summary.length > 200 ? `${summary.slice(0, 200)}…` : summary;
}

/**
 * Evaluate one condition: `true` / `false`, or the error text when it cannot be
 * evaluated (a missing optional field, a non-bool result, a bad time zone …).
 */
export function evaluateCondition(condition: CompiledCondition, activation: CelActivation): boolean | string {
  let value: unknown;
  try {
    value = condition.expression.evaluate(activation);
  } catch (err) {
    return errorSummary(err);
  }
  if (value === true || value === false) return value;
  // Name the type, never the value: it may come from tool arguments or claims.
  return `evaluated to a ${celTypeName(value)}, not a bool`;
}

function celTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  switch (typeof value) {
    case 'number':
      return 'double';
    case 'bigint':
      return 'int';
    case 'object':
      return value instanceof Date ? 'timestamp' : 'map';
    default:
      return typeof value;
  }
}
