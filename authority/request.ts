/** Per-request state shared by the server and the endpoint handlers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditEvent } from './audit.js';
import { OAuthError } from './errors.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  /** Remote address the rate limiter keys on. */
  source: string;
  /** True when the source has used up its failure budget (see ratelimit.ts). */
  limited: boolean;
  /** Seconds the caller should wait when limited. */
  retryAfter: number;
  /** Audit fields learnt while handling; the server completes and records the event. */
  audit: Partial<AuditEvent> & Pick<AuditEvent, 'kind'>;
  /** Set Cache-Control: no-store (token responses, RFC 6749 §5.1). */
  noStore?: boolean;
  /** Set when the handler wrote the response itself (SSE). */
  streaming?: boolean;
  /** The 429 a limited caller gets instead of work. */
  slowDown(): OAuthError;
}

export function slowDownError(retryAfter: number): OAuthError {
  return new OAuthError(
    'slow_down',
    `too many failed attempts from this address; retry in ${retryAfter} s`,
    'rate limited',
  );
}
