/**
 * Revoking an agent's outstanding credentials (the kill switch's active part). The operator's
 * revocation reconciler (operator/reconcilers/revocation.ts) decides WHEN; this module does it:
 *
 * - PostgreSQL: every Warden login role of the agent in each PostgreSQL CredentialProvider's
 *   database is set NOLOGIN and its sessions are terminated (PostgresMinter.revokeAgent). The
 *   database itself is the list of what was issued, so this is complete across replicas and
 *   restarts, and idempotent (revoking a revoked role is a no-op that counts the same role).
 * - Credentials with an upstream revoke (OAuth tokens whose provider has a revocationUrl, RFC 7009):
 *   revoked through the `revoke` the minter returned, remembered in IssuedCredentials.
 * - Warden JWTs: nothing to call. They are dead by the stateless introspection rule
 *   (authority/introspect.ts: iat ≤ status.revocation.requestedAt, or agent suspended); counted.
 * - AWS (web identity federation): the authority forgets the agent's cached temporary credentials
 *   (the `revoke` AwsMinter returned) and brokers drop theirs on suspension, so Warden never signs
 *   with them again. The STS session itself stays valid at AWS until it expires — STS has no
 *   revocation — unless the role carries a deny on sessions issued before the suspension
 *   (aws:TokenIssueTime, docs/aws.md). Counted as `unsupported`, not as revoked.
 * - APIKey / BasicAuth: standing secrets are only forwarded; the authority refuses to hand them
 *   out to a suspended agent (central decision) and brokers drop their cache on suspension.
 *
 * Limitation: IssuedCredentials is per process and bounded. With several authority replicas the
 * leader (which runs the reconciler) revokes upstream only the OAuth tokens IT issued; tokens
 * issued by other replicas expire on their own (short TTLs) — documented in docs/killswitch.md.
 */
import type { WardenMetrics } from '../observability/metrics.js';
import type { PostgresMinter } from './mint/postgresql.js';
import type { ProviderType, SecretsReader } from './mint/types.js';

/** One credential the authority handed out. Never holds the secret itself. */
export interface IssuedCredential {
  /** Non-secret id (jti, role name, token digest). */
  id: string;
  type: ProviderType;
  /** `namespace/name` of the CredentialProvider. */
  provider: string;
  expiresAt: number;
  /** Ends it upstream (RFC 7009 and the like); absent when the upstream cannot. */
  revoke?: () => Promise<void>;
}

/**
 * What this authority issued and may still be live, per agent. Bounded: past `max` entries the
 * ones expiring soonest are forgotten first (they matter least), and expired ones are pruned on
 * every write.
 */
export class IssuedCredentials {
  private readonly byAgent = new Map<string, IssuedCredential[]>();
  private size = 0;
  /** Entries forgotten because of the bound (reported, never silent). */
  forgotten = 0;

