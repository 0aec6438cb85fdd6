/**
 * The broker's PostgreSQL service: one loopback endpoint (endpoint.ts) for every PostgreSQL
 * CredentialProvider of the agent's namespace. The agent picks the provider by the database name
 * it connects to — `postgresql://127.0.0.1:15432/<provider>` (WARDEN_PG_BASE + "/" + name) — and
 * sends no password. Each session goes through the same access pipeline as MCP and HTTP requests
 * (access.ts: gate → policy → the authority's re-check and temporary login → audit), so a
 * connection is one audited Decision, and the login the authority returns stays in this process.
 *
 * PostgreSQL's startup packet has no header for the human's token or request metadata: the agent
 * sends them as connection options (options.ts: `-c warden.user_token=… -c warden.context={…}`),
 * validated exactly like the x-warden-user-token and x-warden-context headers. Without them a
 * session is decided as the agent acting alone (CEL `user.present == false`).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { HEADER_CONTEXT, HEADER_USER_TOKEN } from '../../core/constants.js';
import {
  type AccessDeps,
  authorize,
  type RequestTimer,
  recordRefusal,
  startRequestTimer,
} from '../access.js';
import { BrokerDenyReason } from '../constants.js';
import type { BrokerDecision } from '../decider.js';
import { readRequestMeta } from '../request-meta.js';
import {
  PG_REFUSAL,
  type PgClientInfo,
  type PgDecision,
  type PgEndpoint,
  type PgLogin,
  type PgSessionEvent,
  startPgEndpoint,
} from './endpoint.js';
import { SETTING_CONTEXT, SETTING_USER_TOKEN, sessionSettings } from './options.js';

export interface PgServiceOptions {
  readonly access: AccessDeps;
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  readonly log: Logger;
  readonly startupTimeoutMs?: number;
  readonly upstreamTimeoutMs?: number;
}

/**
 * Pure: the PostgreSQL denial text for a broker decision, with the policy reasons as DETAIL; a
 * QuotaExceeded refusal gets SQLSTATE 53400 and a HINT saying when to retry.
 */
export function pgDenial(decision: {
  readonly reason?: string;
  readonly message: string;
  readonly reasons: ReadonlyArray<{
    readonly policy: string | null;
    readonly rule: number | null;
    readonly message: string;
  }>;
  readonly retryAfterMs?: number | undefined;
}): { message: string; detail?: string; code?: string; hint?: string } {
  const detail = decision.reasons
    .filter((r) => r.policy !== null)
    .map((r) => `${r.policy}${r.rule !== null ? ` rule ${r.rule}` : ''}: ${r.message}`)
    .join('; ');
  const quota =
    decision.reason === BrokerDenyReason.QuotaExceeded && decision.retryAfterMs !== undefined
      ? {
          code: PG_REFUSAL.quotaExceeded,
          hint: `retry in ${Math.max(1, Math.ceil(decision.retryAfterMs / 1000))} s, when the quota window resets`,
        }
      : {};
  return detail ? { message: decision.message, detail, ...quota } : { message: decision.message, ...quota };
}

/** Deny reasons that mean "not now" rather than "no": the session may open on a retry. */
const UNAVAILABLE: ReadonlySet<string> = new Set([
  BrokerDenyReason.AuthorityUnreachable,
  BrokerDenyReason.PolicySnapshotMissing,
  BrokerDenyReason.PolicySnapshotStale,
]);

/**
 * Pure: the endpoint's refusal for a broker denial. Unavailability (the authority or the database
 * behind it unreachable, no fresh policy) is SQLSTATE class 08, which clients and poolers retry;
 * a denial is 28000. An unknown provider named like the login user is most likely psql's default
 * database (the OS user name when none is given): the message says what the name must be.
 */
export function pgRefusal(
  decision: BrokerDecision,
  info: Pick<PgClientInfo, 'user' | 'database'>,
): PgDecision {
  const d = pgDenial(decision);
  const code = d.code ?? (UNAVAILABLE.has(decision.reason) ? PG_REFUSAL.unavailable : PG_REFUSAL.denied);
  const defaulted =
    decision.reason === BrokerDenyReason.UnknownTarget && info.database !== '' && info.database === info.user;
  const message = defaulted
    ? `${d.message}; the database name is the CredentialProvider's name, and none was given (psql and libpq then use the user name '${info.user.slice(0, 64)}'): connect with psql "$WARDEN_PG_BASE/<provider>" or -d <provider>`
    : d.message;
  return {
    allow: false,
    message,
    code,
    ...(d.detail ? { detail: d.detail } : {}),
    ...(d.hint ? { hint: d.hint } : {}),
  };
}

/** Pure: a request-meta error about a header, reworded for the connection option it came from. */
export function settingMessage(message: string): string {
  for (const [header, setting] of [
    [HEADER_USER_TOKEN, SETTING_USER_TOKEN],
    [HEADER_CONTEXT, SETTING_CONTEXT],
  ] as const) {
    if (message.startsWith(`${header}:`)) return `${setting}${message.slice(header.length)}`;
  }
  return message;
}

