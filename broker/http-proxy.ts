/**
 * HTTP reverse proxy: `/http/<provider>/<path>` → `<provider target URL>/<path>`, decided by
 * method + path rules. The path is normalised strictly (path.ts), the agent's credentials and the
 * broker's own headers are stripped (headers.ts), the provider credential is injected, upstreams
 * that hang are cut by timeouts, and responses are scrubbed of the injected credential (headers and
 * streamed body, after decompression).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Logger } from 'pino';
import {
  type AccessDeps,
  authorize,
  recordRefusal,
  timeRequest,
  upstreamCredentialHeaders,
} from './access.js';
import {
  BrokerDenyReason,
  DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS,
  DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
  HEADER_RETRY_AFTER,
  MAX_BODY_BYTES,
} from './constants.js';
import type { BrokerDecision } from './decider.js';
import { agentResponseHeaders, type HeaderList, pairs, upstreamRequestHeaders } from './headers.js';
import { normaliseProxyPath } from './path.js';
import type { RequestMeta } from './request-meta.js';
import { ScrubTransform } from './scrub.js';
import { type AwsSigningKeys, canonicalTarget, signAwsRequest, withoutSigningHeaders } from './sigv4.js';
import { describeTarget, requestUpstream, UpstreamTimeoutError } from './upstream.js';

export interface HttpProxyOptions {
  readonly access: AccessDeps;
  readonly log: Logger;
  readonly headersTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly maxBodyBytes?: number;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The JSON body of a broker refusal on the HTTP proxy. */
export function denialBody(d: BrokerDecision): Record<string, unknown> {
  return {
    error: 'access_denied',
    decision: d.decision,
    reason: d.reason,
    message: d.message,
    reasons: d.reasons,
    ...(d.retryAfterMs !== undefined
      ? { retryAfterSeconds: Math.max(1, Math.ceil(d.retryAfterMs / 1000)) }
      : {}),
  };
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  close = false,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...(close ? { connection: 'close' } : {}),
    ...headers,
  });
  res.end(payload);
}

/**
 * Pure: status and headers of a denial — 429 with Retry-After (whole seconds, rounded up) for
 * QuotaExceeded, 403 for every other refusal.
 */
export function denialStatus(d: BrokerDecision): { status: number; headers: Record<string, string> } {
  if (d.reason === BrokerDenyReason.QuotaExceeded && d.retryAfterMs !== undefined) {
    return {
      status: 429,
      headers: { [HEADER_RETRY_AFTER]: String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))) },
    };
  }
  return { status: 403, headers: {} };
}

/** Passes bytes through, failing once more than `limit` went by. */
class LimitTransform extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) cb(new Error(`request body exceeds ${this.limit} bytes`));
    else cb(null, chunk);
  }
}

function decoderFor(encoding: string): Transform | null | 'unsupported' {
  switch (encoding.trim().toLowerCase()) {
    case '':
    case 'identity':
      return null;
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return 'unsupported';
  }
}

export class HttpProxy {
  private readonly headersTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxBodyBytes: number;

  constructor(private readonly opts: HttpProxyOptions) {
    this.headersTimeoutMs = opts.headersTimeoutMs ?? DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS;
    this.maxBodyBytes = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  }

