/**
 * The broker's local PostgreSQL endpoint. The agent connects to 127.0.0.1:<port> with any user
 * name and no password (trust: only processes inside the pod can reach loopback); the broker
 *
 *   1. reads the startup packet, over TLS when the agent asks for it (SSLRequest: `sslmode=require`
 *      works; the certificate is generated on first use unless one is given — ADR 0008,
 *      "PostgreSQL clients' habits"); GSSENCRequest is answered 'N'. With `authenticate` (the shared gateway, broker/gateway/postgres.ts) the endpoint is not on
 *      loopback: it takes sessions over TLS only and asks for the caller's token as the password,
 *   2. asks policy (injected `decide`) — a denial is an ErrorResponse, SQLSTATE 28000,
 *   3. obtains a temporary role (injected `getCredential`: the authority mints it),
 *   4. logs in upstream as that role with SCRAM-SHA-256 (scram.ts), verifying the server,
 *   5. sends the agent AuthenticationOk plus the upstream's ParameterStatus / BackendKeyData /
 *      ReadyForQuery, and from then on relays bytes both ways without parsing.
 *
 * The password exists only in this process's memory, between steps 3 and 4; nothing the agent
 * receives contains it. Revocation and expiry are enforced upstream (the authority's
 * pg_terminate_backend / the operator's sweep): the upstream closes, the relay follows.
 * Cancel requests are forwarded only for sessions this endpoint opened.
 */
import { createServer, isIP, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket, connect as tlsConnect } from 'node:tls';
// Type only: the module itself (and the X.509 library) is loaded when an agent first asks for TLS.
import type { PgTlsMaterial } from './loopback-tls.js';
import { sessionSettings, WARDEN_SETTING_PREFIX } from './options.js';
import {
  AUTH,
  authenticationCleartextPassword,
  authenticationOk,
  type BackendMessage,
  errorResponse,
  type FrontendStartup,
  parseAuthentication,
  parseBackendMessage,
  parseErrorFields,
  parseFrontendStartup,
  parsePasswordMessage,
  saslInitialResponse,
  saslMechanisms,
  saslResponse,
  sslRequest,
  startupMessage,
} from './protocol.js';
import { SCRAM_SHA_256, ScramClient } from './scram.js';

/** What the broker knows about a connecting agent session, for policy and audit. */
export interface PgClientInfo {
  readonly target: string;
  /** Startup `user` as the agent sent it (any value is accepted: the identity is the pod's). */
  readonly user: string;
  readonly database: string;
  readonly applicationName: string | undefined;
  readonly remoteAddress: string;
  /**
   * The startup `options` (PGOPTIONS): read for Warden's settings (options.ts), never forwarded.
   * May hold the human's token: never log it or put it in an event message.
   */
  readonly options?: string | undefined;
  /**
   * Every start-up parameter the agent sent (options.ts sessionSettings reads the settings to
   * forward). Holds `options` too: never log it.
   */
  readonly parameters: Readonly<Record<string, string>>;
}

export type PgDecision =
  | {
      readonly allow: true;
      /**
       * Registers the relayed session as in flight (the pipeline's AccessOutcome.track): `end`
       * closes it when the kill switch fires. Returns the release.
       */
      readonly track?: ((end: () => void) => () => void) | undefined;
    }
  | {
      readonly allow: false;
      readonly message: string;
      readonly detail?: string | undefined;
      /**
       * SQLSTATE of the refusal: 28000 (the default) when Warden denies; class 08 when the session
       * cannot be opened now (authority or database unreachable, no fresh policy), so clients and
       * poolers retry; 0A000 for a start-up option the broker does not forward.
       */
      readonly code?: string | undefined;
      /** What to do about it (HINT), e.g. when a quota window resets. */
      readonly hint?: string | undefined;
    };

/** SQLSTATEs of refusals: a client retries class 08, and gives up on the others. */
export const PG_REFUSAL = {
  denied: '28000',
  /** invalid_password: the caller's credential (the shared gateway's token) was not accepted. */
  invalidPassword: '28P01',
  unavailable: '08006',
  unsupported: '0A000',
  /** configuration_limit_exceeded (class 53, insufficient resources): a quota (rules[].limits). */
  quotaExceeded: '53400',
  /** too_many_connections: the shared gateway's per-caller limit. */
  tooManyConnections: '53300',
} as const;

