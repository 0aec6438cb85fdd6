/**
 * Claims computed by CEL at issuance (CredentialProvider spec.jwt.claims and the policy rule's
 * credential.claims), evaluated against the same variables policy conditions see. CEL values are
 * converted to JSON; registered claims Warden sets itself cannot be overridden, so a policy
 * author cannot mint a token for another subject or audience.
 */
import { DEFAULT_BOUNDS } from '../../core/policy/bounds.js';
import { type CompiledExpression, compileExpression } from '../../core/policy/expression.js';
import { buildActivation, celAgent } from '../../core/policy/input.js';
import type { PolicyInput } from '../../core/policy/types.js';
import { MintError, type MintRequest } from './types.js';

/** Claims Warden sets; expressions may not produce them. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'act',
  'scope',
  'client_id',
  'may_act',
]);

export interface NamedExpression {
  readonly name: string;
  readonly expression: CompiledExpression;
  /** Field path for error messages, e.g. `spec.jwt.claims.department`. */
  readonly field: string;
}

const compiled = new Map<string, CompiledExpression>();

/** Compiles a claim expression from a CredentialProvider (policies arrive compiled); cached by source. */
export function compileClaim(source: string, field: string): CompiledExpression {
  const hit = compiled.get(source);
  if (hit) return hit;
  const result = compileExpression(source, false, DEFAULT_BOUNDS);
  if (!result.ok) {
    const hint = result.problem.hint ? ` (${result.problem.hint})` : '';
    throw new MintError('InvalidClaim', `${field}: ${result.problem.summary}${hint}`);
  }
  if (compiled.size > 1000) compiled.clear();
  compiled.set(source, result.expression);
  return result.expression;
}

/** CEL value → JSON value. Ints (bigint) become numbers when exact, else strings. */
export function celToJson(value: unknown, field: string): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value))
        throw new MintError('InvalidClaim', `${field}: evaluated to a non-finite number`);
      return value;
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString();
    default:
      break;
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64url');
  if (Array.isArray(value)) return value.map((v, i) => celToJson(v, `${field}[${i}]`));
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(k)] = celToJson(v, `${field}.${String(k)}`);
    return out;
  }
  if (typeof value === 'object') {
    // Registered CEL messages (warden.User, Duration, ...) are plain-property objects.
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = celToJson(v, `${field}.${k}`);
    return out;
  }
  throw new MintError('InvalidClaim', `${field}: evaluated to an unsupported value`);
}

/**
 * Evaluates every claim expression against `input`. Later entries override earlier ones (policy
 * claims are passed after provider claims: the rule is the more specific statement).
 */
export function evaluateClaims(
  expressions: readonly NamedExpression[],
  input: PolicyInput,
  /** Names an expression may not produce (session tags and policies have none). */
  reserved: ReadonlySet<string> = RESERVED_CLAIMS,
): Record<string, unknown> {
  if (expressions.length === 0) return {};
  if (!input.agent) throw new MintError('InvalidClaim', 'claims need the agent to evaluate against');
  const built = buildActivation(input, celAgent(input.agent), DEFAULT_BOUNDS);
  if (!built.ok) throw new MintError('InvalidClaim', `claims input rejected: ${built.problem.message}`);
  const claims: Record<string, unknown> = {};
  for (const { name, expression, field } of expressions) {
    if (reserved.has(name)) {
      throw new MintError('InvalidClaim', `${field}: '${name}' is set by Warden and cannot be overridden`);
    }
    let value: unknown;
    try {
      value = expression.evaluate(built.activation);
    } catch (err) {
      const first = (err as Error).message.split('\n')[0];
      throw new MintError(
        'InvalidClaim',
        `${field}: evaluation failed: ${first} (guard optional fields with has())`,
      );
    }
    claims[name] = celToJson(value, field);
  }
  return claims;
}

/** The CEL input claims are evaluated against: the same variables the deciding rule saw. */
export function mintPolicyInput(req: MintRequest, now: Date): PolicyInput {
  const protocol = req.provider.spec.target.protocol ?? 'MCP';
  const kind = protocol === 'PostgreSQL' ? 'postgresql' : protocol === 'HTTP' ? 'http' : 'mcp';
  const user = req.user?.present
    ? {
        sub: req.user.sub,
        issuer: req.user.issuer,
        groups: req.user.groups,
        department: req.user.department,
        claims: req.user.claims,
      }
    : null;
  return {
    agent: req.agent,
    user,
    request: req.request ?? { kind, target: req.provider.name, time: now },
    context: req.context ?? null,
  };
}
