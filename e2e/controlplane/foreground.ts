/**
 * Keeps a `make controlplane` / `make cluster` process in the foreground until SIGINT or
 * SIGTERM, then stops what it started (once) and exits.
 */
export function holdUntilSignal(stop: () => Promise<void>, log: (line: string) => void): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    await stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  // Keep the event loop alive until a signal arrives.
  setInterval(() => {}, 1 << 30);
}
