/**
 * The broker's kill switch: follows the snapshot source and, when a new snapshot no longer lets
 * the agent act (suspension, policy loss, staleness), ends every in-flight MCP exchange, HTTP
 * request and PostgreSQL session through the one in-flight registry. On any snapshot change
 * cached credentials and verified users are forgotten, so nothing outlives the decision.
 */
import type { Logger } from 'pino';
import type { CredentialCache, UserCache } from './credentials.js';
import type { Decider, SnapshotSource } from './decider.js';
import type { InFlightRegistry } from './in-flight.js';

export interface SuspensionDeps {
  readonly source: SnapshotSource;
  readonly decider: Decider;
  readonly credentials: CredentialCache;
  readonly users: UserCache;
  readonly inFlight: InFlightRegistry;
  readonly log: Logger;
}

/** Starts following the source; returns the function that stops it. */
export function followSuspension(d: SuspensionDeps): () => void {
  let lastVersion: string | null = null;
  const onChange = (): void => {
    const cur = d.decider.current();
    const version = cur.ok ? cur.snapshot.version : (cur.decision.snapshotVersion ?? null);
    if (version !== lastVersion) {
      d.credentials.clear();
      d.users.clear();
    }
    lastVersion = version;
    const blocked = d.decider.blocked();
    if (blocked) {
      const ended = d.inFlight.abortAll(blocked, (err) =>
        d.log.error({ err: err instanceof Error ? err.name : 'error' }, 'ending an in-flight request failed'),
      );
      d.log.warn(
        { reason: blocked.reason, inFlight: ended },
        'agent may no longer act: in-flight requests and sessions cut, credentials dropped',
      );
    }
  };
  return d.source.onChange?.(onChange) ?? (() => {});
}