/** A login for the upstream (from the authority; never shown to the agent). */
export interface PgLogin {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
}

export type PgSessionEvent =
  | { readonly type: 'denied'; readonly info: PgClientInfo; readonly message: string }
  | {
      readonly type: 'failed';
      readonly info: PgClientInfo;
      readonly message: string;
      readonly credentialId?: string;
    }
  | { readonly type: 'opened'; readonly info: PgClientInfo; readonly credentialId: string }
  | { readonly type: 'closed'; readonly info: PgClientInfo; readonly credentialId: string };

export interface PgEndpointOptions {
  /**
   * CredentialProvider name a session is for (CEL request.target): fixed, or chosen per session
   * from the agent's startup packet (runBroker: the `database` the agent asks for names the provider).
   */
  readonly target: string | ((startup: { readonly user: string; readonly database: string }) => string);
  /** Loopback only by default; the trust model depends on it. */
  readonly host?: string;
  /** 0 = any free port. */
  readonly port?: number;
  readonly decide: (info: PgClientInfo) => Promise<PgDecision>;
  readonly getCredential: (info: PgClientInfo) => Promise<PgLogin>;
  /** Audit/log hook; receives no secrets. */
  readonly onEvent?: (event: PgSessionEvent) => void;
  /** The agent must finish its startup packet within this time. */
  readonly startupTimeoutMs?: number;
  /** Upstream connect + authentication must finish within this time. */
  readonly upstreamTimeoutMs?: number;
  /** Opens the upstream TCP connection (tests may wrap it). */
  readonly connect?: (host: string, port: number) => Socket;
  /**
   * Require TLS to the database (SSLRequest, then a verified handshake: the certificate must chain
   * to `ca`, or to the system CAs without it, and match the host). Off: plain TCP.
   */
  readonly upstreamTls?: { readonly ca?: string | undefined } | undefined;
  /**
   * The certificate the endpoint shows an agent that asks for TLS. Without one, the endpoint
   * generates one (loopback-tls.ts) when the first agent asks for TLS, in memory: enough for
   * `sslmode=require`, which encrypts without verifying; `verify-ca`/`verify-full` need a
   * certificate the agent trusts. Lazily, because the X.509 library costs every broker ~20 MB
   * of RSS and most agents never ask.
   */
  readonly tls?: PgTlsMaterial | undefined;
  /**
   * Authenticates the caller before any decision (the shared gateway: callers are not on
   * loopback). The endpoint then accepts sessions over TLS only, asks for a password
   * (AuthenticationCleartextPassword: inside TLS, so the token is never on the wire in the clear)
   * and hands it here; null accepts, a refusal is sent as FATAL with its code. Absent: any local
   * process is the pod's agent (the sidecar's loopback trust).
   */
  readonly authenticate?:
    | ((password: string, info: PgClientInfo) => Promise<PgAuthRefusal | null>)
    | undefined;
}

/** Why `authenticate` did not accept a caller: 28P01 (bad credential) or class 08 (try again). */
export interface PgAuthRefusal {
  readonly code: string;
  readonly message: string;
}

export type { PgTlsMaterial } from './loopback-tls.js';

export interface PgEndpoint {
  readonly host: string;
  readonly port: number;
  readonly activeSessions: number;
  /** Ends every relayed session now (kill switch); returns how many were ended. */
  closeSessions(): number;
  /**
   * Serves new TLS sessions with this certificate from now on (a renewed certificate; sessions
   * already open keep theirs). Throws, keeping the old one, when the pair is unusable.
   */
  setTls(material: PgTlsMaterial): void;
  /** Stops listening and ends every session. */
  close(): Promise<void>;
}

export const DEFAULT_STARTUP_TIMEOUT_MS = 10_000;
/** Bytes read ahead from either side during start-up before the endpoint stops reading (> one start-up message). */
export const MAX_PENDING_BYTES = 2 * 1024 * 1024;
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 15_000;

/** SQLSTATEs the endpoint reports. */
const SQLSTATE = {
  protocolViolation: '08P01',
  connectionFailure: '08006',
  featureNotSupported: '0A000',
} as const;