/**
 * What a PostgreSQL session asks of one agent's broker: the decision (through access.ts), the
 * login the decision obtained, and the session's events for logs and metrics. The sidecar's
 * endpoint (startPgService) has one set; the shared gateway's endpoint picks the set of the
 * agent the caller authenticated as (broker/gateway/postgres.ts), so both decide alike.
 */
export interface PgSessionHooks {
  readonly decide: (info: PgClientInfo) => Promise<PgDecision>;
  readonly getCredential: (info: PgClientInfo) => Promise<PgLogin>;
  readonly onEvent: (e: PgSessionEvent) => void;
}

export function startPgService(o: PgServiceOptions): Promise<PgEndpoint> {
  return startPgEndpoint({
    host: o.host,
    port: o.port,
    target: ({ database }) => database,
    ...(o.startupTimeoutMs !== undefined ? { startupTimeoutMs: o.startupTimeoutMs } : {}),
    ...(o.upstreamTimeoutMs !== undefined ? { upstreamTimeoutMs: o.upstreamTimeoutMs } : {}),
    ...pgSessionHooks(o),
  });
}

/** The session hooks on one agent's access dependencies. */
export function pgSessionHooks(o: Pick<PgServiceOptions, 'access' | 'log'>): PgSessionHooks {
  // The endpoint asks for a decision and then for the login; access.ts yields both at once, so the
  // login waits here between the two calls (keyed by the session's info object, dropped on use).
  const logins = new WeakMap<PgClientInfo, PgLogin>();
  // Session set-up time (decision, login, upstream handshake) per connection, for
  // warden_broker_request_duration_seconds{kind="postgresql"}.
  const timers = new WeakMap<PgClientInfo, RequestTimer>();
  return {
    decide: async (info) => {
      timers.set(info, startRequestTimer(o.access.metrics, 'postgresql'));
      // Refusals before a decision are audited like every denial (access.ts recordRefusal); the
      // user token, when one was sent, is not verified this early.
      const refuse = async (
        message: string,
        userToken: string | null = null,
        code?: string,
      ): Promise<PgDecision> => {
        await recordRefusal(o.access, {
          meta: { userToken, requestId: randomUUID() },
          target: info.target,
          message,
        });
        return { allow: false, message, ...(code ? { code } : {}) };
      };
      if (info.target === '') {
        return refuse(
          'no database name: connect to the CredentialProvider by name, e.g. postgresql://127.0.0.1:15432/<provider>',
        );
      }
      const settings = sessionSettings(info.parameters);
      if (!settings.ok) {
        // A Warden setting that cannot be read is an authorization input gone wrong (28000); a
        // server setting the broker does not forward is a feature it lacks (0A000).
        return refuse(settings.message, null, settings.unsupported ? PG_REFUSAL.unsupported : undefined);
      }
      // The same validation as the HTTP headers these settings stand in for.
      const read = readRequestMeta(
        { [HEADER_USER_TOKEN]: settings.userToken, [HEADER_CONTEXT]: settings.context },
        randomUUID,
      );
      if (!read.ok) return refuse(settingMessage(read.message), settings.userToken ?? null);
      const meta = read.meta;
      const out = await authorize(o.access, {
        meta,
        target: info.target,
        protocol: 'PostgreSQL',
        credential: { kind: 'postgresql' },
        decide: (user, chain) => o.access.decider.decidePostgres(info.target, user, meta.context, chain),
      });
      if (!out.ok) return pgRefusal(out.decision, info);
      const login = out.credential.postgresql;
      if (!login) {
        return {
          allow: false,
          message: `the Warden authority issued no PostgreSQL login for '${info.target}'; check that the CredentialProvider is of type PostgreSQL`,
        };
      }
      logins.set(info, login);
      // The relayed session is in flight until it closes: the kill switch ends it.
      return { allow: true, track: (end) => out.track(() => end()) };
    },
    getCredential: async (info) => {
      const login = logins.get(info);
      logins.delete(info);
      if (!login) throw new Error('no login was issued for this session');
      return login;
    },
    onEvent: (e) => {
      const timer = timers.get(e.info);
      if (timer && e.type !== 'closed') {
        timers.delete(e.info);
        if (e.type === 'opened') timer.allow();
        timer.end();
      }
      const fields = { target: e.info.target, application: e.info.applicationName };
      if (e.type === 'opened') o.log.info({ ...fields, role: e.credentialId }, 'postgresql session opened');
      else if (e.type === 'closed')
        o.log.info({ ...fields, role: e.credentialId }, 'postgresql session closed');
      else if (e.type === 'failed') o.log.warn({ ...fields, error: e.message }, 'postgresql session failed');
    },
  };
}
