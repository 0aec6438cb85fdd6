/**
 * One outbound request to an upstream (MCP server or HTTP API) with the timeouts an untrusted or
 * broken upstream needs: response headers must arrive within `headersTimeoutMs`, and the body may
 * not stall longer than `idleTimeoutMs`. Aborting (kill switch) destroys the socket.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { type HeaderList, pairs } from './headers.js';

export class UpstreamTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamTimeoutError';
  }
}

export interface UpstreamRequest {
  readonly url: URL;
  readonly method: string;
  /** Request-target (path + query) to send. */
  readonly path: string;
  readonly headers: HeaderList;
  readonly body?: Buffer | Readable | undefined;
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: HeaderList;
  readonly body: IncomingMessage;
  /** Change the body idle bound once the response kind is known (long-lived SSE streams). */
  readonly setIdleTimeout: (ms: number) => void;
}

function toOutgoing(headers: HeaderList): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const k = name.toLowerCase();
    const prev = out[k];
    if (prev === undefined) out[k] = value;
    else out[k] = Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** Host label for error messages: origin only (never userinfo, path or query). */
export function describeTarget(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

/** The error an aborted request fails with (what http.request's own `signal` option gives). */
function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

export function requestUpstream(r: UpstreamRequest): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const signal = r.signal;
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const doRequest = r.url.protocol === 'https:' ? httpsRequest : httpRequest;
    // The abort signal is watched here with one listener rather than passed as http.request's
    // `signal` option, which wires it through stream.addAbortSignal/end-of-stream: ~7 % of the
    // broker's own CPU per call in the profile (docs/perf/broker-cpu.md).
    const req = doRequest({
      protocol: r.url.protocol,
      hostname: r.url.hostname.replace(/^\[|\]$/g, ''),
      port: r.url.port || undefined,
      method: r.method,
      path: r.path,
      headers: toOutgoing(r.headers),
    });
    if (signal) {
      const onAbort = (): void => {
        req.destroy(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    const headersTimer = setTimeout(() => {
      req.destroy(
        new UpstreamTimeoutError(
          `upstream ${describeTarget(r.url)} sent no response within ${r.headersTimeoutMs} ms`,
        ),
      );
    }, r.headersTimeoutMs);
    headersTimer.unref();
    req.on('response', (res) => {
      clearTimeout(headersTimer);
      let idle = r.idleTimeoutMs;
      res.setTimeout(idle, () => {
        res.destroy(new UpstreamTimeoutError(`upstream ${describeTarget(r.url)} stalled for ${idle} ms`));
      });
      resolve({
        status: res.statusCode ?? 502,
        headers: pairs(res.rawHeaders),
        body: res,
        setIdleTimeout: (ms) => {
          idle = ms;
          res.setTimeout(ms);
        },
      });
    });
    req.on('error', (err) => {
      clearTimeout(headersTimer);
      reject(err);
    });
    if (r.body === undefined) req.end();
    else if (Buffer.isBuffer(r.body)) req.end(r.body);
    else r.body.pipe(req);
  });
}

/**
 * Read a body fully, refusing beyond `limit` bytes (null). Event-based rather than `for await`: this
 * runs twice per proxied call and the async-iterator machinery was a measurable share of it.
 */
export function readLimited(stream: Readable, limit: number, destroyOnLimit = true): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (b: Buffer): void => {
      size += b.length;
      if (size > limit) {
        cleanup();
        // An agent's request is left open so the caller can still answer 413 and drain it.
        if (destroyOnLimit) stream.destroy();
        resolve(null);
        return;
      }
      chunks.push(b);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      // Closed without 'end' (aborted): what arrived is incomplete.
      cleanup();
      reject(new Error('stream closed before its end'));
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}
