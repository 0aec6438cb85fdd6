/**
 * Classifying errors from the Kubernetes API. client-node 1.4 throws ApiException
 * with `code` (HTTP status); its Watch reports `statusCode`. Callers only need to
 * know "conflict", "not found", "gone" or "something else".
 */

/** The object changed since we read it (HTTP 409). The work queue retries these without backoff. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
  constructor(
    /** What was being written, e.g. `AgentIdentity team-a/bot status`. */
    readonly target: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${target}: the object was modified since it was read (409 Conflict); it will be re-read and retried`,
      options,
    );
  }
}

/** HTTP status carried by an error from client-node, if any. */
export function statusCodeOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function isConflict(err: unknown): boolean {
  return err instanceof ConflictError || statusCodeOf(err) === 409;
}

export function isNotFound(err: unknown): boolean {
  return statusCodeOf(err) === 404;
}

/** 410 Gone: the resourceVersion we resume from is too old; the caller must relist. */
export function isGone(err: unknown): boolean {
  return statusCodeOf(err) === 410;
}

/**
 * A short, secret-free description of an error for logs. client-node's ApiException
 * message embeds response headers and body; we keep only the status and the API's
 * own message.
 */
export function describeError(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const code = statusCodeOf(err);
  const body = (err as { body?: unknown }).body;
  let apiMessage: string | undefined;
  if (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { message?: unknown }).message === 'string'
  ) {
    apiMessage = (body as { message: string }).message;
  } else if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') apiMessage = parsed.message;
    } catch {
      // not JSON: fall through to the error's own message
    }
  }
  if (code !== undefined)
    return `HTTP ${code}: ${apiMessage ?? (err as Error).message?.split('\n')[0] ?? ''}`;
  return (err as Error).message ?? String(err);
}
