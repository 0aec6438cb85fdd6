/**
 * The human the agent is acting for, carried through the agent framework's async call chain
 * (AsyncLocalStorage): a request handler runs `withUser(token, () => agent.handle(req))`, and every
 * MCP, HTTP and PostgreSQL call made inside forwards that token without being told again.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** What Warden's policy sees as `user` (the token) and `context` (request metadata). */
export interface RequestScope {
  /** The human's bearer token (the JWT their identity provider issued), without "Bearer ". */
  readonly userToken?: string | undefined;
  /** CEL `context`: purpose, ticketId, model, chainStep, geo. */
  readonly context?: WardenContext | undefined;
  /** Audit correlation id. */
  readonly requestId?: string | undefined;
}

export interface WardenContext {
  readonly purpose?: string;
  readonly ticketId?: string;
  readonly model?: string;
  readonly chainStep?: number;
  readonly geo?: string;
}

const store = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` with `scope` as the current request scope (nested scopes inherit unset fields). */
export function withRequestScope<T>(scope: RequestScope, fn: () => T): T {
  const outer = store.getStore() ?? {};
  return store.run({ ...outer, ...definedOnly(scope) }, fn);
}

/** Runs `fn` acting for the human whose token this is. */
export function withUser<T>(userToken: string, fn: () => T): T {
  return withRequestScope({ userToken: stripBearer(userToken) }, fn);
}

/** The request scope of the current async context ({} outside any). */
export function currentScope(): RequestScope {
  return store.getStore() ?? {};
}

/**
 * The user token in an incoming request's Authorization header (`Bearer …`), for frameworks that
 * hand the agent the human's HTTP request. Null when there is none.
 */
export function userTokenFromHeaders(
  headers: Headers | Record<string, string | string[] | undefined>,
): string | null {
  const raw = headers instanceof Headers ? headers.get('authorization') : headers.authorization;
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (!v) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(v.trim());
  return m ? m[1]! : null;
}

export function stripBearer(token: string): string {
  return token.replace(/^Bearer\s+/i, '').trim();
}

function definedOnly(s: RequestScope): RequestScope {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as RequestScope;
}
