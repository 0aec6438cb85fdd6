/**
 * How long a minted credential lives: the shortest of what the policy rule asks for, what the
 * provider allows, and the agent's ceiling. A malformed duration is a configuration error the
 * CRD schema should already have rejected; it is reported with its field path, never guessed at.
 */
import { parseDuration } from '../../core/api/duration.js';
import { MintError } from './types.js';

/** spec.maxCredentialTTL default. */
export const DEFAULT_AGENT_MAX_TTL = '1h';

export interface TtlSources {
  /** Deciding rule's credential.ttl (optional). */
  readonly policy?: string | undefined;
  /** Provider's own bound (jwt.defaultTTL, postgresql.roleTTL) with its field path. */
  readonly provider?: { readonly value: string; readonly field: string } | undefined;
  /** AgentIdentity spec.maxCredentialTTL (default 1h). */
  readonly agentMax?: string | undefined;
}

function parse(value: string, field: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) {
    throw new MintError(
      'InvalidProvider',
      `${field}: '${value}' is not a positive duration; write it like "5m", "1h" or "90s"`,
    );
  }
  return ms;
}

/** Effective TTL in milliseconds: min(policy, provider, agent max). */
export function effectiveTtlMs(sources: TtlSources): number {
  const candidates = [
    parse(sources.agentMax ?? DEFAULT_AGENT_MAX_TTL, 'AgentIdentity spec.maxCredentialTTL'),
  ];
  if (sources.provider) candidates.push(parse(sources.provider.value, sources.provider.field));
  if (sources.policy !== undefined)
    candidates.push(parse(sources.policy, 'AccessPolicy rule credential.ttl'));
  return Math.min(...candidates);
}
