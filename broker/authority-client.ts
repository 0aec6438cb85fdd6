/**
 * The broker's side of the authority API (authority/server.ts):
 *   - POST /v1/token (RFC 8693): attest with the projected service-account token, refresh the
 *     session before it expires (subject_token_type access_token), re-attest when refused;
 *   - GET /v1/stream (SSE): follow the agent's policy snapshot; reconnect with jittered backoff and
 *     Last-Event-ID; `: ping` comments count as liveness for the staleness bound;
 *   - POST /v1/credentials: the authority's central decision and the credential, with the user's
 *     token forwarded in x-warden-user-token;
 *   - POST /v1/audit: batches of broker audit events (endpoint still to be added by the authority).
 * It implements the broker's edges: SnapshotSource, CredentialIssuer, AuditTransport.
 * The session token and the service-account token live only in this object's memory.
 */
import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import { AUTH_SCHEME_DPOP, HEADER_REQUEST_ID, HEADER_USER_TOKEN } from '../core/constants.js';
import type { AuditTransport, BrokerAuditEvent } from './audit.js';
import {
  AuthorityUnavailableError,
  CredentialDeniedError,
  type CredentialIssuer,
  type CredentialRequest,
  type IssuedCredential,
} from './credentials.js';
import type { SnapshotSource } from './decider.js';
import { accessTokenHash, DpopKey } from './dpop.js';
import type { PgLogin } from './pg/endpoint.js';
import type { QuotaLeaseAnswer, QuotaLeaseRequest, QuotaLeaser } from './quota.js';
import type { AwsSigningKeys } from './sigv4.js';
import { type PolicySnapshot, parseSnapshot } from './snapshot.js';
import { SseParser } from './sse.js';

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

export interface AuthorityClientOptions {
  /** Base URL of the authority, e.g. https://warden.warden-system.svc:8443 */
  readonly authorityUrl: string;
  /** PEM bundle trusted for the authority's TLS certificate (in addition to nothing else). */
  readonly authorityCa?: string | undefined;
  /** Projected service-account token file; re-read on every attestation (the kubelet rotates it). */
  readonly tokenFile?: string | undefined;
  /**
   * What to attest with instead of tokenFile (the shared gateway: the calling agent's token as the
   * subject, the gateway's own projected token as the actor). Read on every attestation.
   */
  readonly subject?: (() => Promise<AttestationSubject>) | undefined;
  readonly log: Logger;
  /** Monotonic ms for liveness (same clock as the Decider). */
  readonly now?: () => number;
  /** Wall-clock epoch ms (same clock as the credential cache's); Date.now by default. */
  readonly wallNow?: () => number;
  /** Per-request timeout towards the authority. */
  readonly requestTimeoutMs?: number;
  /** Reconnect backoff bounds for the stream and for attestation retries. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Stream considered dead if silent this long (the authority pings every 15 s). */
  readonly streamIdleMs?: number;
  /**
   * The broker's DPoP key (sender-constrained JWT providers); generated here by default, one per
   * broker process. Its thumbprint goes with every credential request.
   */
  readonly dpopKey?: DpopKey;
}

/** An RFC 8693 subject (and, for the gateway, actor) the client attests with. */
export interface AttestationSubject {
  readonly token: string;
  /** RFC 8693 token type of `token`. */
  readonly type: string;
  /** The gateway's own projected token (audience warden.dev/broker); its type is always jwt. */
  readonly actorToken?: string | undefined;
}

/** The Warden claims of a session (who the authority attested), read from the session token. */
export interface SessionWho {
  readonly namespace: string;
  readonly agent: string;
  readonly pod: string;
  readonly podUID: string;
}

interface HttpResult {
  status: number;
  body: string;
  /** The answer's Date header (the authority's clock, whole seconds). */
  date?: string | undefined;
}

export class AuthorityHttpError extends Error {
  constructor(
    readonly status: number,
    readonly oauthError: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'AuthorityHttpError';
  }
}

export class AuthorityClient implements SnapshotSource, CredentialIssuer, AuditTransport, QuotaLeaser {
  snapshot: PolicySnapshot | null = null;
  lastHeard: number | null = null;
  /** Set once a session exists. */
  attested = false;
  /** Why the stream is not currently delivering, for /readyz and logs. */
  streamError: string | null = 'not connected yet';

