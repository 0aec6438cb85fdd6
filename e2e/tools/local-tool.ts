/**
 * What every Go-built test tool (the OpenTelemetry Collector, the OCI registry, MinIO) needs to
 * run on loopback: its binary from the cache (built by its e2e/tools/build-*.sh first when the
 * cache lacks it), a free port, and a way to tell when it listens.
 */
import { execFile } from 'node:child_process';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../controlplane/controlplane.js';

export { freePort };

const TOOLS_DIR = dirname(fileURLToPath(import.meta.url));

/**
 * The path of a cached tool binary: runs e2e/tools/<script> (which builds it when the cache lacks
 * it and prints `<variable>=<path>`) and returns that path.
 */
export function ensureTool(script: string, variable: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(join(TOOLS_DIR, script), [], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const path = new RegExp(`^${variable}=(.+)$`, 'm').exec(stdout)?.[1];
      if (err || !path) reject(new Error(`e2e/tools/${script} failed: ${stderr || String(err)}`));
      else resolve(path);
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port (a started tool is listening). */
export function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}
