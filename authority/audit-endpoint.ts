/**
 * POST /v1/audit — where brokers ship their audit events (broker/audit.ts AuditShipper).
 *
 * Brokers cannot forge the audit trail: the authority authenticates the session and stamps the
 * namespace, agent, pod and pod UID from the SESSION, never from the body. What the body may say
 * (decision, user, target, tool, reasons, ...) is the broker's account of a call it decided, and is
 * clipped to the AuditRecord schema's limits. Batches are bounded (MAX_AUDIT_EVENTS events,
 * MAX_AUDIT_BYTES bytes); a malformed event rejects the whole batch with the index and field at
 * fault, so the broker keeps it queued instead of the trail silently losing part of it.
 *
 * One delivery per entry: the batch goes first to the trail (BrokerAuditTrail, the audit writer's
 * persisted and in-flight entry ids), which admits the entries it meets for the first time and
 * exports them; the counters (BrokerEventSink: decision stats, circuit breaker, tool usage) get
 * only those. A batch shipped again is therefore written, exported and counted once.
 *
 * Acknowledged after persist: the answer waits until the trail has every event of the batch in
 * AuditRecords, at most ACK_TIMEOUT_MS; past that it is 503 and the broker, which keeps them in its
 * spool until a 200, ships them again (saying `resent`) — each entry's `id` makes that idempotent.
 *
 * Body: {"events": [BrokerAuditEvent, ...], "resent"?: true}  →  200 {"accepted": n} once persisted
 */
import type { AuditEntry } from '../core/api/index.js';
import { auditReplaySchema } from '../core/api/schemas.js';
import { ENTRY_ID_PATTERN } from '../core/audit/entry-id.js';
import { REPLAY_MAX_BYTES } from '../core/audit/replay.js';
import { MAX_CHAIN_DEPTH } from '../core/constants.js';
import { sessionJsonRequest } from './authn.js';
import { OAuthError } from './errors.js';
import { resolvedWithin } from './http.js';
import type { RequestContext } from './request.js';
import type { Sessions } from './session.js';

/** Largest batch accepted (the broker ships up to this many at a time when events pile up). */
export const MAX_AUDIT_EVENTS = 500;
/** Largest body accepted. */
export const MAX_AUDIT_BYTES = 1024 * 1024;
/**
 * How long an answer waits for the events to be persisted before it is 503 (the broker ships them
 * again): under the broker's 5 s request timeout, above a record write on a loaded API server.
 */
export const ACK_TIMEOUT_MS = 3000;

/** Who shipped the events, from the verified session. */
export type { AuditSubject, BrokerAuditTrail, BrokerEvent, BrokerEventSink } from '../core/ports/audit.js';

import type {
  AuditSubject,
  BrokerAuditAdmission,
  BrokerAuditTrail,
  BrokerEvent,
  BrokerEventSink,
} from '../core/ports/audit.js';

/** Without an audit trail (tests, a log-only authority): every event is new, nothing is persisted. */
const NO_TRAIL: BrokerAuditTrail = {
  admitBrokerEvents: async (_who, events): Promise<BrokerAuditAdmission> => ({
    fresh: events,
    persisted: Promise.resolve(),
  }),
};

export interface AuditEndpointDeps {
  sessions: Sessions;
  /** The one dedupe and the persistence (default: every event new, nothing to wait for). */
  trail?: BrokerAuditTrail;
  /** Told of the events the trail admitted as new only. */
  sinks: readonly BrokerEventSink[];
  now?: () => Date;
  /** Default ACK_TIMEOUT_MS. */
  ackTimeoutMs?: number;
}

const KINDS = new Set<AuditEntry['kind']>(['Decision', 'Credential', 'Suspension', 'Revocation', 'Session']);
const DECISIONS = new Set(['Allow', 'Deny']);

class EventError extends OAuthError {
  constructor(index: number, field: string, what: string) {
    super('invalid_request', `events[${index}].${field}: ${what}`);
  }
}