  private session: { token: string; expiresAt: number } | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private streamReq: { destroy(): void } | null = null;
  private stopped = false;
  private attesting: Promise<void> | null = null;
  private readonly listeners = new Set<() => void>();
  private readonly base: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly now: () => number;
  private readonly dpopKey: DpopKey;

  private subject: (() => Promise<AttestationSubject>) | undefined;

  /** The authority's issuer: its URL (`--authority-url` is the issuer, authority/index.ts). */
  get issuer(): string {
    return this.opts.authorityUrl;
  }

  constructor(private readonly opts: AuthorityClientOptions) {
    if (!opts.tokenFile && !opts.subject) throw new Error('AuthorityClient needs tokenFile or subject');
    this.subject = opts.subject;
    this.dpopKey = opts.dpopKey ?? new DpopKey(opts.wallNow ?? Date.now);
    this.base = new URL(opts.authorityUrl);
    this.agent =
      this.base.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, ...(opts.authorityCa ? { ca: opts.authorityCa } : {}) })
        : new HttpAgent({ keepAlive: true });
    this.now = opts.now ?? (() => performance.now());
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Attest (retrying with backoff until it works or stop()), then follow the stream in the
   * background. A client that already attested (the gateway attests a caller first, to answer
   * 401 on a bad token) goes straight to the stream.
   */
  async start(): Promise<void> {
    let backoff = this.opts.minBackoffMs ?? 500;
    for (;;) {
      if (this.stopped || this.session) break;
      try {
        await this.attest();
        break;
      } catch (err) {
        this.opts.log.warn({ err: describe(err), retryInMs: backoff }, 'attestation failed; retrying');
        await sleep(backoff);
        backoff = Math.min(this.opts.maxBackoffMs ?? 30_000, backoff * 2);
      }
    }
    if (this.stopped) return;
    void this.followStream();
  }

  /** From now on attest with this subject (the gateway: the newest token its agent presented). */
  resubject(subject: () => Promise<AttestationSubject>): void {
    this.subject = subject;
  }

  /** Who the current session is for (decoded from the session the authority issued), or null. */
  sessionWho(): SessionWho | null {
    const payload = this.session?.token.split('.')[1];
    if (!payload) return null;
    try {
      const w = (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { warden?: Partial<SessionWho> })
        .warden;
      if (!w?.namespace || !w.agent || !w.pod || !w.podUID) return null;
      return { namespace: w.namespace, agent: w.agent, pod: w.pod, podUID: w.podUID };
    } catch {
      return null;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.streamReq?.destroy();
    this.agent.destroy();
  }

  /** Exchange the projected SA token for a session (single-flight). */
  attest(): Promise<void> {
    this.attesting ??= (async () => {
      try {
        const subject = this.subject
          ? await this.subject()
          : { token: (await readFile(this.opts.tokenFile ?? '', 'utf8')).trim(), type: TOKEN_TYPE_JWT };
        await this.exchange(subject.token, subject.type, subject.actorToken);
        this.opts.log.info(
          { expiresInS: Math.round((this.session!.expiresAt - Date.now()) / 1000) },
          'attested',
        );
      } finally {
        this.attesting = null;
      }
    })();
    return this.attesting;
  }

  private async exchange(subjectToken: string, type: string, actorToken?: string): Promise<void> {
    const form = new URLSearchParams({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: type,
      requested_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      ...(actorToken ? { actor_token: actorToken, actor_token_type: TOKEN_TYPE_JWT } : {}),
    }).toString();
    const r = await this.call(
      'POST',
      '/v1/token',
      { 'content-type': 'application/x-www-form-urlencoded' },
      form,
    );
    if (r.status !== 200) throw httpError(r, '/v1/token');
    const body = JSON.parse(r.body) as { access_token?: unknown; expires_in?: unknown };
    if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number') {
      throw new AuthorityHttpError(r.status, undefined, '/v1/token answered without access_token/expires_in');
    }
    this.session = { token: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
    this.attested = true;
    this.scheduleRefresh(body.expires_in * 1000);
  }

  /** Refresh at ~80 % of the lifetime; on failure re-attest with the SA token. */
  private scheduleRefresh(lifetimeMs: number): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refresh(), Math.max(1000, lifetimeMs * 0.8));
    this.refreshTimer.unref();
  }

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.session) throw new Error('no session');
      await this.exchange(this.session.token, TOKEN_TYPE_ACCESS_TOKEN);
    } catch (err) {
      this.opts.log.warn({ err: describe(err) }, 'session refresh failed; attesting again');
      try {
        await this.attest();
      } catch (err2) {
        this.opts.log.error({ err: describe(err2) }, 'attestation failed; retrying in 5 s');
        this.refreshTimer = setTimeout(() => void this.refresh(), 5000);
        this.refreshTimer.unref();
      }
    }
  }

  /** Call with the session; on 401 attest again and retry once. */
  private async withSession(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<HttpResult> {
    if (!this.session) await this.attest();
    let r = await this.call(
      method,
      path,
      { ...headers, authorization: `Bearer ${this.session!.token}` },
      body,
    );
    if (r.status === 401) {
      await this.attest();
      r = await this.call(method, path, { ...headers, authorization: `Bearer ${this.session!.token}` }, body);
    }
    return r;
  }

  private call(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<HttpResult> {
    const url = new URL(path, this.base);
    const doRequest = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = doRequest(url, {
        method,
        agent: this.agent,
        headers: {
          accept: 'application/json',
          ...headers,
          ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}),
        },
        timeout: this.opts.requestTimeoutMs ?? 5000,
      });
      req.on('timeout', () =>
        req.destroy(
          new AuthorityUnavailableError(
            `no answer from ${path} within ${this.opts.requestTimeoutMs ?? 5000} ms`,
          ),
        ),
      );
      req.on('error', (err) =>
        reject(
          err instanceof AuthorityUnavailableError
            ? err
            : new AuthorityUnavailableError(`${path}: ${describe(err)}`),
        ),
      );
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 1024 * 1024) res.destroy(new AuthorityUnavailableError(`${path} answer too large`));
          else chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            date: res.headers.date,
          }),
        );
        res.on('error', (err) => reject(new AuthorityUnavailableError(`${path}: ${describe(err)}`)));
      });
      req.end(body);
    });
  }

  /** Follow GET /v1/stream forever (until stop), reconnecting with jittered exponential backoff. */
  private async followStream(): Promise<void> {
    const min = this.opts.minBackoffMs ?? 500;
    let backoff = min;
    while (!this.stopped) {
      let gotSnapshot = false;
      try {
        gotSnapshot = await this.streamOnce();
        this.streamError = 'stream ended';
      } catch (err) {
        this.streamError = describe(err);
        if (err instanceof AuthorityHttpError && err.status === 401) {
          await this.attest().catch((e: unknown) => {
            this.streamError = describe(e);
          });
        }
      }
      if (this.stopped) return;
      if (gotSnapshot) backoff = min;
      const wait = backoff / 2 + Math.random() * (backoff / 2);
      this.opts.log.warn(
        { reason: this.streamError, retryInMs: Math.round(wait) },
        'policy stream interrupted; reconnecting',
      );
      await sleep(wait);
      backoff = Math.min(this.opts.maxBackoffMs ?? 30_000, backoff * 2);
    }
  }

  /** One stream connection; resolves when it ends. Returns whether a snapshot arrived. */
  private streamOnce(): Promise<boolean> {
    const url = new URL('/v1/stream', this.base);
    const doRequest = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      if (!this.session) {
        reject(new AuthorityHttpError(401, 'invalid_token', 'no session'));
        return;
      }
      let got = false;
      const req = doRequest(url, {
        method: 'GET',
        agent: this.agent,
        headers: {
          accept: 'text/event-stream',
          authorization: `Bearer ${this.session.token}`,
          ...(this.snapshot ? { 'last-event-id': this.snapshot.version } : {}),
        },
      });
      this.streamReq = req;
      req.on('error', (err) => reject(new AuthorityUnavailableError(`/v1/stream: ${describe(err)}`)));
      req.on('response', (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            reject(
              httpError(
                { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString().slice(0, 4096) },
                '/v1/stream',
              ),
            ),
          );
          return;
        }
        this.streamError = null;
        this.heard();
        res.setTimeout(this.opts.streamIdleMs ?? 45_000, () =>
          res.destroy(new AuthorityUnavailableError('policy stream silent for too long')),
        );
        const parser = new SseParser(8 * 1024 * 1024);
        const decoder = new TextDecoder();
        res.on('data', (chunk: Buffer) => {
          this.heard();
          let events: ReturnType<SseParser['push']>;
          try {
            events = parser.push(decoder.decode(chunk, { stream: true }));
          } catch (err) {
            res.destroy(err as Error);
            return;
          }
          for (const ev of events) {
            if (ev.event === 'snapshot') {
              let json: unknown;
              try {
                json = JSON.parse(ev.data);
              } catch {
                this.opts.log.error('policy snapshot is not JSON; keeping the previous one');
                continue;
              }
              const parsed = parseSnapshot(json);
              if (!parsed.ok) {
                this.opts.log.error(
                  { problem: parsed.message },
                  'policy snapshot rejected; keeping the previous one',
                );
                continue;
              }
              got = true;
              this.snapshot = parsed.snapshot;
              this.opts.log.info(
                { version: parsed.snapshot.version, suspended: parsed.snapshot.agent?.suspended ?? null },
                'policy snapshot',
              );
              for (const l of [...this.listeners]) l();
            } else if (ev.event === 'current') {
              got = true;
            } else if (ev.event === 'expired') {
              void this.refresh();
              res.destroy();
            }
          }
        });
        res.on('end', () => resolve(got));
        res.on('close', () => resolve(got));
        res.on('error', (err) => reject(new AuthorityUnavailableError(`/v1/stream: ${describe(err)}`)));
      });
      req.end();
    });
  }

  private heard(): void {
    this.lastHeard = this.now();
  }

  /** CredentialIssuer: POST /v1/credentials. */
  async issue(req: CredentialRequest): Promise<IssuedCredential> {
    const body = JSON.stringify({
      target: req.target,
      kind: req.kind,
      ...(req.tool !== undefined ? { tool: req.tool } : {}),
      ...(req.method !== undefined ? { method: req.method } : {}),
      ...(req.path !== undefined ? { path: req.path } : {}),
      ...(req.context ? { context: req.context } : {}),
      // Always sent: the authority binds the token to it only for a DPoP provider.
      dpop_jkt: this.dpopKey.thumbprint,
    });
    const r = await this.withSession(
      'POST',
      '/v1/credentials',
      {
        'content-type': 'application/json',
        [HEADER_REQUEST_ID]: req.requestId,
        ...(req.userToken ? { [HEADER_USER_TOKEN]: req.userToken } : {}),
      },
      body,
    );
    return parseCredentialAnswer(
      r.status,
      r.body,
      (this.opts.wallNow ?? Date.now)(),
      r.date !== undefined ? Date.parse(r.date) : undefined,
      this.dpopKey,
    );
  }

  /** QuotaLeaser: POST /v1/quota (a lease of a rule limit's budget). */
  async lease(req: QuotaLeaseRequest): Promise<QuotaLeaseAnswer> {
    let r: HttpResult;
    try {
      r = await this.withSession(
        'POST',
        '/v1/quota',
        { 'content-type': 'application/json' },
        JSON.stringify(req),
      );
    } catch (err) {
      throw new AuthorityUnavailableError(`/v1/quota: ${describe(err)}`);
    }
    if (r.status !== 200) {
      const e = httpError(r, '/v1/quota');
      throw new AuthorityUnavailableError(e.message);
    }
    return parseLeaseAnswer(r.body);
  }

  /** AuditTransport: POST /v1/audit. */
  async send(events: readonly BrokerAuditEvent[], opts?: { resent?: boolean }): Promise<void> {
    const r = await this.withSession(
      'POST',
      '/v1/audit',
      { 'content-type': 'application/json' },
      JSON.stringify(opts?.resent ? { events, resent: true } : { events }),
    );
    if (r.status < 200 || r.status >= 300) throw httpError(r, '/v1/audit');
  }
}

