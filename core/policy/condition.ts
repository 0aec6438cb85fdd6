import type { CelActivation } from './cel-env.js';
import type { CompiledCondition } from './compiled.js';

/** First line of a CEL error (the library appends a source excerpt on later lines). */
export function errorSummary(err: unknown): string {
  if (err && typeof err === 'object' && 'summary' in err && typeof err.summary === 'string')
    return err.summary;
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
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
  return `evaluated to ${typeof value === 'bigint' ? `${value}` : (JSON.stringify(value) ?? typeof value)}, not a bool`;
}
