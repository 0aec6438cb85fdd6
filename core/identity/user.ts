/**
 * Blended identity: the human a call is made for, as policy sees it (CEL `user`).
 *
 * Pure mapping from already-verified token claims to the `user` variable. Signature, issuer,
 * audience and lifetime checks happen in the authority (authority/user-token.ts); this module only
 * decides which claims policy may read, so a token cannot smuggle arbitrary data into decisions.
 */

/** The CEL `user` variable. `present: false` means the agent acts alone. */
export interface UserContext {
  present: boolean;
  sub: string;
  issuer: string;
  groups: string[];
  department: string;
  /** Only the claim names the AgentIdentity's trusted issuer lists in `claims`. */
  claims: Record<string, unknown>;
}

/** How an AgentIdentity maps one trusted issuer's claims (spec.userContext.trustedIssuers[]). */
export interface IssuerClaimMapping {
  groupsClaim?: string;
  departmentClaim?: string;
  claims?: string[];
}

/** `user` when no human is involved: every field has a value so CEL never meets a missing key. */
export const NO_USER: UserContext = Object.freeze({
  present: false,
  sub: '',
  issuer: '',
  groups: [],
  department: '',
  claims: {},
}) as UserContext;

/** How the audit trail names a call without a human. */
export const AGENT_ACTING_ALONE = 'agent acting alone';

/** Upper bounds so a hostile token cannot blow up policy evaluation. */
export const USER_LIMITS = { maxGroups: 256, maxStringLength: 1024, maxClaimBytes: 4096 } as const;

const DEFAULT_GROUPS_CLAIM = 'groups';
const DEFAULT_DEPARTMENT_CLAIM = 'department';

/** Reads a claim by name; a name with dots that is not a top-level key is read as a path ("realm_access.roles"). */
function readClaim(payload: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let current: unknown = payload;
  for (const part of name.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function boundedString(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, USER_LIMITS.maxStringLength) : '';
}

/**
 * Groups are a list of strings in most IdPs, a single string in some (and space separated in a
 * few); anything else is ignored rather than guessed at.
 */
function toGroups(value: unknown): string[] {
  let list: unknown[];
  if (Array.isArray(value)) list = value;
  else if (typeof value === 'string') list = value.split(/[\s,]+/);
  else return [];
  const groups: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string' || item === '') continue;
    groups.push(item.slice(0, USER_LIMITS.maxStringLength));
    if (groups.length >= USER_LIMITS.maxGroups) break;
  }
  return groups;
}

/** Keeps a claim only if it is JSON data of bounded size; objects are copied, never shared. */
function boundedClaim(value: unknown): unknown {
  if (value === undefined) return undefined;
  const json = JSON.stringify(value);
  if (json === undefined || Buffer.byteLength(json) > USER_LIMITS.maxClaimBytes) return undefined;
  return JSON.parse(json);
}

/** Maps verified token claims to `user` using one trusted issuer's mapping. */
export function userFromClaims(
  payload: Record<string, unknown>,
  issuer: string,
  mapping: IssuerClaimMapping,
): UserContext {
  const claims: Record<string, unknown> = {};
  for (const name of mapping.claims ?? []) {
    const value = boundedClaim(readClaim(payload, name));
    if (value !== undefined) claims[name] = value;
  }
  return {
    present: true,
    sub: boundedString(payload.sub),
    issuer,
    groups: toGroups(readClaim(payload, mapping.groupsClaim || DEFAULT_GROUPS_CLAIM)),
    department: boundedString(readClaim(payload, mapping.departmentClaim || DEFAULT_DEPARTMENT_CLAIM)),
    claims,
  };
}

/** spec.userContext.mode */
export type UserContextMode = 'Optional' | 'Required' | 'Forbidden';

/** Outcome of checking a call's user against the AgentIdentity's userContext.mode. */
export type UserModeCheck =
  | { ok: true }
  | { ok: false; reason: 'UserRequired' | 'UserForbidden'; message: string };

/** Enforces spec.userContext.mode: Required needs a human; Forbidden refuses one. */
export function checkUserMode(mode: UserContextMode | undefined, userPresent: boolean): UserModeCheck {
  if (mode === 'Required' && !userPresent) {
    return {
      ok: false,
      reason: 'UserRequired',
      message:
        'this agent only acts for a human user (spec.userContext.mode: Required); forward the user token',
    };
  }
  if (mode === 'Forbidden' && userPresent) {
    return {
      ok: false,
      reason: 'UserForbidden',
      message: 'this agent must act alone (spec.userContext.mode: Forbidden); do not forward a user token',
    };
  }
  return { ok: true };
}

/**
 * The audit trail's name for who a call was made for: the subject, and the issuer apart — the same
 * spelling the broker records (core/audit/user.ts), so one `--user` finds both.
 */
export function auditUser(user: UserContext): { user: string; userIssuer?: string } {
  return user.present ? { user: user.sub, userIssuer: user.issuer } : { user: AGENT_ACTING_ALONE };
}