/** Pure: the /v1/quota answer; anything malformed is the authority being unavailable (fail closed). */
export function parseLeaseAnswer(body: string): QuotaLeaseAnswer {
  let b: { granted?: unknown; resetInMs?: unknown };
  try {
    b = JSON.parse(body) as typeof b;
  } catch {
    throw new AuthorityUnavailableError('/v1/quota answered with something that is not JSON');
  }
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!ok(b.granted) || !ok(b.resetInMs) || b.resetInMs > 86_400_000) {
    throw new AuthorityUnavailableError(
      '/v1/quota answered without granted/resetInMs (non-negative integers)',
    );
  }
  return { granted: b.granted, resetInMs: b.resetInMs };
}

/**
 * Pure: the /v1/credentials answer → a credential, CredentialDeniedError (403 access_denied and
 * other 4xx the broker cannot fix by retrying) or AuthorityUnavailableError (5xx, 429).
 * Allow with `credential: null` (the authority issues nothing for this provider) → no headers.
 * `authorityNowMs` (the answer's Date header) moves the expiry onto the broker's clock: toLocalExpiry.
 */
export function parseCredentialAnswer(
  status: number,
  text: string,
  nowMs: number,
  authorityNowMs?: number,
  dpopKey?: DpopKey,
): IssuedCredential {
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // fall through with an empty body: the status decides
  }
  if (status === 200 && body.decision === 'Allow') {
    const c = body.credential as { id?: unknown; headers?: unknown; expiresAt?: unknown } | null | undefined;
    if (c === null || c === undefined) return { id: 'none', headers: {}, expiresAt: nowMs + 60_000 };
    const headers = c.headers;
    const valid =
      typeof c.id === 'string' &&
      headers !== null &&
      typeof headers === 'object' &&
      Object.values(headers as object).every((v) => typeof v === 'string');
    const expiresAt = typeof c.expiresAt === 'number' ? c.expiresAt : Date.parse(String(c.expiresAt));
    if (!valid || !Number.isFinite(expiresAt)) {
      throw new AuthorityUnavailableError('/v1/credentials answered with a malformed credential');
    }
    const base = {
      id: c.id as string,
      headers: headers as Record<string, string>,
      expiresAt: toLocalExpiry(expiresAt, nowMs, authorityNowMs),
    };
    const dpop = (body.credential as { dpop?: unknown }).dpop;
    if (dpop !== undefined) return { ...base, dpop: dpopBinding(dpop, base.headers, dpopKey) };
    const awsRaw = (body.credential as { aws?: unknown }).aws;
    if (awsRaw !== undefined) {
      const aws = parseAwsKeys(awsRaw);
      if (!aws) {
        // The message names the field only: the value holds the secret key and session token.
        throw new AuthorityUnavailableError(
          '/v1/credentials answered with a malformed credential.aws (need accessKeyId, secretAccessKey, sessionToken, region, service)',
        );
      }
      return { ...base, aws };
    }
    const pgRaw = (body.credential as { postgresql?: unknown }).postgresql;
    if (pgRaw === undefined) return base;
    const login = parsePgLogin(pgRaw);
    if (!login) {
      // The message names the field only: the value may hold the password.
      throw new AuthorityUnavailableError(
        '/v1/credentials answered with a malformed credential.postgresql (need host, port 1-65535, database, user, password)',
      );
    }
    return { ...base, postgresql: login };
  }
  if (status === 429 || status >= 500 || status === 0) {
    // The authority's description says what is unavailable (e.g. the database it mints roles in).
    const why = typeof body.error_description === 'string' ? `: ${body.error_description.slice(0, 512)}` : '';
    throw new AuthorityUnavailableError(
      `/v1/credentials answered ${status} ${String(body.error ?? '')}`.trim() + why,
    );
  }
  const d = (body.decision ?? {}) as {
    policy?: unknown;
    rule?: unknown;
    condition?: unknown;
    message?: unknown;
  };
  const message = String(body.error_description ?? d.message ?? `HTTP ${status}`);
  throw new CredentialDeniedError(message, [
    {
      policy: typeof d.policy === 'string' ? d.policy : null,
      rule: typeof d.rule === 'number' ? d.rule : null,
      condition: typeof d.condition === 'string' ? d.condition : null,
      message,
    },
  ]);
}