function str(e: Record<string, unknown>, i: number, field: string, max: number): string | undefined {
  const v = e[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new EventError(i, field, 'must be a string');
  return v.slice(0, max);
}

/** Pure: validates one event of the batch and maps it to an AuditRecord entry. */
export function parseBrokerEvent(raw: unknown, i: number, now: Date): BrokerEvent {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new OAuthError('invalid_request', `events[${i}]: must be an object`);
  }
  const e = raw as Record<string, unknown>;
  const kind = e.kind;
  if (typeof kind !== 'string' || !KINDS.has(kind as AuditEntry['kind'])) {
    throw new EventError(i, 'kind', `must be one of ${[...KINDS].join(', ')}`);
  }
  const decision = e.decision;
  if (typeof decision !== 'string' || !DECISIONS.has(decision)) {
    throw new EventError(i, 'decision', 'must be Allow or Deny');
  }
  // The broker's clock is trusted only to order its own events; an unparsable or absurd time
  // (more than a day off) becomes the authority's receive time.
  const t = str(e, i, 'time', 64);
  const parsed = t ? Date.parse(t) : Number.NaN;
  const time =
    Number.isFinite(parsed) && Math.abs(parsed - now.getTime()) < 86_400_000
      ? new Date(parsed).toISOString()
      : now.toISOString();
  const entry: AuditEntry = {
    time,
    kind: kind as AuditEntry['kind'],
    decision: decision as AuditEntry['decision'],
  };
  const set = <K extends keyof AuditEntry>(k: K, v: AuditEntry[K] | undefined) => {
    if (v !== undefined) entry[k] = v;
  };
  const id = str(e, i, 'id', 64);
  if (id !== undefined) {
    if (!ENTRY_ID_PATTERN.test(id)) {
      throw new EventError(i, 'id', 'must be <16 hex digits>-<sequence from 1>, as the broker spools it');
    }
    entry.id = id;
  }
  set('user', str(e, i, 'user', 512));
  set('userIssuer', str(e, i, 'userIssuer', 512));
  if (e.chain !== undefined && e.chain !== null) entry.chain = parseChain(e.chain, i, 'chain');
  if (e.claimedChain !== undefined && e.claimedChain !== null) {
    entry.claimedChain = parseChain(e.claimedChain, i, 'claimedChain');
  }
  set('target', str(e, i, 'target', 253));
  set('tool', str(e, i, 'tool', 256));
  set('method', str(e, i, 'method', 16));
  set('path', str(e, i, 'path', 2048));
  set('credentialId', str(e, i, 'credentialId', 256));
  set('requestId', str(e, i, 'requestId', 128));
  set('policy', str(e, i, 'policy', 253));
  set('message', str(e, i, 'message', 1024));
  if (e.reasons !== undefined && e.reasons !== null) {
    if (!Array.isArray(e.reasons)) throw new EventError(i, 'reasons', 'must be a list');
    const reasons = e.reasons.slice(0, 16).map((r: unknown, j) => {
      if (r === null || typeof r !== 'object') throw new EventError(i, `reasons[${j}]`, 'must be an object');
      const o = r as Record<string, unknown>;
      const rule = o.rule;
      if (rule !== undefined && rule !== null && !Number.isSafeInteger(rule)) {
        throw new EventError(i, `reasons[${j}].rule`, 'must be an integer');
      }
      const policy = str(o, i, 'policy', 253);
      const condition = str(o, i, 'condition', 63);
      return {
        ...(policy ? { policy } : {}),
        ...(typeof rule === 'number' ? { rule } : {}),
        ...(condition ? { condition } : {}),
        message: str(o, i, 'message', 1024) ?? '',
      };
    });
    if (reasons.length > 0) entry.reasons = reasons as AuditEntry['reasons'];
  }
  if (e.replay !== undefined && e.replay !== null) entry.replay = parseReplay(e.replay, i);
  const reason = str(e, i, 'reason', 128);
  // The schema has no field for the reason constant; the message carries it, so the trail (and
  // `kubectl warden audit`) says AgentSuspended / NoMatchingRule, not only the prose.
  if (reason && entry.decision === 'Deny' && !entry.message?.startsWith(reason)) {
    entry.message = `${reason}: ${entry.message ?? ''}`.slice(0, 1024);
  }
  let stripped: string[] | undefined;
  if (Array.isArray(e.stripped)) {
    stripped = e.stripped
      .filter((h): h is string => typeof h === 'string')
      .slice(0, 16)
      .map((h) => h.slice(0, 64));
  }
  return { entry, ...(reason ? { reason } : {}), ...(stripped?.length ? { stripped } : {}) };
}

