/**
 * The replay data of a Decision audit entry (AuditEntry.replay): what the policy engine was given,
 * recorded so `kubectl warden replay` can decide the call again offline against proposed
 * AccessPolicies with the same engine (core/policy). Pure.
 *
 * Recorded: the request kind, the tool arguments, the verified user (sub, issuer, groups,
 * department, mapped claims), the request context, and the engine's own verdict. The tool,
 * target, method, path and time are the entry's own fields. What is not recorded: anything that
 * looks like a secret (isSecretFieldName / looksLikeSecret → "[REDACTED]"), and data beyond the
 * bounds below ("[TRUNCATED]"); each such path is listed in `withheld`, so replay can say which
 * re-decisions are approximate. The whole block is at most REPLAY_MAX_BYTES of JSON.
 */
import type { AuditEntry, AuditReplay, AuditReplayUser } from '../api/index.js';
import { AGENT_ACTING_ALONE } from '../identity/user.js';
import type { ContextInput, PolicyInput, UserInput } from '../policy/types.js';
import { isSecretFieldName, looksLikeSecret } from './secret-values.js';

/** Largest replay block, as JSON (what the authority accepts; what recordReplay can produce). */
export const REPLAY_MAX_BYTES = 8192;
/** Largest recorded tool arguments, as JSON text (measured as it is stored: a JSON string, escapes included). */
export const REPLAY_ARGS_MAX_BYTES = 2048;
/** Largest recorded user claims, as JSON text. */
export const REPLAY_CLAIMS_MAX_BYTES = 512;
/** Longer argument or claim strings are not recorded. */
export const REPLAY_STRING_MAX = 512;
/** Nesting kept in arguments and claims. */
export const REPLAY_MAX_DEPTH = 6;
/** Paths listed in `withheld`. */
export const REPLAY_MAX_WITHHELD = 16;
export const REPLAY_MAX_GROUPS = 32;
/** Characters of all recorded group names together. */
export const REPLAY_MAX_GROUP_CHARS = 1024;
/** Characters of one withheld path. */
const MAX_PATH_CHARS = 96;
/** Values examined in arguments or claims; past this the rest is withheld (bounds the cost per call). */
export const REPLAY_MAX_NODES = 2000;

/** Stands for a value that looked like a secret. */
export const REPLAY_REDACTED = '[REDACTED]';
/** Stands for a value left out for size. */
export const REPLAY_TRUNCATED = '[TRUNCATED]';

export type ReplayKind = AuditReplay['kind'];

/** Engine reasons whose input the recorded form cannot reproduce (the bounds refused the input itself). */
const UNREPRODUCIBLE: ReadonlySet<string> = new Set(['InputTooLarge', 'InvalidInput']);

/** What the engine decided on, as the decision point has it. */
export interface ReplaySource {
  readonly kind: ReplayKind;
  readonly args?: unknown;
  readonly user?: UserInput | null | undefined;
  readonly context?: ContextInput | null | undefined;
}