/** AWS temporary credentials of an answer (`credential.aws`), or undefined when malformed. */
function parseAwsKeys(raw: unknown): AwsSigningKeys | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  const fields = ['accessKeyId', 'secretAccessKey', 'sessionToken', 'region', 'service'] as const;
  if (!fields.every((f) => typeof r[f] === 'string' && r[f] !== '')) return undefined;
  return {
    accessKeyId: r.accessKeyId as string,
    secretAccessKey: r.secretAccessKey as string,
    sessionToken: r.sessionToken as string,
    region: r.region as string,
    service: r.service as string,
  };
}

/**
 * A DPoP-bound credential (answer field `dpop: {jkt}`): the token must be bound to this broker's
 * key and travel as `Authorization: DPoP <token>`; anything else is refused (fail closed), since an
 * upstream would refuse it anyway. Messages never quote the token.
 */
function dpopBinding(
  raw: unknown,
  headers: Readonly<Record<string, string>>,
  key: DpopKey | undefined,
): NonNullable<IssuedCredential['dpop']> {
  const jkt = raw !== null && typeof raw === 'object' ? (raw as { jkt?: unknown }).jkt : undefined;
  if (!key || jkt !== key.thumbprint) {
    throw new AuthorityUnavailableError(
      "/v1/credentials bound the credential to a DPoP key this broker does not hold (credential.dpop.jkt differs from the broker's key thumbprint)",
    );
  }
  const names = Object.keys(headers);
  const token =
    names.length === 1 && names[0]!.toLowerCase() === 'authorization'
      ? new RegExp(`^${AUTH_SCHEME_DPOP} (\\S+)$`).exec(headers[names[0]!]!)?.[1]
      : undefined;
  if (!token) {
    throw new AuthorityUnavailableError(
      `/v1/credentials answered a DPoP-bound credential whose headers are not 'Authorization: ${AUTH_SCHEME_DPOP} <token>'`,
    );
  }
  const ath = accessTokenHash(token);
  return { proof: (htm, url) => key.proof({ htm, url, ath }) };
}

