/**
 * The /metrics endpoint: a request listener any node:http server can mount, and a small
 * stand-alone server for processes that have no HTTP server of their own on a scrape-able port.
 * Plain HTTP on purpose: metrics carry no secrets (label values are bounded enums, never names
 * of users, tokens or arguments), and Prometheus scrapes pod IPs directly.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Path Prometheus scrapes (the chart's ServiceMonitor / scrape annotations point here). */
export const METRICS_PATH = '/metrics';

function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * Serves GET/HEAD /metrics in the Prometheus text format; 404 elsewhere, 405 for other methods.
 * Returns true when it answered, so it can sit in front of another listener.
 */
export function metricsHandler(registry: Registry): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== METRICS_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `method ${req.method} not allowed: use GET ${METRICS_PATH}\n`, {
        allow: 'GET, HEAD',
      });
      return true;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, {
          'content-type': registry.contentType,
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        // A collector that throws must not take the process down, nor hide the reason from the operator.
        sendText(
          res,
          500,
          `collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      },
    );
    return true;
  };
}

/** A server answering only /metrics (and /healthz for its own probe). */
export function createMetricsServer(registry: Registry): Server {
  const handle = metricsHandler(registry);
  const server = createServer((req, res) => {
    if (handle(req, res)) return;
    if ((req.url ?? '').split('?')[0] === '/healthz') return sendText(res, 200, 'ok\n');
    sendText(res, 404, `not found: metrics are served on ${METRICS_PATH}\n`);
  });
  // Scrapes are small and quick; do not let idle or slow clients hold sockets.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 65_000; // longer than Prometheus' default scrape interval: reuse the connection
  return server;
}

/** Starts createMetricsServer on `port` (0 = ephemeral); resolves with the server and its bound port. */
export async function startMetricsServer(
  registry: Registry,
  port: number,
  host = '0.0.0.0',
): Promise<{ server: Server; port: number }> {
  const server = createMetricsServer(registry);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