export interface EngineVerdict {
  readonly decision: 'Allow' | 'Deny';
  readonly reason: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key.slice(0, 64))}]`;
}

/** Paths withheld, bounded: past the limit the last slot says how many more. */
class Withheld {
  private readonly paths: string[] = [];
  private extra = 0;
  /** Values scrubbed so far (REPLAY_MAX_NODES). */
  nodes = 0;
  add(path: string): void {
    if (this.paths.length < REPLAY_MAX_WITHHELD - 1) this.paths.push(path.slice(0, MAX_PATH_CHARS));
    else this.extra++;
  }
  list(): string[] {
    return this.extra > 0 ? [...this.paths, `(and ${this.extra} more)`] : [...this.paths];
  }
  get size(): number {
    return this.paths.length + this.extra;
  }
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v === 'number' || typeof v === 'boolean';
}

/** A JSON-like copy without secrets, long strings or deep nesting. */
function scrub(value: unknown, path: string, depth: number, w: Withheld): unknown {
  if (++w.nodes > REPLAY_MAX_NODES) {
    w.add(path);
    return REPLAY_TRUNCATED;
  }
  switch (typeof value) {
    case 'string':
      if (looksLikeSecret(value)) {
        w.add(path);
        return REPLAY_REDACTED;
      }
      if (value.length > REPLAY_STRING_MAX) {
        w.add(path);
        return REPLAY_TRUNCATED;
      }
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'boolean':
      return value;
    case 'object': {
      if (value === null) return null;
      if (depth >= REPLAY_MAX_DEPTH) {
        w.add(path);
        return REPLAY_TRUNCATED;
      }
      if (Array.isArray(value)) return value.map((v, i) => scrub(v, child(path, i), depth + 1, w));
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === undefined) continue;
        const p = child(path, k);
        if (isSecretFieldName(k) && !isScalar(v)) {
          w.add(p);
          out[k] = REPLAY_REDACTED;
        } else out[k] = scrub(v, p, depth + 1, w);
      }
      return out;
    }
    default:
      // bigint, functions, symbols: not JSON, never reached by parsed MCP arguments.
      w.add(path);
      return REPLAY_TRUNCATED;
  }
}

/**
 * The scrubbed object as JSON text of at most `max` bytes: the largest top-level values are
 * replaced by REPLAY_TRUNCATED until it fits; if the keys alone do not fit, nothing is kept.
 */
function storedSize(text: string): number {
  return Buffer.byteLength(JSON.stringify(text));
}

/**
 * Whether `text` stored as a JSON string fits in `max` bytes. Without measuring when it surely
 * does: a UTF-16 unit becomes at most 6 bytes (a \uXXXX escape; UTF-8 needs at most 3), plus the
 * quotes. Most tool arguments are far below that, and measuring cost a copy per decision.
 */
function fitsStored(text: string, max: number): boolean {
  return text.length * 6 + 2 <= max || storedSize(text) <= max;
}

function boundedJson(obj: Record<string, unknown>, path: string, max: number, w: Withheld): string {
  let text = JSON.stringify(obj);
  if (fitsStored(text, max)) return text;
  const bySize = Object.keys(obj)
    .map((k) => ({ k, size: Buffer.byteLength(JSON.stringify(obj[k])) }))
    .sort((a, b) => b.size - a.size);
  const copy = { ...obj };
  for (const { k, size } of bySize) {
    if (size <= REPLAY_TRUNCATED.length + 2) break;
    copy[k] = REPLAY_TRUNCATED;
    w.add(child(path, k));
    text = JSON.stringify(copy);
    if (fitsStored(text, max)) return text;
  }
  w.add(path);
  return '{}';
}

function clip(value: string, max: number, path: string, w: Withheld): string {
  if (value.length <= max) return value;
  w.add(path);
  return value.slice(0, max);
}

function recordUser(user: UserInput, w: Withheld): AuditReplayUser {
  const out: AuditReplayUser = { sub: clip(String(user.sub), 256, 'user.sub', w) };
  if (user.issuer) out.issuer = clip(user.issuer, 256, 'user.issuer', w);
  if (user.groups?.length) {
    const groups: string[] = [];
    let chars = 0;
    for (const g of user.groups) {
      if (g.length > 128 || groups.length >= REPLAY_MAX_GROUPS || chars + g.length > REPLAY_MAX_GROUP_CHARS)
        continue;
      groups.push(g);
      chars += g.length;
    }
    if (groups.length < user.groups.length) w.add('user.groups');
    out.groups = groups;
  }
  if (user.department) out.department = clip(user.department, 128, 'user.department', w);
  const claims = user.claims;
  if (claims && typeof claims === 'object' && Object.keys(claims).length > 0) {
    const scrubbed = scrub(claims, 'user.claims', 0, w) as Record<string, unknown>;
    out.claims = boundedJson(scrubbed, 'user.claims', REPLAY_CLAIMS_MAX_BYTES, w);
  }
  return out;
}

function recordContext(c: ContextInput, w: Withheld): AuditReplay['context'] {
  const out: NonNullable<AuditReplay['context']> = {};
  for (const k of ['purpose', 'ticketId', 'model', 'geo'] as const) {
    const v = c[k];
    if (typeof v === 'string') out[k] = clip(v, 256, `context.${k}`, w);
  }
  const step = c.chainStep;
  if (typeof step === 'number' && Number.isSafeInteger(step) && step >= 0) out.chainStep = step;
  else if (typeof step === 'bigint' && step >= 0n && step <= BigInt(Number.MAX_SAFE_INTEGER))
    out.chainStep = Number(step);
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The replay block for one decision: scrubbed, bounded (≤ REPLAY_MAX_BYTES as JSON). */
export function recordReplay(source: ReplaySource, verdict: EngineVerdict): AuditReplay {
  const w = new Withheld();
  const replay: AuditReplay = {
    kind: source.kind,
    policyDecision: verdict.decision,
    policyReason: verdict.reason.slice(0, 64),
  };
  const reproducible = !UNREPRODUCIBLE.has(verdict.reason);
  if (reproducible && source.kind === 'mcp' && source.args !== undefined && source.args !== null) {
    const args = source.args;
    if (typeof args === 'object' && !Array.isArray(args)) {
      const scrubbed = scrub(args, 'request.args', 0, w) as Record<string, unknown>;
      replay.args = boundedJson(scrubbed, 'request.args', REPLAY_ARGS_MAX_BYTES, w);
    } else {
      // Not an object: the engine refused it (InvalidInput); nothing worth keeping.
      w.add('request.args');
    }
  }
  if (source.user) replay.user = recordUser(source.user, w);
  if (source.context) {
    const context = recordContext(source.context, w);
    if (context) replay.context = context;
  }
  if (w.size > 0) replay.withheld = w.list();
  // The parts' bounds keep the block within REPLAY_MAX_BYTES; this guard keeps it so if they change.
  if (Buffer.byteLength(JSON.stringify(replay)) > REPLAY_MAX_BYTES) {
    delete replay.args;
    if (replay.user) delete replay.user.claims;
    replay.withheld = [
      ...(replay.withheld ?? []).slice(0, REPLAY_MAX_WITHHELD - 2),
      'request.args',
      'user.claims',
    ];
  }
  return replay;
}

/** Why an entry cannot be decided again. */
export type ReplaySkip =
  /** Not a decision, or a refusal before any policy decision (bad request, suspension, unknown target). */
  | 'not-a-policy-decision'
  /** A Decision entry written before replay data was recorded. */
  | 'no-replay-data'
  /** The engine refused the input itself (InputTooLarge, InvalidInput): the recorded form cannot reproduce it. */
  | 'input-not-reproducible'
  /** The replay block cannot be read (an edited or foreign entry). */
  | 'malformed';

export type ReplayInput =
  | {
      readonly ok: true;
      readonly kind: ReplayKind;
      /** The PolicyInput to decide again (kind "session": decideSessionTraffic, without tool or args). */
      readonly input: PolicyInput;
      /** The engine's recorded verdict: the baseline a re-decision is compared with. */
      readonly recorded: EngineVerdict;
      /** Some value the engine saw is withheld (redacted or truncated): a changed verdict may be an artefact. */
      readonly approximate: boolean;
    }
  | { readonly ok: false; readonly skip: ReplaySkip; readonly detail?: string };

function parseObjectText(text: string | undefined): Record<string, unknown> | null | undefined {
  if (text === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Reasons of the policy engine (core/policy DecisionReason): every other reason is a refusal before it. */
const ENGINE_REASONS: ReadonlySet<string> = new Set([
  'Allowed',
  'DeniedByPolicy',
  'NoMatchingAllow',
  'ConditionFailed',
  'EvaluationError',
  'InputTooLarge',
  'InvalidInput',
  'CostExceeded',
]);

/**
 * The reason constant a denial's message starts with (the authority prefixes it:
 * `AgentSuspended: …`), or undefined.
 */
function deniedFor(entry: AuditEntry): string | undefined {
  return /^([A-Z][A-Za-z]+): /.exec(entry.message ?? '')?.[1];
}

/**
 * Session traffic recorded before its decision read the user (replay data without `user` on an
 * entry that names one): replayed as the agent acting alone, so a changed verdict is approximate.
 */
function sessionUserNotRecorded(entry: AuditEntry, r: AuditReplay): boolean {
  return r.kind === 'session' && !r.user && !!entry.user && entry.user !== AGENT_ACTING_ALONE;
}

/** The policy input an entry recorded, or why it cannot be replayed. */
export function replayInputOf(entry: AuditEntry): ReplayInput {
  const r = entry.replay;
  if (!r) {
    if (entry.kind !== 'Decision') return { ok: false, skip: 'not-a-policy-decision' };
    // A refusal before any policy decision (suspended, unknown target, bad request, stale
    // snapshot) never carries replay data, old or new: not a policy decision to replay.
    const reason = entry.decision === 'Deny' ? deniedFor(entry) : undefined;
    if (reason !== undefined && !ENGINE_REASONS.has(reason)) {
      return { ok: false, skip: 'not-a-policy-decision', detail: reason };
    }
    return { ok: false, skip: 'no-replay-data' };
  }
  if (r.policyReason && UNREPRODUCIBLE.has(r.policyReason)) {
    return { ok: false, skip: 'input-not-reproducible', detail: r.policyReason };
  }
  const time = new Date(entry.time);
  if (!entry.target || Number.isNaN(time.getTime())) {
    return { ok: false, skip: 'malformed', detail: 'the entry has no target or time' };
  }
  const args = parseObjectText(r.args);
  if (args === null) return { ok: false, skip: 'malformed', detail: 'replay.args is not a JSON object' };
  let user: UserInput | null = null;
  if (r.user) {
    const claims = parseObjectText(r.user.claims);
    if (claims === null)
      return { ok: false, skip: 'malformed', detail: 'replay.user.claims is not a JSON object' };
    user = {
      sub: r.user.sub,
      ...(r.user.issuer !== undefined ? { issuer: r.user.issuer } : {}),
      ...(r.user.groups !== undefined ? { groups: r.user.groups } : {}),
      ...(r.user.department !== undefined ? { department: r.user.department } : {}),
      ...(claims !== undefined ? { claims } : {}),
    };
  }
  const target = entry.target;
  let request: PolicyInput['request'];
  switch (r.kind) {
    case 'mcp':
      if (!entry.tool) return { ok: false, skip: 'malformed', detail: 'an mcp decision without a tool' };
      request = { kind: 'mcp', target, tool: entry.tool, args: args ?? {}, time };
      break;
    case 'http':
      if (!entry.method || entry.path === undefined)
        return { ok: false, skip: 'malformed', detail: 'an http decision without method or path' };
      request = { kind: 'http', target, method: entry.method, path: entry.path, time };
      break;
    case 'postgresql':
      request = { kind: 'postgresql', target, time };
      break;
    case 'session':
      // Decided by decideSessionTraffic: user, context and chain as recorded, no tool or args.
      request = { kind: 'mcp', target, time };
      break;
    default:
      return { ok: false, skip: 'malformed', detail: `unknown replay kind ${String(r.kind)}` };
  }
  // A delegated call: the entry's chain ends with the deciding agent, which the engine appends
  // itself (request.chain), so the prior agents are all but the last. A broker Deny recorded the
  // chain as the token claimed it (claimedChain): that is what the engine decided on.
  const decidedChain = entry.chain ?? entry.claimedChain;
  if (decidedChain && decidedChain.length > 1) {
    request = {
      ...request,
      chain: decidedChain.slice(0, -1).map((a) => ({ name: a.name, namespace: a.namespace })),
    };
  }
  return {
    ok: true,
    kind: r.kind,
    input: { user, request, context: r.context ?? null },
    recorded: { decision: r.policyDecision, reason: r.policyReason ?? '' },
    approximate: (r.withheld?.length ?? 0) > 0 || sessionUserNotRecorded(entry, r),
  };
}