/** The delegation chain of an entry: at most MAX_CHAIN_DEPTH agents, each a name and a namespace. */
function parseChain(
  raw: unknown,
  i: number,
  field: 'chain' | 'claimedChain',
): NonNullable<AuditEntry['chain']> {
  if (!Array.isArray(raw)) throw new EventError(i, field, 'must be a list of {name, namespace}');
  if (raw.length > MAX_CHAIN_DEPTH) {
    throw new EventError(i, field, `has ${raw.length} agents; at most ${MAX_CHAIN_DEPTH}`);
  }
  return raw.map((a: unknown, j) => {
    if (a === null || typeof a !== 'object') throw new EventError(i, `${field}[${j}]`, 'must be an object');
    const o = a as Record<string, unknown>;
    const name = str(o, i, 'name', 253);
    const namespace = str(o, i, 'namespace', 63);
    if (!name || !namespace) throw new EventError(i, `${field}[${j}]`, 'needs name and namespace');
    return { name, namespace };
  });
}

/**
 * The replay data (core/audit/replay.ts) as the AuditRecord schema takes it. The broker builds it
 * within these bounds, so anything else is a broken or tampered broker: refused with the field.
 */
function parseReplay(raw: unknown, i: number): NonNullable<AuditEntry['replay']> {
  const r = auditReplaySchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? `.${issue.path.map(String).join('.')}` : '';
    throw new EventError(i, `replay${where}`, issue?.message ?? 'invalid');
  }
  const bytes = Buffer.byteLength(JSON.stringify(r.data));
  if (bytes > REPLAY_MAX_BYTES) {
    throw new EventError(i, 'replay', `${bytes} bytes exceeds the limit of ${REPLAY_MAX_BYTES}`);
  }
  return r.data as NonNullable<AuditEntry['replay']>;
}

/** Pure: the whole body → validated events. */
export function parseAuditBatch(body: Record<string, unknown>, now: Date): BrokerEvent[] {
  const events = body.events;
  if (!Array.isArray(events)) throw new OAuthError('invalid_request', 'events: must be a list');
  if (events.length > MAX_AUDIT_EVENTS) {
    throw new OAuthError(
      'invalid_request',
      `events: at most ${MAX_AUDIT_EVENTS} per request, got ${events.length}; ship smaller batches`,
    );
  }
  return events.map((e, i) => parseBrokerEvent(e, i, now));
}

export async function handleAudit(
  ctx: RequestContext,
  deps: AuditEndpointDeps,
): Promise<Record<string, unknown>> {
  ctx.audit.kind = 'Session';
  const { claims, body } = await sessionJsonRequest(ctx, deps.sessions, MAX_AUDIT_BYTES);
  const events = parseAuditBatch(body, (deps.now ?? (() => new Date()))());
  const w = claims.warden;
  const who: AuditSubject = {
    namespace: w.namespace,
    agent: w.agent,
    pod: w.pod,
    podUID: w.podUID,
    session: claims.jti,
  };
  // The pod is the session's, whatever the body claimed.
  for (const e of events) e.entry.pod = w.pod;
  // A body may say its events were shipped before (any other value than true is a first shipping).
  const resent = body.resent === true;
  const stored = (deps.trail ?? NO_TRAIL).admitBrokerEvents(who, events, { resent }).then((admitted) => {
    // Counted once each: what the trail met for the first time, even if this answer is late.
    if (admitted.fresh.length > 0) {
      for (const s of deps.sinks) {
        try {
          s.recordBrokerEvents(who, admitted.fresh);
        } catch {
          // A counter that fails must not fail the acknowledgement of persisted entries.
        }
      }
    }
    return admitted.persisted;
  });
  const persisted = await resolvedWithin(
    stored.then(
      () => true,
      // The trail could not tell what it holds (the API server unreachable): the broker ships again.
      () => false,
    ),
    deps.ackTimeoutMs ?? ACK_TIMEOUT_MS,
    false,
  );
  if (!persisted) {
    ctx.audit.message = `${events.length} broker audit events not persisted in time`;
    throw new OAuthError(
      'temporarily_unavailable',
      `the ${events.length} audit events are queued but not yet persisted (is the API server reachable?); keep them and ship them again`,
    );
  }
  ctx.audit.message = `${events.length} broker audit events persisted`;
  return { accepted: events.length };
}

/** Writes each broker event as one log line (the default when no audit trail is wired). */
export class LogBrokerEventSink implements BrokerEventSink {
  constructor(private readonly log: { info(obj: object, msg: string): void }) {}
  recordBrokerEvents(who: AuditSubject, events: readonly BrokerEvent[]): void {
    for (const e of events) {
      this.log.info(
        { audit: { ...e.entry, source: 'broker', namespace: who.namespace, agent: who.agent } },
        'audit',
      );
    }
  }
}