/**
 * Pure: an expiry stamped by the authority's clock, moved onto the broker's: the lifetime left as
 * the authority saw it when it answered (its Date header has whole seconds, so one more second is
 * taken off), counted from the broker's now. Without a usable Date header: the expiry as sent.
 * This keeps the refresh margin true when the clocks disagree (docs/faults.md, "Clock skew"): a
 * broker 2 min behind would otherwise present credentials up to 90 s past their expiry, and one
 * 2 min ahead would discard every credential shorter than 2.5 min at once.
 */
export function toLocalExpiry(
  expiresAtMs: number,
  nowMs: number,
  authorityNowMs: number | undefined,
): number {
  if (authorityNowMs === undefined || !Number.isFinite(authorityNowMs)) return expiresAtMs;
  return nowMs + (expiresAtMs - authorityNowMs) - 1000;
}

/** Pure: a PostgreSQL login from the wire, or null when any field is missing or of the wrong type. */
export function parsePgLogin(raw: unknown): PgLogin | null {
  if (raw === null || typeof raw !== 'object') return null;
  const r = raw as Record<string, unknown>;
  const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 1024;
  if (!str(r.host) || !str(r.database) || !str(r.user) || !str(r.password)) return null;
  if (typeof r.port !== 'number' || !Number.isInteger(r.port) || r.port < 1 || r.port > 65535) return null;
  return { host: r.host, port: r.port, database: r.database, user: r.user, password: r.password };
}

function httpError(r: HttpResult, path: string): AuthorityHttpError {
  let code: string | undefined;
  let description = '';
  try {
    const b = JSON.parse(r.body) as { error?: unknown; error_description?: unknown };
    code = typeof b.error === 'string' ? b.error : undefined;
    description = typeof b.error_description === 'string' ? b.error_description : '';
  } catch {
    // not JSON
  }
  return new AuthorityHttpError(
    r.status,
    code,
    `${path} answered ${r.status}${code ? ` ${code}` : ''}${description ? `: ${description}` : ''}`,
  );
}

/** Error text without secrets: messages here are built by us or by Node's network layer. */
function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
