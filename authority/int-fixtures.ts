/**
 * Builders for integration tests against the real API server: ServiceAccounts, AgentIdentities,
 * Pods (no kubelet runs, so pods stay Pending — they exist, which is all attestation needs) and
 * the pod-bound projected token the kubelet would mount into the broker. Agent pods are built as
 * the webhook admits them (injectBroker): the authority attests only pods carrying that broker.
 */
import { request as httpRequest } from 'node:http';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_AGENT,
  DEFAULT_BROKER_AUDIENCE,
  GROUP,
  LABEL_AGENT,
  PLURAL,
  VERSION,
} from '../core/constants.js';
import type { PodLike } from '../core/identity/agent.js';
import { injectBroker } from '../webhook/test-builders.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from './constants.js';
import { type PodGetter, WatchedPods } from './kube.js';

export { injectBroker, TEST_BROKER_IMAGE } from '../webhook/test-builders.js';

/** The issuer of test authorities unless a test picks its own; injected brokers are pointed at it. */
export const TEST_ISSUER = 'https://warden-authority.test';

export interface Fixture {
  core: CoreV1Api;
  custom: CustomObjectsApi;
  namespace: string;
  /** The authority URL injected brokers are given (`--authority-url`): the test authority's issuer. */
  issuer: string;
}

export function fixture(kc: KubeConfig, namespace: string, issuer = TEST_ISSUER): Fixture {
  return {
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    namespace,
    issuer,
  };
}

export async function createServiceAccount(f: Fixture, name: string): Promise<void> {
  await f.core.createNamespacedServiceAccount({ namespace: f.namespace, body: { metadata: { name } } });
}

/** Creates a Warden object of `kind` in the fixture's namespace. */
export async function createWardenObject(
  f: Fixture,
  kind: 'AgentIdentity' | 'AccessPolicy' | 'CredentialProvider',
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await f.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: f.namespace,
    plural: PLURAL[kind],
    body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec },
  });
}

export function createAgentIdentity(f: Fixture, name: string, spec: Record<string, unknown>): Promise<void> {
  return createWardenObject(f, 'AgentIdentity', name, spec);
}

export async function patchAgentIdentity(
  f: Fixture,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  const cur = (await f.custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: f.namespace,
    plural: PLURAL.AgentIdentity,
    name,
  })) as { spec: Record<string, unknown> };
  await f.custom.replaceNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: f.namespace,
    plural: PLURAL.AgentIdentity,
    name,
    body: { ...cur, spec: { ...cur.spec, ...spec } },
  });
}

/**
 * Creates a pod. With `agent` it is an agent pod as the webhook admits it (injectBroker) unless
 * `injected: false`; `unlabelled` drops the agent label the webhook adds (a pod the authority's
 * pod watch does not see).
 */
export async function createPod(
  f: Fixture,
  name: string,
  opts: {
    serviceAccount: string;
    agent?: string;
    labels?: Record<string, string>;
    image?: string;
    injected?: boolean;
    unlabelled?: boolean;
    /** Bound to this node (none exists): a graceful delete then leaves the pod terminating. */
    nodeName?: string;
  },
): Promise<V1Pod> {
  let body: V1Pod = {
    metadata: {
      name,
      labels: opts.labels,
      annotations: opts.agent ? { [ANNOTATION_AGENT]: opts.agent } : {},
    },
    spec: {
      serviceAccountName: opts.serviceAccount,
      automountServiceAccountToken: false,
      containers: [{ name: 'agent', image: opts.image ?? 'ghcr.io/acme/agent@sha256:0000' }],
      ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
    },
  };
  if (opts.agent && opts.injected !== false) {
    body = injectBroker(body, { agent: opts.agent, issuer: f.issuer });
    if (opts.unlabelled) delete body.metadata?.labels?.[LABEL_AGENT];
  }
  return f.core.createNamespacedPod({ namespace: f.namespace, body });
}

export async function deletePod(f: Fixture, name: string, gracePeriodSeconds = 0): Promise<void> {
  await f.core.deleteNamespacedPod({ namespace: f.namespace, name, gracePeriodSeconds });
}

/**
 * Waits until the authority's pod watch (the default pod lookup) shows what `expect` says about
 * pod `name` in the fixture's namespace: the watch delivers a change milliseconds after the API
 * server committed it, and the security-relevant tests state what happens after that.
 */
