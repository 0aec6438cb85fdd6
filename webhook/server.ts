/**
 * The HTTPS transport for the admission webhook: POST /mutate with a bounded
 * body, GET /healthz for probes. The serving certificate can be swapped at run
 * time (rotation) without dropping the listener.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { WardenMetrics } from '../observability/metrics.js';
import { type AdmissionDeps, handleReview, MalformedReviewError, type Outcome } from './admission.js';

/** Path the MutatingWebhookConfiguration points at. */
export const MUTATE_PATH = '/mutate';
export const HEALTH_PATH = '/healthz';

/**
 * 2 MiB: etcd stores objects up to 1.5 MiB by default, so no storable Pod needs
 * more, even wrapped in an AdmissionReview; anything larger is refused unread.
 */
export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;

/** The part of observability/metrics.ts's WardenMetrics the webhook records into. */
export type AdmissionMetrics = Pick<WardenMetrics, 'admissionDuration' | 'decision' | 'startTimer'>;

export interface HandlerOptions {
  maxBodyBytes?: number;
  metrics?: AdmissionMetrics;
}

/** Records one admission request: duration by outcome, and the allow/deny decision with its reason. */
function record(metrics: AdmissionMetrics, seconds: number, outcome: Outcome | 'error'): void {
  if (outcome === 'error') {
    metrics.admissionDuration('error', seconds);
    return;
  }
  metrics.admissionDuration(outcome.kind, seconds);
  if (outcome.kind === 'rejected') metrics.decision('webhook', 'deny', outcome.reason);
  else metrics.decision('webhook', 'allow', outcome.kind === 'injected' ? 'Injected' : outcome.reason);
}

export interface ServingCertificate {
  certPem: string;
  keyPem: string;
}

class BodyTooLargeError extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLargeError());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        reject(new BodyTooLargeError());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!done) reject(err);
    });
  });
}

function sendText(res: ServerResponse, status: number, text: string, close = false): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/** The request listener; exported so tests can mount it on any server. */
export function admissionHandler(
  deps: AdmissionDeps,
  opts: HandlerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === HEALTH_PATH && req.method === 'GET') return sendText(res, 200, 'ok\n');
    if (path !== MUTATE_PATH)
      return sendText(res, 404, `not found: the webhook serves POST ${MUTATE_PATH}\n`);
    if (req.method !== 'POST') return sendText(res, 405, `method ${req.method} not allowed: use POST\n`);
    void serveMutate(req, res, deps, limit, opts.metrics);
  };
}

async function serveMutate(
  req: IncomingMessage,
  res: ServerResponse,
  deps: AdmissionDeps,
  limit: number,
  metrics: AdmissionMetrics | undefined,
) {
  // Every early return below is a transport-level failure (no review answered): 'error' until a
  // review is answered. The timer uses the metrics' clock, so tests control the durations.
  let outcome: Outcome | 'error' = 'error';
  const stop = metrics?.startTimer((s) => record(metrics, s, outcome));
  if (stop) res.once('finish', () => stop());
  let raw: Buffer;
  try {
    raw = await readBody(req, limit);
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      deps.logger.warn(
        { limit, contentLength: req.headers['content-length'] },
        'admission request too large',
      );
      // Close the connection after answering so an oversized body is never read.
      res.on('finish', () => req.destroy());
      return sendText(res, 413, `AdmissionReview larger than ${limit} bytes refused\n`, true);
    }
    return sendText(res, 400, `could not read the request body: ${(err as Error).message}\n`);
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    return sendText(res, 400, `malformed AdmissionReview: body is not JSON (${(err as Error).message})\n`);
  }
  try {
    const answered = await handleReview(body, deps);
    const json = JSON.stringify(answered.review);
    outcome = answered.outcome;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  } catch (err) {
    if (err instanceof MalformedReviewError) return sendText(res, 400, `malformed ${err.message}\n`);
    deps.logger.error({ err: (err as Error).message }, 'admission handler failed');
    return sendText(res, 500, 'internal error handling the AdmissionReview\n');
  }
}

/** An HTTPS server for the webhook whose certificate can be replaced while running. */
export class WebhookServer {
  private readonly server: Server;

  constructor(deps: AdmissionDeps, cert: ServingCertificate, opts: HandlerOptions = {}) {
    this.server = createServer(
      { cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' },
      admissionHandler(deps, opts),
    );
    // The API server sends each review on a kept-alive connection; bound idle sockets.
    this.server.keepAliveTimeout = 30_000;
    this.server.requestTimeout = 10_000;
  }

  /** Starts listening; returns the bound port (pass 0 for an ephemeral one). */
  listen(port: number, host = '0.0.0.0'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** New connections use the new certificate; established ones keep theirs until they close. */
  setCertificate(cert: ServingCertificate): void {
    this.server.setSecureContext({ cert: cert.certPem, key: cert.keyPem });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
