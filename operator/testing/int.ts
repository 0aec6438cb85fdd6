/**
 * Helpers for operator integration tests against the real control plane.
 * Polling here waits for convergence; nothing asserts how fast it happened.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import type { KubeApi, KubeObject } from '../../kube/kube.js';

export const testLogger = pino({ level: process.env.WARDEN_TEST_LOG ?? 'silent' });

/** Poll fn until it returns a value that is not undefined/false, or fail with the last observation. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      );
    }
    await delay(intervalMs);
  }
}

export type Obj = KubeObject & {
  spec?: unknown;
  status?: Record<string, unknown>;
  data?: Record<string, string>;
};

export function wardenPath(namespace: string, plural: string, name?: string): string {
  return `/apis/warden.dev/v1alpha1/namespaces/${namespace}/${plural}${name ? `/${name}` : ''}`;
}

export function corePath(namespace: string, plural: string, name?: string): string {
  return `/api/v1/namespaces/${namespace}/${plural}${name ? `/${name}` : ''}`;
}

export async function create(api: KubeApi, path: string, body: Obj): Promise<Obj> {
  return api.request<Obj>('POST', path, { body });
}

export async function get(api: KubeApi, path: string): Promise<Obj | undefined> {
  try {
    return await api.request<Obj>('GET', path);
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

export async function del(api: KubeApi, path: string): Promise<void> {
  await api.request('DELETE', path).catch((err: unknown) => {
    if ((err as { code?: number }).code !== 404) throw err;
  });
}

export function condition(
  obj: Obj | undefined,
  type: string,
): { status: string; reason: string; message: string } | undefined {
  const conds = (obj?.status?.conditions ?? []) as Array<{
    type: string;
    status: string;
    reason: string;
    message: string;
  }>;
  return conds.find((c) => c.type === type);
}

export interface ApiEvent {
  reason: string;
  type: string;
  note: string;
  regarding: { kind: string; name: string };
  series?: { count: number };
}

export async function eventsFor(api: KubeApi, namespace: string, name: string): Promise<ApiEvent[]> {
  const list = await api.request<{ items: ApiEvent[] }>(
    'GET',
    `/apis/events.k8s.io/v1/namespaces/${namespace}/events`,
  );
  return list.items.filter((e) => e.regarding?.name === name);
}
