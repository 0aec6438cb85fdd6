/**
 * Classifying errors from the Kubernetes API. client-node (1.4 and 2.x) throws ApiException
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

/**
 * An error that retrying cannot fix (controller-runtime's TerminalError). The work
 * queue reports it once and does not retry the key; a later change to the object
 * queues it again as usual. Throw it for a permanent condition the handler has
 * recognised; an API error the server calls invalid (400, 422) is treated the same.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/**
 * Whether err can never succeed by retrying the same request: a TerminalError, or
 * the API server refusing the request's content (400 Bad Request, 422 Invalid).
 * Authorization (401/403), NotFound and throttling can change with time and are
 * not terminal.
 */
export function isTerminal(err: unknown): boolean {
  if (err instanceof TerminalError) return true;
  const code = statusCodeOf(err);
  return code === 400 || code === 422;
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
