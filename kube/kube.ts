/**
 * A thin JSON client for the Kubernetes API on top of client-node's KubeConfig
 * (auth, TLS) and Watch (streaming).
 *
 * Why not client-node's generated API classes: they deserialize core objects into
 * classes with Date fields, while Watch hands out raw JSON. An informer cache fed
 * by both would hold two shapes of the same object. Every read and write here is
 * raw JSON, the shape the API server sends and the shape our types describe.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { type KubeConfig, Watch } from '@kubernetes/client-node';
import { describeError } from './errors.js';

/** Minimal object shape every Kubernetes object has. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** A string on the wire; `unknown` so client-node's typed metadata (Date) also fits. */
  deletionTimestamp?: unknown;
  creationTimestamp?: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface ObjectList<T> {
  items: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

/** An error response from the API server. `code` is the HTTP status. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: number,
    /** The API server's Status object (reason, message), when it sent one. */
    readonly body: unknown,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${describeError({ code, body })}`);
  }
}

/** Where a resource lives: group '' is the core group (/api/v1). */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
}

/** API path of a collection, or of one object when name is given; namespace undefined = all namespaces. */
export function resourcePath(
  ref: ResourceRef,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  const base = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  let p = namespace
    ? `${base}/namespaces/${encodeURIComponent(namespace)}/${ref.plural}`
    : `${base}/${ref.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) p += `/${subresource}`;
  return p;
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | undefined>;
  signal?: AbortSignal;
  /** Per-request timeout in ms (default 30 s); watches do not go through here. */
  timeoutMs?: number;
  /** Accept header (default application/json), e.g. METADATA_LIST_ACCEPT for metadata-only lists. */
  accept?: string;
}

/**
 * Accept header of a metadata-only list (PartialObjectMetadataList): names, labels and
 * timestamps without the objects' bodies, for passes over many large objects.
 */
export const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io';

/**
 * Query of a first list page the API server answers from its watch cache, paginated: any state not
 * older than resourceVersion 1, i.e. the cache as it is. A plain (consistent) paginated list of
 * large objects goes to etcd and decodes every object: with 1,500 AuditRecords of 65 KiB on a
 * loaded machine a page of 500 timed out after 60 s where this answered a page of 100 in 0.8 s.
 * resourceVersion "0" would also read the cache but makes the server ignore `limit`. Later pages
 * send only `continue`. The answer may miss writes of the last moments: for passes and queries,
 * not for checks that compare with something read fresh.
 */
export const CACHED_LIST_QUERY: Readonly<Record<string, string>> = {
  resourceVersion: '1',
  resourceVersionMatch: 'NotOlderThan',
};

/** The operations the controller core needs; tests and adapters can provide their own. */
export interface KubeApi {
  request<T>(method: string, path: string, opts?: RequestOptions): Promise<T>;
  /** The streaming watch (client-node's Watch). */
  readonly watcher: WatchLike;
}

/** client-node's Watch, as the informer uses it. */
export interface WatchLike {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

/** client-node's Watch field for its inactivity timeout (private in its typings). */
interface WatchTimeouts {
  requestTimeoutMs: number;
}

/**
 * How long a watch may stay silent before client-node aborts it: longer than the informer's
 * longest watch (10 min timeoutSeconds + 30 s watchdog grace), so the informer decides.
 */
export const WATCH_INACTIVITY_TIMEOUT_MS = 15 * 60_000;

/** KubeApi over a KubeConfig: client-node supplies TLS and credentials, node:https carries JSON. */
export class KubeConfigApi implements KubeApi {
  readonly watcher: WatchLike;
  private agent: https.Agent | undefined;

  constructor(private readonly kc: KubeConfig) {
    const watch = new Watch(kc);
    // client-node 2.x aborts a watch after 30 s without a byte (1.4 had no such timeout). A quiet
    // resource sends nothing for minutes, so every idle watch would fail and reconnect with a
    // warning. The informer already bounds a watch (its timeoutSeconds + a watchdog grace), so
    // the inactivity timeout only has to outlast that. The field is private in the typings.
    (watch as unknown as WatchTimeouts).requestTimeoutMs = WATCH_INACTIVITY_TIMEOUT_MS;
    this.watcher = watch;
  }

  /** Close kept-alive connections (tests, shutdown). */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster)
      throw new Error('kubeconfig has no current cluster: set current-context to a context with a cluster');
    const url = new URL(cluster.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const reqOpts: https.RequestOptions = { method, headers: {} };
    // Credentials (headers, exec/OIDC tokens) are applied per request so they can refresh...
    await this.kc.applyToHTTPSOptions(reqOpts);
    // ...but client-node builds a new, non-keep-alive Agent each time: one TLS handshake per
    // request. Reuse one keep-alive Agent with the same TLS options (the KubeConfig's
    // certificates are fixed once loaded).
    if (reqOpts.agent instanceof https.Agent) {
      this.agent ??= new https.Agent({ ...reqOpts.agent.options, keepAlive: true, maxSockets: 32 });
      reqOpts.agent.destroy();
      reqOpts.agent = this.agent;
    }
    const headers = reqOpts.headers as http.OutgoingHttpHeaders;
    headers.accept = opts.accept ?? 'application/json';
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const mod = url.protocol === 'http:' ? http : https;
    return await new Promise<T>((resolve, reject) => {
      const req = mod.request(
        url,
        { ...reqOpts, signal: opts.signal, timeout: opts.timeoutMs ?? 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              // keep the raw text: an error page from a proxy, say
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed as T);
            else reject(new ApiError(status, parsed, method, path));
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${path}: no response within the request timeout`)),
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
}