export async function podWatchShows(
  f: Fixture,
  pods: PodGetter,
  name: string,
  expect: (pod: PodLike | undefined) => boolean,
): Promise<void> {
  if (!(pods instanceof WatchedPods)) throw new Error('the authority does not watch pods (podLookup: live)');
  for (let i = 0; i < 1000; i++) {
    if (expect(pods.peek(f.namespace, name))) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(
    `the authority's pod watch did not show the expected state of pod ${f.namespace}/${name} in 10 s`,
  );
}

/** What the kubelet mounts into the broker: a TokenRequest bound to the pod. */
export async function projectedToken(
  f: Fixture,
  serviceAccount: string,
  pod: V1Pod,
  audience = DEFAULT_BROKER_AUDIENCE,
  expirationSeconds = 600,
): Promise<string> {
  const res = await f.core.createNamespacedServiceAccountToken({
    namespace: f.namespace,
    name: serviceAccount,
    body: {
      spec: {
        audiences: [audience],
        expirationSeconds,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata!.name!, uid: pod.metadata!.uid! },
      },
    },
  });
  const token = res.status?.token;
  if (!token)
    throw new Error(
      `TokenRequest for ServiceAccount ${f.namespace}/${serviceAccount}: status.token is empty`,
    );
  return token;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  text: string;
}

/** A plain HTTP request (optionally from a given local address, to act as another source). */
export function httpCall(
  url: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    localAddress?: string;
  } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON: callers look at text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

export const form = (params: Record<string, string>): string => new URLSearchParams(params).toString();

/** POST /v1/token: exchange a projected service-account token for a session (RFC 8693). */
export function exchangeToken(
  base: string,
  subjectToken: string,
  extra: Record<string, string> = {},
  localAddress?: string,
): Promise<HttpResult> {
  return httpCall(`${base}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: TOKEN_TYPE_JWT,
      ...extra,
    }),
    ...(localAddress ? { localAddress } : {}),
  });
}

/**
 * A session for a new pod of `agent`, as a broker would get it: create the pod, exchange its bound
 * token. Throws with the authority's answer when the exchange is refused.
 */
export async function sessionFor(
  f: Fixture,
  base: string,
  o: { pod: string; agent: string; serviceAccount?: string },
): Promise<string> {
  const sa = o.serviceAccount ?? 'bot-sa';
  const pod = await createPod(f, o.pod, { serviceAccount: sa, agent: o.agent });
  const res = await exchangeToken(base, await projectedToken(f, sa, pod));
  if (res.status !== 200) throw new Error(`/v1/token answered ${res.status}: ${res.text}`);
  return res.body.access_token as string;
}

export interface SseEvent {
  event: string;
  id?: string;
  data: unknown;
}

export interface SseStream {
  status: number;
  /** Resolves with the next event matching `predicate` (events before it are consumed). */
  next(predicate?: (e: SseEvent) => boolean): Promise<SseEvent>;
  close(): void;
}

/** Opens a server-sent-events stream and parses its events. */
export function openStream(url: string, headers: Record<string, string>): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const queue: SseEvent[] = [];
    const waiters: Array<() => void> = [];
    const req = httpRequest(url, { method: 'GET', headers }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let idx = buffer.indexOf('\n\n');
        while (idx !== -1) {
          const block = buffer.slice(0, idx);
          buffer = buffer.slice(idx + 2);
          const e: Partial<SseEvent> & { dataText?: string } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) e.event = line.slice(7);
            else if (line.startsWith('id: ')) e.id = line.slice(4);
            else if (line.startsWith('data: ')) e.dataText = line.slice(6);
          }
          if (e.event) {
            queue.push({ event: e.event, id: e.id, data: e.dataText ? JSON.parse(e.dataText) : undefined });
            for (const w of waiters.splice(0)) w();
          }
          idx = buffer.indexOf('\n\n');
        }
      });
      const next = async (predicate: (e: SseEvent) => boolean = () => true): Promise<SseEvent> => {
        for (;;) {
          const i = queue.findIndex(predicate);
          if (i !== -1) {
            return queue.splice(0, i + 1)[i]!;
          }
          await new Promise<void>((r) => waiters.push(r));
        }
      };
      resolve({ status: res.statusCode ?? 0, next, close: () => req.destroy() });
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}
