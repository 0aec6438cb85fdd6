import { errorSummary } from './condition.js';
import { buildActivation } from './input.js';
import type { PolicySet } from './policy-set.js';
import type { Decision, PolicyInput } from './types.js';

/**
 * The credential block of the rule that allowed a request, with its claim
 * expressions evaluated against the same input — what the authority needs to
 * mint a credential after an Allow.
 */
export interface RuleCredentialGrant {
  readonly ttl: string | undefined;
  readonly scopes: readonly string[];
  /** Claim name → JSON value (CEL ints become numbers, timestamps RFC 3339 strings, maps objects). */
  readonly claims: Readonly<Record<string, unknown>>;
}

export type CredentialForResult =
  | { readonly ok: true; readonly credential: RuleCredentialGrant | null }
  | { readonly ok: false; readonly message: string };

/** CEL value → JSON value for a token claim. */
export function toJsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER))
      return value.toString();
    return Number(value);
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value instanceof Map)
    return Object.fromEntries([...value].map(([k, v]) => [String(k), toJsonValue(v)]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
  }
  return value;
}

/**
 * For an Allow decision: the deciding rule's credential block (null when the
 * rule has none) with claims evaluated. A claim that cannot be evaluated is an
 * error — the caller should refuse to mint rather than mint without it.
 */
export function credentialFor(set: PolicySet, decision: Decision, input: PolicyInput): CredentialForResult {
  if (decision.decision !== 'Allow' || decision.policy === null || decision.rule === null) {
    return { ok: false, message: 'no credential for a request that was not allowed' };
  }
  const policy = set.policies.find((p) => p.id === decision.policy);
  const rule = policy?.rules.find((r) => r.index === decision.rule);
  if (!policy || !rule) {
    return {
      ok: false,
      message: `AccessPolicy ${decision.policy} rule ${decision.rule} is not in this agent's policy set`,
    };
  }
  if (!rule.credential) return { ok: true, credential: null };
  const built = buildActivation(input, set.celAgent, set.bounds);
  if (!built.ok) return { ok: false, message: built.problem.message };
  const claims: Record<string, unknown> = {};
  for (const claim of rule.credential.claims) {
    try {
      claims[claim.name] = toJsonValue(claim.expression.evaluate(built.activation));
    } catch (err) {
      return {
        ok: false,
        message: `claim '${claim.name}' of AccessPolicy ${policy.id} rule ${rule.index} could not be evaluated (${errorSummary(err)})`,
      };
    }
  }
  return { ok: true, credential: { ttl: rule.credential.ttl, scopes: rule.credential.scopes, claims } };
}