  constructor(
    private readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  remember(namespace: string, agent: string, c: IssuedCredential): void {
    const key = `${namespace}/${agent}`;
    const list = this.byAgent.get(key) ?? [];
    list.push(c);
    this.byAgent.set(key, list);
    this.size++;
    if (this.size > this.max) this.prune();
  }

  /** Live (unexpired) credentials of an agent. */
  outstanding(namespace: string, agent: string): IssuedCredential[] {
    const now = this.now();
    return (this.byAgent.get(`${namespace}/${agent}`) ?? []).filter((c) => c.expiresAt > now);
  }

  forget(namespace: string, agent: string, ids: ReadonlySet<string>): void {
    const key = `${namespace}/${agent}`;
    const list = this.byAgent.get(key);
    if (!list) return;
    const kept = list.filter((c) => !ids.has(c.id));
    this.size -= list.length - kept.length;
    if (kept.length) this.byAgent.set(key, kept);
    else this.byAgent.delete(key);
  }

  count(): number {
    return this.size;
  }

  private prune(): void {
    const now = this.now();
    for (const [key, list] of this.byAgent) {
      const kept = list.filter((c) => c.expiresAt > now);
      this.size -= list.length - kept.length;
      if (kept.length) this.byAgent.set(key, kept);
      else this.byAgent.delete(key);
    }
    while (this.size > this.max) {
      let soonest: { key: string; i: number; at: number } | undefined;
      for (const [key, list] of this.byAgent) {
        list.forEach((c, i) => {
          if (!soonest || c.expiresAt < soonest.at) soonest = { key, i, at: c.expiresAt };
        });
      }
      if (!soonest) break;
      const list = this.byAgent.get(soonest.key) as IssuedCredential[];
      list.splice(soonest.i, 1);
      if (list.length === 0) this.byAgent.delete(soonest.key);
      this.size--;
      this.forgotten++;
    }
  }
}

/** A CredentialProvider as the reconciler gathered it. */
export type {
  AgentRevoker,
  RevocationFailure,
  RevocationOutcome,
  RevocationProvider,
} from '../core/ports/credentials.js';

import type {
  AgentRevoker,
  RevocationFailure,
  RevocationOutcome,
  RevocationProvider,
} from '../core/ports/credentials.js';

export interface CredentialRevokerOptions {
  postgres: Pick<PostgresMinter, 'revokeAgent'>;
  secrets: SecretsReader;
  issued: IssuedCredentials;
  /** warden_revocations_total{type,result}; absent = no metrics. */
  metrics?: Pick<WardenMetrics, 'revocation'> | undefined;
}

/**
 * The failure's message without a leading `<what>: ` (MintErrors already start with the provider,
 * and the reconciler prints `what: message`: the Event read "CredentialProvider ns/db:
 * CredentialProvider ns/db: …").
 */
export function failureMessage(what: string, err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.startsWith(`${what}: `) ? text.slice(what.length + 2) : text).slice(0, 512);
}

export class CredentialRevoker implements AgentRevoker {
  constructor(private readonly o: CredentialRevokerOptions) {}

  async revokeAgent(
    namespace: string,
    agent: string,
    providers: readonly RevocationProvider[],
  ): Promise<RevocationOutcome> {
    let revoked = 0;
    const failures: RevocationFailure[] = [];
    for (const p of providers) {
      if (p.spec.type !== 'PostgreSQL' || p.namespace !== namespace) continue;
      try {
        const roles = await this.o.postgres.revokeAgent(
          { namespace: p.namespace, name: p.name, spec: p.spec },
          this.o.secrets,
          { namespace, name: agent },
        );
        revoked += roles.length;
        for (const _ of roles) this.o.metrics?.revocation('PostgreSQL', 'success');
      } catch (err) {
        this.o.metrics?.revocation('PostgreSQL', 'failure');
        // The message names the provider and what failed, never a secret (MintError contract).
        const what = `CredentialProvider ${p.namespace}/${p.name}`;
        failures.push({ what, message: failureMessage(what, err) });
      }
    }
    const done = new Set<string>();
    for (const c of this.o.issued.outstanding(namespace, agent)) {
      if (c.type === 'PostgreSQL') {
        done.add(c.id); // counted above, from the database itself
        continue;
      }
      if (!c.revoke) {
        // JWT: the introspection rule revokes it; APIKey/BasicAuth: nothing was minted.
        if (c.type === 'JWT') revoked++;
        this.o.metrics?.revocation(c.type, c.type === 'JWT' ? 'success' : 'unsupported');
        done.add(c.id);
        continue;
      }
      if (c.type === 'AWS') {
        // Forgetting is all Warden can do (see above): not counted as revoked.
        await c.revoke();
        this.o.metrics?.revocation(c.type, 'unsupported');
        done.add(c.id);
        continue;
      }
      try {
        await c.revoke();
        revoked++;
        this.o.metrics?.revocation(c.type, 'success');
        done.add(c.id);
      } catch (err) {
        this.o.metrics?.revocation(c.type, 'failure');
        const what = `credential ${c.id} (${c.provider})`;
        failures.push({ what, message: failureMessage(what, err) });
      }
    }
    this.o.issued.forget(namespace, agent, done);
    return { revoked, failures };
  }
}
