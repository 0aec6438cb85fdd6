/**
 * The shared gateway's agents: for each agent pod that calls it, the very broker a sidecar would
 * be — an AuthorityClient holding that agent's session (attested in gateway mode: the caller's
 * token as subject, the gateway's own token as actor), an AuditShipper, and composeBroker's
 * decider, credential cache, MCP gateway, HTTP proxy and kill-switch subscription. A request is
 * handed to that agent's handler after its token was accepted; nothing of the decision path is
 * the gateway's own.
 *
 * A caller's token is accepted when the authority exchanged it for a session (one exchange per
 * new token, again at most every `revalidateMs`: a deleted pod or a revoked agent token stops
 * being served within that bound; the kill switch stops it at once, through the agent's stream).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { WardenMetrics } from '../../observability/metrics.js';
import { AuditShipper } from '../audit.js';
import {
  type AttestationSubject,
  AuthorityClient,
  AuthorityHttpError,
  type SessionWho,
} from '../authority-client.js';
import { type ComposedBroker, composeWithAuthority } from '../compose.js';
import { DEFAULT_STALE_AFTER_MS } from '../constants.js';
import { AuthorityUnavailableError } from '../credentials.js';
import { AuditSpool } from '../spool.js';

export interface GatewayAgentsOptions {
  readonly authorityUrl: string;
  readonly authorityCa?: string | undefined;
  /** The gateway's own projected token (audience warden.dev/broker), read on every exchange. */
  readonly actorToken: () => Promise<string>;
  readonly log: Logger;
  readonly metrics?: WardenMetrics | undefined;
  readonly staleAfterMs?: number | undefined;
  readonly upstreamHeadersTimeoutMs?: number | undefined;
  /** How long an accepted token is served before the authority is asked again (default 60 s). */
  readonly revalidateMs?: number | undefined;
  /** An agent not called for this long is dropped: stream closed, audit flushed (default 10 min). */
  readonly idleMs?: number | undefined;
  /** At most this many agents at once; the least recently used is dropped beyond it. */
  readonly maxAgents?: number | undefined;
  /**
   * Audit spool directory (broker/spool.ts): each agent gets its own spool under it (named by a
   * hash of namespace/agent/pod UID), fsynced before an answer goes out, so a replica killed
   * mid-traffic keeps what the authority did not acknowledge; a restarted replica ships it once
   * that agent calls again (it needs the agent's session). Absent: entries wait in memory.
   */
  readonly auditSpoolDir?: string | undefined;
  readonly auditSpoolMaxBytes?: number | undefined;
  readonly now?: () => number;
}

/** One agent pod served by the gateway. */
export interface GatewayAgent {
  readonly key: string;
  readonly who: SessionWho;
  readonly client: AuthorityClient;
  readonly broker: ComposedBroker;
  readonly audit: AuditShipper;
  readonly spool: AuditSpool | undefined;
  lastUsed: number;
  /** The newest token the agent presented: what its client re-attests with. */
  subject: AttestationSubject | null;
  /** Resolves once the agent's first policy snapshot arrived (or a bounded wait ran out). */
  readonly firstSnapshot: Promise<void>;
}

/** Why a caller was not accepted: the HTTP status and the message the caller gets. */
export class CallerRejected extends Error {
  constructor(
    readonly status: 401 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'CallerRejected';
  }
}

const FIRST_SNAPSHOT_WAIT_MS = 10_000;

