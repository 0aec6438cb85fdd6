/**
 * Poll `fn` until it returns a truthy value (errors count as "not yet"), or fail naming what was
 * awaited and the last error. No dependencies: the load fixture's broker bundle imports it too.
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | false | undefined | null>,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
