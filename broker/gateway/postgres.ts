/**
 * The shared gateway's PostgreSQL endpoint: the sidecar's endpoint (broker/pg/endpoint.ts) on a
 * listener other pods reach, TLS only, and each session authenticated as its agent before
 * anything is decided. The caller's token is the session's password (docs/gateway.md,
 * "PostgreSQL"): every libpq-based client, psql and node-postgres send a password when the server
 * asks for one, and `sslmode=verify-full` keeps it inside TLS to the right server. The token is
 * checked like a bearer token at the HTTP listener (GatewayAgents.agentFor: exchanged at the
 * authority, revalidated), then the session goes to that agent's own PostgreSQL hooks
 * (compose.ts pgSessions): decided, credentialed, audited and killable through access.ts as
 * through a sidecar. The token goes no further than this process; the database sees the
 * temporary role the authority minted.
 */
import type { Logger } from 'pino';
import type { Listen } from '../main.js';
import type { PgClientInfo, PgEndpoint, PgSessionEvent, PgTlsMaterial } from '../pg/endpoint.js';
import { PG_REFUSAL, startPgEndpoint } from '../pg/endpoint.js';
import { CallerRejected, type GatewayAgent, type GatewayAgents } from './agents.js';
import { callerToken } from './auth.js';
import { type CallerRateLimiter, callerKey } from './rate-limit.js';

export interface GatewayPostgresOptions {
  readonly agents: GatewayAgents;
  readonly listen: Listen;
  /** The gateway's certificate: the same one its HTTPS listener serves. */
  readonly tls: PgTlsMaterial;
  readonly log: Logger;
  readonly startupTimeoutMs?: number | undefined;
  readonly upstreamTimeoutMs?: number | undefined;
  /** The gateway's per-caller limit (shared with its HTTPS listener): a session is one request. */
  readonly limiter?: CallerRateLimiter | undefined;
}

export function startGatewayPostgres(o: GatewayPostgresOptions): Promise<PgEndpoint> {
  // The agent each session authenticated as, from authenticate to the session's end.
  const agentOf = new WeakMap<PgClientInfo, GatewayAgent>();
  const hooksOf = (info: PgClientInfo) => {
    const agent = agentOf.get(info);
    // authenticate runs first for every session; this is the fail-closed guard of that order.
    if (!agent) throw new Error('the session was not authenticated');
    return agent.broker.pgSessions;
  };
  return startPgEndpoint({
    host: o.listen.host,
    port: o.listen.port,
    tls: o.tls,
    target: ({ database }) => database,
    ...(o.startupTimeoutMs !== undefined ? { startupTimeoutMs: o.startupTimeoutMs } : {}),
    ...(o.upstreamTimeoutMs !== undefined ? { upstreamTimeoutMs: o.upstreamTimeoutMs } : {}),
    authenticate: async (password, info) => {
      const token = callerToken(password, 'password');
      if (!token.ok) {
        return {
          code: PG_REFUSAL.invalidPassword,
          message: `${token.message}: the Warden gateway takes the agent's token as the password (a projected token with audience warden.dev/gateway, or a Warden agent token), e.g. PGPASSWORD="$(cat /var/run/secrets/warden/token)"`,
        };
      }
      if (o.limiter) {
        const d = o.limiter.take(callerKey(o.agents, token.token, info.remoteAddress));
        if (!d.ok) {
          return {
            code: PG_REFUSAL.tooManyConnections,
            message: `this caller opened sessions faster than the Warden gateway's per-caller limit; retry in ${d.retryAfterSeconds} s`,
          };
        }
      }
      let agent: GatewayAgent;
      try {
        agent = await o.agents.agentFor(token.token, token.type, token.expiresAtMs);
      } catch (err) {
        if (!(err instanceof CallerRejected)) throw err;
        o.log.info({ status: err.status, reason: err.message, target: info.target }, 'caller not accepted');
        return refusalFor(err);
      }
      await agent.firstSnapshot;
      agentOf.set(info, agent);
      return null;
    },
    decide: (info) => hooksOf(info).decide(info),
    getCredential: (info) => hooksOf(info).getCredential(info),
    onEvent: (e: PgSessionEvent) => {
      const agent = agentOf.get(e.info);
      if (agent) agent.broker.pgSessions.onEvent(e);
      else if (e.type === 'denied') o.log.info({ target: e.info.target }, 'postgresql caller refused');
    },
  });
}

/** A caller the authority did not accept is 28P01 (libpq does not retry it); unavailability is class 08. */
function refusalFor(err: CallerRejected): { code: string; message: string } {
  return err.status === 401
    ? { code: PG_REFUSAL.invalidPassword, message: `the agent's token was not accepted: ${err.message}` }
    : { code: PG_REFUSAL.unavailable, message: err.message };
}