  /** @param rest the raw request-target after `/http/<provider>` */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    rest: string,
    meta: RequestMeta,
  ): Promise<void> {
    const timing = timeRequest(this.opts.access.metrics, 'http', res);
    const method = (req.method ?? '').toUpperCase();
    const refuse = async (message: string, status = 400): Promise<void> => {
      const d = await recordRefusal(this.opts.access, { meta, target, message, auditFields: { method } });
      sendJson(res, status, denialBody(d), !req.complete);
      req.resume();
    };
    if (!METHODS.has(method)) return refuse(`method '${method.slice(0, 16)}' is not proxied`, 405);
    const checked = normaliseProxyPath(rest, '/');
    if (!checked.ok) return refuse(`path refused: ${checked.message}`);
    // Header check before any decision or credential; the provider's inject header (when the
    // target is known) counts as a credential the agent tried to send.
    const known = this.opts.access.decider.gate(target, 'HTTP');
    // An AWS target (SigV4): the agent's signing material (Authorization, X-Amz-*) is stripped
    // before anything else reads the headers, and named in the audit entry.
    const sigv4 = known.ok && known.provider.signing === 'SigV4';
    const rawPairs = pairs(req.rawHeaders);
    const agentHeaders = sigv4 ? withoutSigningHeaders(rawPairs) : undefined;
    const agentPairs = agentHeaders?.headers ?? rawPairs;
    const pre = upstreamRequestHeaders(agentPairs, {
      mode: 'http',
      injectHeader: known.ok ? known.provider.inject.header : 'authorization',
      inject: [],
    });
    if (!pre.ok) return refuse(pre.message);
    const stripped = [...new Set([...pre.stripped, ...(agentHeaders?.stripped ?? [])])];
    if (sigv4) {
      // The query is parsed for signing after the decision; what it would refuse, refuse now.
      const q = rest.indexOf('?');
      const early = canonicalTarget('/', checked.policyPath, q < 0 ? '' : rest.slice(q + 1));
      if (!early.ok) return refuse(`query refused: ${early.message}`);
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.maxBodyBytes) {
      return refuse(`request body exceeds the broker's ${this.maxBodyBytes}-byte limit`, 413);
    }

    const decider = this.opts.access.decider;
    const outcome = await authorize(this.opts.access, {
      meta,
      target,
      protocol: 'HTTP',
      credential: { kind: 'http', method, path: checked.policyPath },
      auditFields: {
        method,
        path: checked.policyPath.slice(0, 1024),
        ...(stripped.length ? { stripped } : {}),
      },
      decide: (user, chain) =>
        decider.decideHttp(target, method, checked.policyPath, user, meta.context, chain),
    });
    if (!outcome.ok) {
      const { status, headers } = denialStatus(outcome.decision);
      sendJson(res, status, denialBody(outcome.decision), false, headers);
      req.resume();
      return;
    }
    timing.allow();
    const url = new URL(outcome.provider.url);
    const path = normaliseProxyPath(rest, url.pathname);
    if (!path.ok) return refuse(`path refused: ${path.message}`);
    const built = upstreamRequestHeaders(agentPairs, {
      mode: 'http',
      injectHeader: outcome.provider.inject.header,
      inject: upstreamCredentialHeaders(
        outcome.credential,
        method,
        new URL(`${url.protocol}//${url.host}${path.upstreamPath}`),
      ),
    });
    if (!built.ok) return refuse(built.message);
    built.headers.push(['host', url.host]);

    // Kill switch: one still waiting for the upstream's headers is answered with the decision
    // (403, like any denial); one already streaming is cut.
    const controller = new AbortController();
    let cutBy: BrokerDecision | undefined;
    const release = outcome.track((why) => {
      cutBy = why;
      controller.abort();
    });
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
      release();
    });
    const hasBody =
      method !== 'GET' &&
      method !== 'HEAD' &&
      (Number.isFinite(declared) ? declared > 0 : req.headers['transfer-encoding'] !== undefined);
    const limiter = new LimitTransform(this.maxBodyBytes);
    try {
      let send: { path: string; headers: HeaderList; body: Buffer | Readable | undefined } = {
        path: path.upstreamPath,
        headers: built.headers,
        body: hasBody ? req.pipe(limiter) : undefined,
      };
      const aws = outcome.credential.aws;
      if (sigv4 !== (aws !== undefined)) {
        // Fail closed: a SigV4 provider without keys to sign with (or keys for a provider that
        // does not sign) would go upstream unauthenticated or with the wrong credential.
        release();
        return await refuse(
          `the credential issued for '${target}' does not match the provider (SigV4 signing ${sigv4 ? 'expected' : 'unexpected'}); the broker fails closed`,
          502,
        );
      }
      if (aws) {
        const signed = await this.signed(
          req,
          method,
          url,
          rest,
          checked.policyPath,
          built.headers,
          hasBody,
          aws,
        );
        if (!signed.ok) {
          release();
          return await refuse(signed.message, signed.status);
        }
        send = signed.send;
      }
      const up = await requestUpstream({
        url,
        method,
        path: send.path,
        headers: send.headers,
        body: send.body,
        headersTimeoutMs: this.headersTimeoutMs,
        idleTimeoutMs: this.idleTimeoutMs,
        signal: controller.signal,
      });
      const encoding = up.headers.find(([n]) => n.toLowerCase() === 'content-encoding')?.[1] ?? '';
      const decoder = decoderFor(encoding);
      if (decoder === 'unsupported') {
        up.body.destroy();
        sendJson(res, 502, {
          error: 'bad_gateway',
          message: `upstream used content-encoding '${encoding.slice(0, 32)}' the broker cannot scrub`,
        });
        return;
      }
      res.writeHead(up.status, agentResponseHeaders(up.headers, outcome.secrets, { bodyRewritten: true }));
      const scrub = new ScrubTransform(outcome.secrets);
      const done = (err: Error | null | undefined): void => {
        if (err && !res.writableEnded) res.destroy();
        if (scrub.scrubber.replaced > 0) {
          this.opts.log.warn(
            { target, requestId: meta.requestId, occurrences: scrub.scrubber.replaced },
            'upstream echoed the injected credential; redacted',
          );
        }
      };
      if (decoder) pipeline(up.body, decoder, scrub, res, done);
      else pipeline(up.body, scrub, res, done);
    } catch (err) {
      const timeout = err instanceof UpstreamTimeoutError;
      this.opts.log.warn(
        { target, requestId: meta.requestId, err: timeout ? (err as Error).message : errCode(err) },
        'upstream HTTP request failed',
      );
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (cutBy) {
        sendJson(res, 403, denialBody(cutBy));
        return;
      }
      sendJson(res, timeout ? 504 : 502, {
        error: timeout ? 'gateway_timeout' : 'bad_gateway',
        message: timeout
          ? (err as Error).message
          : `upstream ${describeTarget(url)} failed (${errCode(err)})`,
      });
    } finally {
      if (res.writableFinished) release();
    }
  }

  /**
   * An AWS target: the path and query parsed and serialised once (sigv4.ts canonicalTarget), the
   * body read whole (bounded by the broker's body limit) so its SHA-256 is signed, and the request
   * signed with the temporary credentials. What is returned is exactly what is sent.
   */
  private async signed(
    req: IncomingMessage,
    method: string,
    url: URL,
    rest: string,
    policyPath: string,
    headers: HeaderList,
    hasBody: boolean,
    keys: AwsSigningKeys,
  ): Promise<
    | { ok: true; send: { path: string; headers: HeaderList; body: Buffer | undefined } }
    | { ok: false; message: string; status: number }
  > {
    const q = rest.indexOf('?');
    const canonical = canonicalTarget(url.pathname, policyPath, q < 0 ? '' : rest.slice(q + 1));
    if (!canonical.ok) return { ok: false, message: `query refused: ${canonical.message}`, status: 400 };
    const body = hasBody ? await readBody(req, this.maxBodyBytes) : undefined;
    if (hasBody && body === undefined) {
      return {
        ok: false,
        message: `request body exceeds the broker's ${this.maxBodyBytes}-byte limit (an AWS request is signed with its body's hash, so it is read whole)`,
        status: 413,
      };
    }
    const signedHeaders = await signAwsRequest({
      keys,
      method,
      url,
      target: canonical,
      headers,
      body,
      now: this.opts.access.wallClock?.() ?? new Date(),
    });
    return { ok: true, send: { path: canonical.requestTarget, headers: signedHeaders, body } };
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function errCode(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'error';
}
