/**
 * Audit export: every audit event leaves the controller as one JSON line on stdout in a stable,
 * versioned schema (docs/audit-export.md), for Fluent Bit, Vector or any log pipeline — and,
 * optionally, as an OTLP log record (audit/otlp.ts). The AuditRecord trail is bounded by retention;
 * these lines are the copy that can be kept for as long as an audit needs.
 *
 * A line is written when the controller accepts the event, before its AuditRecord is written, so
 * an entry the writer had to drop (API server unreachable for long) is still in the export.
 */
import type { AuditEntry } from '../core/api/index.js';

/**
 * The schema of an audit line. Lines of one schema only gain optional fields; a field that is
 * renamed, removed or changes meaning gets a new schema (`warden.audit/v2`).
 */
export const AUDIT_LINE_SCHEMA = 'warden.audit/v1';

/** Who produced the event. */
export type AuditLineSource = 'broker' | 'authority' | 'controller';

/** One audit line (docs/audit-export.md, "Schema"). */
export interface AuditLine {
  schema: typeof AUDIT_LINE_SCHEMA;
  /** When it happened (RFC 3339). */
  time: string;
  /**
   * The entry's stable id from the broker's spool: a batch shipped again after a crash or a lost
   * answer is exported again with the same id (at least once: deduplicate on it).
   */
  id?: string;
  source: AuditLineSource;
  kind: AuditEntry['kind'];
  decision?: 'Allow' | 'Deny';
  namespace?: string;
  agent?: string;
  pod?: string;
  podUID?: string;
  /** The agent's session (its Warden session token's jti), an id, never the token. */
  session?: string;
  /** The user's subject, or "agent acting alone" (docs/audit-export.md). */
  user?: string;
  /** The trusted issuer that vouched for the user. */
  userIssuer?: string;
  /** A delegated call: the agents it came through, origin first, the deciding agent last. */
  chain?: AuditEntry['chain'];
  /** A broker's Deny before the caller's token was verified: the chain the token claimed (never evidence). */
  claimedChain?: AuditEntry['claimedChain'];
  target?: string;
  tool?: string;
  method?: string;
  path?: string;
  policy?: string;
  reasons?: AuditEntry['reasons'];
  credentialId?: string;
  requestId?: string;
  message?: string;
  /** Decision entries: what the policy engine decided on, scrubbed (docs/audit.md, "Replay data"). */
  replay?: AuditEntry['replay'];
  /** Authority events: the endpoint called (/v1/token, /v1/credentials, …). */
  endpoint?: string;
  /** Authority events: the caller's address. */
  remoteAddress?: string;
  /** Authority events: what only the audit sees (e.g. the API server's rejection text). */
  detail?: string;
  /** Broker events: the broker's reason constant (AgentSuspended, NoMatchingAllow, …). */
  reason?: string;
  /** Broker events: names of headers the broker stripped from the request (never values). */
  stripped?: string[];
  /** Whether the event is also an entry of the agent's AuditRecord chain. */
  trail: boolean;
}

/** Where audit lines go. `export` never throws and never blocks on the network. */
export interface AuditExporter {
  export(line: AuditLine): void;
  /** Flushes what is buffered; resolves when sent or given up. */
  shutdown?(): Promise<void>;
}

/** The fields of an entry, in the schema's order, without empty ones. */
export function toLine(
  source: AuditLineSource,
  entry: AuditEntry,
  where: Pick<AuditLine, 'namespace' | 'agent' | 'podUID' | 'session'>,
  extra: Pick<AuditLine, 'endpoint' | 'remoteAddress' | 'detail' | 'reason' | 'stripped'> & {
    trail: boolean;
  },
): AuditLine {
  const line: AuditLine = {
    schema: AUDIT_LINE_SCHEMA,
    time: entry.time,
    ...(entry.id ? { id: entry.id } : {}),
    source,
    kind: entry.kind,
    trail: false,
  };
  const set = <K extends keyof AuditLine>(k: K, v: AuditLine[K] | undefined) => {
    if (v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0)) line[k] = v;
  };
  set('decision', entry.decision);
  set('namespace', where.namespace);
  set('agent', where.agent);
  set('pod', entry.pod);
  set('podUID', where.podUID);
  set('session', where.session);
  set('user', entry.user);
  set('userIssuer', entry.userIssuer);
  set('chain', entry.chain);
  set('claimedChain', entry.claimedChain);
  set('target', entry.target);
  set('tool', entry.tool);
  set('method', entry.method);
  set('path', entry.path);
  set('policy', entry.policy);
  set('reasons', entry.reasons);
  set('credentialId', entry.credentialId);
  set('requestId', entry.requestId);
  set('message', entry.message);
  set('replay', entry.replay);
  set('endpoint', extra.endpoint);
  set('remoteAddress', extra.remoteAddress);
  set('detail', extra.detail);
  set('reason', extra.reason);
  set('stripped', extra.stripped);
  // Last, so the fields above keep the schema's order in the JSON text.
  delete (line as Partial<AuditLine>).trail;
  line.trail = extra.trail;
  return line;
}

/**
 * Checks `--audit-otlp-endpoint` (here, not in otlp.ts, so the CLI parses flags without loading
 * the OpenTelemetry SDK): an http(s) URL. Throws an Error a person can act on.
 */
export function parseOtlpEndpoint(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(
      `--audit-otlp-endpoint: "${text}" is not a URL; use e.g. http://otel-collector.observability:4318/v1/logs`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(
      `--audit-otlp-endpoint: ${url.protocol} is not supported; use an http:// or https:// URL (OTLP/HTTP)`,
    );
  }
  if (url.username || url.password) {
    throw new Error(
      '--audit-otlp-endpoint: credentials in the URL would be logged; set OTEL_EXPORTER_OTLP_LOGS_HEADERS instead',
    );
  }
  return url.toString();
}

/** One JSON line per event on a stream (stdout in the controller). */
export class JsonLineExporter implements AuditExporter {
  constructor(private readonly write: (text: string) => void) {}

  export(line: AuditLine): void {
    try {
      this.write(`${JSON.stringify(line)}\n`);
    } catch {
      // A closed stdout must not take the authority down; the trail still has the entry.
    }
  }
}