export class GatewayAgents {
  private readonly agents = new Map<string, GatewayAgent>();
  /** sha256(token) → agent key, until the token is due for revalidation. */
  private readonly accepted = new Map<string, { key: string; until: number }>();
  private readonly pending = new Map<string, Promise<GatewayAgent>>();
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly o: GatewayAgentsOptions) {
    this.now = o.now ?? Date.now;
    this.sweeper = setInterval(() => void this.sweep(), 30_000);
    this.sweeper.unref();
  }

  get size(): number {
    return this.agents.size;
  }

  /**
   * The agent a token was accepted for, while it is served without asking the authority again;
   * null for a token that is new, due for revalidation, or was never accepted.
   */
  acceptedAgent(token: string): GatewayAgent | null {
    const hit = this.accepted.get(createHash('sha256').update(token).digest('base64url'));
    if (!hit || hit.until <= this.now()) return null;
    return this.agents.get(hit.key) ?? null;
  }

  /** The agent whose token this is, attesting it at the authority when it is new or due. */
  async agentFor(token: string, type: string, expiresAtMs: number | null): Promise<GatewayAgent> {
    const hash = createHash('sha256').update(token).digest('base64url');
    const now = this.now();
    const hit = this.accepted.get(hash);
    if (hit && hit.until > now) {
      const agent = this.agents.get(hit.key);
      if (agent) {
        agent.lastUsed = now;
        return agent;
      }
    }
    let p = this.pending.get(hash);
    if (!p) {
      p = this.attest(token, type).finally(() => this.pending.delete(hash));
      this.pending.set(hash, p);
    }
    const agent = await p;
    const until = Math.min(now + (this.o.revalidateMs ?? 60_000), expiresAtMs ?? Number.POSITIVE_INFINITY);
    this.accepted.set(hash, { key: agent.key, until });
    agent.lastUsed = this.now();
    return agent;
  }

  /** Handles one authenticated request with the agent's own broker. */
  async handle(agent: GatewayAgent, req: IncomingMessage, res: ServerResponse): Promise<void> {
    await agent.firstSnapshot;
    agent.broker.handler(req, res);
  }

  private async attest(token: string, type: string): Promise<GatewayAgent> {
    const subject: AttestationSubject = { token, type, actorToken: await this.actor() };
    const candidate = this.client(() => Promise.resolve(subject));
    try {
      await candidate.attest();
    } catch (err) {
      candidate.stop();
      if (err instanceof AuthorityHttpError && err.status >= 400 && err.status < 500 && err.status !== 429) {
        // The authority's description says what was wrong with the token (never the token).
        throw new CallerRejected(401, err.message.replace(/^\/v1\/token answered \d+ /, ''));
      }
      throw new CallerRejected(
        503,
        `the Warden authority could not be asked about this token (${err instanceof AuthorityUnavailableError || err instanceof AuthorityHttpError ? err.message : 'error'}); retry later`,
      );
    }
    const who = candidate.sessionWho();
    if (!who) {
      candidate.stop();
      throw new CallerRejected(503, 'the Warden authority answered with a session the gateway cannot read');
    }
    const key = `${who.namespace}/${who.agent}/${who.podUID}`;
    const existing = this.agents.get(key);
    if (existing) {
      // A newer token of an agent already served: it re-attests with this one from now on.
      candidate.stop();
      existing.subject = subject;
      return existing;
    }
    return this.add(key, who, candidate, subject);
  }

  private async add(
    key: string,
    who: SessionWho,
    client: AuthorityClient,
    subject: AttestationSubject,
  ): Promise<GatewayAgent> {
    const log = this.o.log.child({ agent: `${who.namespace}/${who.agent}`, pod: who.pod });
    const spool = this.o.auditSpoolDir
      ? await AuditSpool.open({
          dir: join(this.o.auditSpoolDir, createHash('sha256').update(key).digest('hex').slice(0, 32)),
          maxBytes: this.o.auditSpoolMaxBytes,
          log: log.child({ component: 'audit-spool' }),
        })
      : undefined;
    const raced = this.agents.get(key);
    if (raced) {
      // Another token of the same agent was accepted while the spool opened.
      await spool?.close();
      client.stop();
      raced.subject = subject;
      return raced;
    }
    const audit = new AuditShipper({
      transport: client,
      log: log.child({ component: 'audit' }),
      ...(spool ? { queue: spool } : {}),
    });
    const broker = composeWithAuthority(client, {
      audit,
      log,
      podName: who.pod,
      staleAfterMs: this.o.staleAfterMs,
      upstreamHeadersTimeoutMs: this.o.upstreamHeadersTimeoutMs,
      ...(this.o.metrics ? { metrics: this.o.metrics } : {}),
    });
    const firstSnapshot = new Promise<void>((resolve) => {
      if (client.snapshot) return resolve();
      const timer = setTimeout(resolve, FIRST_SNAPSHOT_WAIT_MS);
      timer.unref();
      const off = client.onChange(() => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
    const agent: GatewayAgent = {
      key,
      who,
      client,
      broker,
      audit,
      spool,
      lastUsed: this.now(),
      subject,
      firstSnapshot,
    };
    // The client re-attests (refresh refused, 401) with the newest token the agent presented.
    client.resubject(async () => ({ ...(agent.subject ?? subject), actorToken: await this.actor() }));
    this.agents.set(key, agent);
    void client.start();
    log.info({ agents: this.agents.size }, 'serving agent');
    this.evictBeyondLimit();
    return agent;
  }

  private client(subject: () => Promise<AttestationSubject>): AuthorityClient {
    return new AuthorityClient({
      authorityUrl: this.o.authorityUrl,
      authorityCa: this.o.authorityCa,
      subject,
      log: this.o.log.child({ component: 'authority-client' }),
      streamIdleMs: Math.max(20_000, (this.o.staleAfterMs ?? DEFAULT_STALE_AFTER_MS) * 1.5),
    });
  }

  private async actor(): Promise<string> {
    try {
      return await this.o.actorToken();
    } catch (err) {
      throw new CallerRejected(
        503,
        `the gateway cannot read its own service-account token (${err instanceof Error ? err.message : 'error'})`,
      );
    }
  }

  private evictBeyondLimit(): void {
    const max = this.o.maxAgents ?? 5000;
    if (this.agents.size <= max) return;
    const oldest = [...this.agents.values()].sort((a, b) => a.lastUsed - b.lastUsed)[0];
    if (oldest) void this.drop(oldest);
  }

  private async sweep(): Promise<void> {
    const now = this.now();
    for (const [hash, a] of this.accepted) if (a.until <= now) this.accepted.delete(hash);
    const idle = this.o.idleMs ?? 600_000;
    for (const agent of [...this.agents.values()]) {
      if (now - agent.lastUsed > idle && agent.broker.inFlight.size === 0) await this.drop(agent);
    }
  }

  private async drop(agent: GatewayAgent): Promise<void> {
    this.agents.delete(agent.key);
    for (const [hash, a] of this.accepted) if (a.key === agent.key) this.accepted.delete(hash);
    agent.broker.dispose();
    // Ships what it holds before the client's session goes.
    await agent.audit.close();
    await agent.spool?.close();
    agent.client.stop();
    this.o.log.info({ agent: agent.key, agents: this.agents.size }, 'agent dropped (idle)');
  }

  /** Stops following every agent; their audit is shipped first. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.agents.values()];
    this.agents.clear();
    this.accepted.clear();
    for (const a of all) a.broker.dispose();
    await Promise.all(all.map((a) => a.audit.close()));
    await Promise.all(all.map((a) => a.spool?.close()));
    for (const a of all) a.client.stop();
  }
}