class EndpointError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** Pull-style reads over a socket during the start-up phases, then hands the rest to the relay. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly onData = (d: Buffer) => {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    // The agent may keep sending while policy and the authority are consulted: stop reading
    // rather than buffer without bound (TCP backpressure does the rest).
    if (this.buf.length > MAX_PENDING_BYTES) this.sock.pause();
    this.wake?.();
  };
  private readonly onClose = () => {
    this.closed = true;
    this.wake?.();
  };

  constructor(private readonly sock: Socket) {
    sock.on('data', this.onData);
    sock.on('close', this.onClose);
    sock.on('end', this.onClose);
  }

  async read<T>(
    parse: (buf: Buffer) => { value: T; used: number } | null,
    deadline: AbortSignal,
    what: string,
  ): Promise<T> {
    for (;;) {
      const got = parse(this.buf);
      if (got) {
        this.buf = this.buf.subarray(got.used);
        if (this.sock.isPaused() && this.buf.length <= MAX_PENDING_BYTES) this.sock.resume();
        return got.value;
      }
      if (this.closed) throw new EndpointError(SQLSTATE.connectionFailure, `${what}: connection closed`);
      if (deadline.aborted) throw new EndpointError(SQLSTATE.connectionFailure, `${what}: timed out`);
      await new Promise<void>((resolve) => {
        const done = () => {
          deadline.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        deadline.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Stops reading; returns bytes received but not consumed (pipelined by the peer). */
  detach(): Buffer {
    this.sock.off('data', this.onData);
    this.sock.off('close', this.onClose);
    this.sock.off('end', this.onClose);
    this.sock.pause();
    return this.buf;
  }
}

const startupParse = (buf: Buffer) => {
  const r = parseFrontendStartup(buf);
  return r ? { value: r.message, used: r.used } : null;
};

const messageParse = (buf: Buffer): { value: BackendMessage; used: number } | null => {
  const m = parseBackendMessage(buf);
  return m ? { value: m, used: m.raw.length } : null;
};

function connectTcp(host: string, port: number): Socket {
  return tcpConnect({ host, port, noDelay: true });
}

/** Authenticates upstream as `login`; resolves with the messages to replay to the agent. */
async function upstreamHandshake(
  raw: Socket,
  login: PgLogin,
  params: Record<string, string>,
  deadline: AbortSignal,
  tls: PgEndpointOptions['upstreamTls'],
): Promise<{ socket: Socket; replay: Buffer[]; backendKey: Buffer | undefined; reader: Reader }> {
  let upstream = raw;
  let reader = new Reader(upstream);
  await new Promise<void>((resolve, reject) => {
    if (!upstream.connecting) return resolve();
    const fail = (err: Error) =>
      reject(
        new EndpointError(
          SQLSTATE.connectionFailure,
          `cannot reach the database at ${login.host}:${login.port}: ${err.message}`,
        ),
      );
    upstream.once('connect', () => {
      upstream.off('error', fail);
      resolve();
    });
    upstream.once('error', fail);
    deadline.addEventListener('abort', () => fail(new Error('timed out')), { once: true });
  });
  if (tls) {
    upstream.write(sslRequest());
    const answer = await reader.read(
      (b) => (b.length > 0 ? { value: b.subarray(0, 1).toString('latin1'), used: 1 } : null),
      deadline,
      'upstream TLS negotiation',
    );
    if (answer !== 'S') {
      throw new EndpointError(
        SQLSTATE.connectionFailure,
        `the database at ${login.host}:${login.port} does not accept TLS, which this endpoint requires`,
      );
    }
    // Bytes after 'S' and before the handshake would be injected by a man in the middle (CVE-2021-23222).
    if (reader.detach().length > 0) {
      throw new EndpointError(
        SQLSTATE.protocolViolation,
        'unexpected data from the database before the TLS handshake',
      );
    }
    const secure = tlsConnect({
      socket: raw,
      host: login.host,
      ...(isIP(login.host) ? {} : { servername: login.host }),
      ...(tls.ca ? { ca: tls.ca } : {}),
      rejectUnauthorized: true,
    });
    secure.on('error', () => {}); // reported through the handshake promise / 'close'
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', (err) =>
        reject(
          new EndpointError(
            SQLSTATE.connectionFailure,
            `TLS to the database at ${login.host}:${login.port} failed: ${err.message}`,
          ),
        ),
      );
      deadline.addEventListener(
        'abort',
        () => reject(new EndpointError(SQLSTATE.connectionFailure, 'TLS handshake timed out')),
        { once: true },
      );
    });
    upstream = secure;
    reader = new Reader(upstream);
  }
  upstream.write(startupMessage({ ...params, user: login.user, database: login.database }));
  const scram = new ScramClient(login.password);
  const replay: Buffer[] = [];
  let backendKey: Buffer | undefined;
  let authenticated = false;
  for (;;) {
    const m = await reader.read(messageParse, deadline, 'upstream start-up');
    switch (m.type) {
      case 'R': {
        const { code, data } = parseAuthentication(m.body);
        if (code === AUTH.SASL) {
          if (!saslMechanisms(data).includes(SCRAM_SHA_256)) {
            throw new EndpointError(
              SQLSTATE.featureNotSupported,
              'the database offers no SCRAM-SHA-256 authentication',
            );
          }
          upstream.write(saslInitialResponse(SCRAM_SHA_256, scram.clientFirstMessage()));
        } else if (code === AUTH.SASLContinue) {
          upstream.write(saslResponse(scram.clientFinalMessage(data.toString('utf8'))));
        } else if (code === AUTH.SASLFinal) {
          scram.verifyServerFinal(data.toString('utf8'));
        } else if (code === AUTH.Ok) {
          authenticated = true;
        } else {
          // Cleartext/MD5 would hand the password to whatever answered: refuse.
          throw new EndpointError(
            SQLSTATE.featureNotSupported,
            `the database asked for authentication method ${code}; Warden authenticates only with SCRAM-SHA-256`,
          );
        }
        break;
      }
      case 'E': {
        const f = parseErrorFields(m.body);
        throw new EndpointError(
          f.C ?? SQLSTATE.connectionFailure,
          `the database refused the session: ${f.M ?? 'unknown error'}`,
        );
      }
      case 'S':
      case 'N':
        if (authenticated) replay.push(Buffer.from(m.raw));
        break;
      case 'K':
        backendKey = Buffer.from(m.body);
        replay.push(Buffer.from(m.raw));
        break;
      case 'Z':
        if (!authenticated)
          throw new EndpointError(
            SQLSTATE.protocolViolation,
            'the database sent ReadyForQuery before authentication',
          );
        replay.push(Buffer.from(m.raw));
        return { socket: upstream, replay, backendKey, reader };
      default:
        // NegotiateProtocolVersion ('v') and anything else during start-up: nothing the agent needs.
        break;
    }
  }
}

export async function startPgEndpoint(opts: PgEndpointOptions): Promise<PgEndpoint> {
  const host = opts.host ?? '127.0.0.1';
  const connect = opts.connect ?? connectTcp;
  const sessions = new Set<{ agent: Socket; upstream: Socket }>();
  /** BackendKeyData (pid+secret, hex) → where to forward a CancelRequest. */
  const cancelTargets = new Map<string, { host: string; port: number }>();
  const emit = (e: PgSessionEvent) => {
    try {
      opts.onEvent?.(e);
    } catch {
      // An audit hook failure must not break the session.
    }
  };

  let secureContext: Promise<SecureContext> | undefined;
  const tlsContext = (): Promise<SecureContext> => {
    secureContext ??= (async () => {
      const m = opts.tls ?? (await (await import('./loopback-tls.js')).generateLoopbackTls());
      return createSecureContext({ cert: m.certPem, key: m.keyPem, minVersion: 'TLSv1.2' });
    })();
    return secureContext;
  };

  /** Answers an SSLRequest with 'S' and runs the server side of the handshake; null if it failed. */
  async function acceptTls(raw: Socket, deadline: AbortSignal): Promise<TLSSocket | null> {
    let context: SecureContext;
    try {
      context = await tlsContext();
    } catch {
      // No certificate could be made (or the given one is unusable): close; the next agent retries.
      secureContext = undefined;
      raw.destroy();
      return null;
    }
    raw.write('S');
    const secure = new TLSSocket(raw, { isServer: true, secureContext: context });
    secure.on('error', () => {}); // a failed handshake is handled below; later errors via 'close'
    raw.resume();
    const ok = await new Promise<boolean>((resolve) => {
      const done = (v: boolean) => {
        deadline.removeEventListener('abort', timeout);
        resolve(v);
      };
      const timeout = () => done(false);
      secure.once('secure', () => done(true));
      secure.once('error', () => done(false));
      secure.once('close', () => done(false));
      deadline.addEventListener('abort', timeout, { once: true });
    });
    if (!ok) {
      secure.destroy();
      raw.destroy();
      return null;
    }
    return secure;
  }

  const fail = (agent: Socket, code: string, message: string, detail?: string, hint?: string) => {
    if (agent.writable)
      agent.end(
        errorResponse({
          severity: 'FATAL',
          code,
          message,
          ...(detail ? { detail } : {}),
          ...(hint ? { hint } : {}),
        }),
      );
    else agent.destroy();
  };

  async function handle(raw: Socket): Promise<void> {
    raw.setNoDelay(true);
    raw.on('error', () => {}); // reported through 'close'; an agent reset is not our error
    let agent: Socket = raw;
    let agentReader = new Reader(agent);
    const startupDeadline = AbortSignal.timeout(opts.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS);
    let startup: FrontendStartup;
    for (;;) {
      try {
        startup = await agentReader.read(startupParse, startupDeadline, 'startup');
      } catch {
        agent.destroy();
        return;
      }
      if (startup.kind !== 'ssl' && startup.kind !== 'gssenc') break;
      if (agent !== raw) {
        // PostgreSQL refuses a second negotiation inside TLS too.
        fail(agent, SQLSTATE.protocolViolation, 'SSLRequest or GSSENCRequest inside an encrypted session');
        return;
      }
      if (startup.kind === 'gssenc') {
        agent.write('N'); // no GSSAPI: the agent continues in the clear or asks for TLS
        continue;
      }
      // Bytes sent after the SSLRequest, before the handshake, would be read as if they came
      // over TLS: refuse them (the server side of CVE-2021-23214).
      if (agentReader.detach().length > 0) {
        raw.destroy();
        return;
      }
      const secure = await acceptTls(raw, startupDeadline);
      if (!secure) return;
      agent = secure;
      agentReader = new Reader(agent);
    }
    if (startup.kind === 'cancel') {
      // BackendKeyData's body is pid + secret: the same 8 bytes the CancelRequest carries.
      const raw = startup.raw;
      const to = cancelTargets.get(raw.subarray(8, 16).toString('hex'));
      if (to) {
        const s = connect(to.host, to.port);
        s.on('error', () => {});
        s.once('connect', () => s.end(raw));
      }
      agent.destroy();
      return;
    }
    if (startup.kind === 'invalid') {
      fail(agent, SQLSTATE.protocolViolation, startup.message);
      return;
    }
    const params = startup.params;
    // A Warden setting sent as a startup parameter would be silently ignored (only `options` is
    // read for them): refuse it so the agent does not believe its token or context was applied.
    const stray = Object.keys(params).find((k) => k.toLowerCase().startsWith(WARDEN_SETTING_PREFIX));
    if (stray !== undefined) {
      fail(
        agent,
        SQLSTATE.protocolViolation,
        `startup parameter '${stray.slice(0, 64)}': send Warden settings as connection options (PGOPTIONS='-c ${stray.slice(0, 64).toLowerCase()}=…'), not as startup parameters`,
      );
      return;
    }
    const user = params.user ?? '';
    const database = params.database ?? params.user ?? '';
    const info: PgClientInfo = {
      target: typeof opts.target === 'string' ? opts.target : opts.target({ user, database }),
      user,
      database,
      applicationName: params.application_name,
      remoteAddress: raw.remoteAddress ?? '',
      options: params.options,
      parameters: params,
    };
    if (params.replication !== undefined) {
      fail(
        agent,
        SQLSTATE.featureNotSupported,
        'replication connections are not supported through the Warden broker',
      );
      return;
    }

    if (opts.authenticate) {
      if (agent === raw) {
        // The password is the caller's token: never asked for in the clear.
        fail(
          agent,
          PG_REFUSAL.denied,
          'the Warden gateway accepts PostgreSQL sessions over TLS only: connect with sslmode=verify-full (sslrootcert = the gateway CA)',
        );
        return;
      }
      agent.write(authenticationCleartextPassword());
      let answer: { ok: true; password: string } | { ok: false; message: string };
      try {
        answer = await agentReader.read(parsePasswordMessage, startupDeadline, 'password');
      } catch {
        agent.destroy();
        return;
      }
      if (!answer.ok) {
        fail(agent, SQLSTATE.protocolViolation, answer.message);
        return;
      }
      let refusal: PgAuthRefusal | null;
      try {
        refusal = await opts.authenticate(answer.password, info);
      } catch (err) {
        refusal = {
          code: SQLSTATE.connectionFailure,
          message: `the caller could not be authenticated now (retry): ${(err as Error).message}`,
        };
      }
      if (refusal) {
        emit({ type: 'denied', info, message: refusal.message });
        fail(agent, refusal.code, refusal.message);
        return;
      }
    }

    let decision: PgDecision;
    try {
      decision = await opts.decide(info);
    } catch (err) {
      decision = { allow: false, message: `policy could not be evaluated: ${(err as Error).message}` };
    }
    if (!decision.allow) {
      emit({ type: 'denied', info, message: decision.message });
      const code = decision.code ?? PG_REFUSAL.denied;
      fail(
        agent,
        code,
        code.startsWith('08')
          ? `Warden could not open the session to '${info.target}' now (retry): ${decision.message}`
          : `Warden denied this connection to '${info.target}': ${decision.message}`,
        decision.detail,
        decision.hint,
      );
      return;
    }
    // The decision read the same settings (options.ts); this is what goes upstream.
    const settings = sessionSettings(params);
    if (!settings.ok) {
      fail(agent, PG_REFUSAL.unsupported, settings.message);
      return;
    }

    let login: PgLogin;
    try {
      login = await opts.getCredential(info);
    } catch (err) {
      const message = `could not obtain a credential for '${info.target}': ${(err as Error).message}`;
      emit({ type: 'failed', info, message });
      fail(agent, PG_REFUSAL.unavailable, message);
      return;
    }

    const forwarded = settings.forward;
    const tcp = connect(login.host, login.port);
    tcp.setNoDelay(true);
    tcp.on('error', () => {}); // reported through 'close'
    let handshake: Awaited<ReturnType<typeof upstreamHandshake>>;
    try {
      handshake = await upstreamHandshake(
        tcp,
        login,
        forwarded,
        AbortSignal.timeout(opts.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS),
        opts.upstreamTls,
      );
    } catch (err) {
      tcp.destroy();
      const e =
        err instanceof EndpointError
          ? err
          : new EndpointError(SQLSTATE.connectionFailure, (err as Error).message);
      emit({ type: 'failed', info, message: e.message, credentialId: login.user });
      fail(agent, e.code, `Warden could not open the session to '${info.target}': ${e.message}`);
      return;
    }

    const upstream = handshake.socket;
    // Relay: replay the upstream's start-up answers, flush anything either side pipelined, pipe.
    const pendingFromAgent = agentReader.detach();
    const pendingFromUpstream = handshake.reader.detach();
    agent.write(Buffer.concat([authenticationOk(), ...handshake.replay, pendingFromUpstream]));
    if (pendingFromAgent.length > 0) upstream.write(pendingFromAgent);
    const session = { agent, upstream };
    sessions.add(session);
    const cancelKey = handshake.backendKey?.toString('hex');
    if (cancelKey) cancelTargets.set(cancelKey, { host: login.host, port: login.port });
    emit({ type: 'opened', info, credentialId: login.user });
    let closed = false;
    // Suspension ends the session at once, not when the authority's revocation reaches the
    // database (it does too: NOLOGIN + pg_terminate_backend).
    const release = decision.track?.(() => close()) ?? (() => {});
    const close = () => {
      if (closed) return;
      closed = true;
      release();
      sessions.delete(session);
      if (cancelKey) cancelTargets.delete(cancelKey);
      agent.destroy();
      upstream.destroy();
      emit({ type: 'closed', info, credentialId: login.user });
    };
    // end() after the peer's end so a final ErrorResponse (e.g. 57P01 on revoke) reaches the agent.
    agent.pipe(upstream);
    upstream.pipe(agent);
    agent.on('close', close);
    upstream.on('close', close);
    agent.resume();
    upstream.resume();
  }

  const server: Server = createServer({ noDelay: true }, (sock) => {
    handle(sock).catch(() => sock.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const closeSessions = () => {
    const n = sessions.size;
    for (const s of [...sessions]) {
      s.agent.destroy();
      s.upstream.destroy();
    }
    return n;
  };
  return {
    host,
    port,
    get activeSessions() {
      return sessions.size;
    },
    closeSessions,
    setTls: (m) => {
      const context = createSecureContext({ cert: m.certPem, key: m.keyPem, minVersion: 'TLSv1.2' });
      secureContext = Promise.resolve(context);
    },
    close: async () => {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      closeSessions();
      await closing;
    },
  };
}
