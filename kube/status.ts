/**
 * Status writes: only through the `/status` subresource, only when something
 * changed (docs/conventions.md §5).
 *
 * The write is a JSON merge patch of just the status fields the reconciler owns
 * (others, such as decision counters written by the authority, are left alone),
 * carrying the resourceVersion the reconciler read. The API server rejects it with
 * 409 if the object changed meanwhile; that comes back as a ConflictError so the
 * work queue re-reads and retries, and a status computed from a stale object is
 * never written. (Server-side apply would avoid the conflict but also hide it:
 * the decision would be applied over a spec it was not computed from.)
 */

import { type Condition, conditionsEqual } from '../core/conditions.js';
import { FIELD_MANAGER } from '../core/constants.js';
import { ConflictError, isConflict, isNotFound } from './errors.js';
import type { KubeApi, KubeObject, ResourceRef } from './kube.js';
import { resourcePath } from './kube.js';

/** Structural deep equality for JSON values; `undefined` members count as absent. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) if (!jsonEqual(ao[k], bo[k])) return false;
  return true;
}

/**
 * Whether writing `desired` (the fields a reconciler owns) would change `current`.
 * Conditions compare without lastTransitionTime; a desired field set to null means
 * "remove", which is a change only if the field is present.
 */
export function statusChanged(
  current: Record<string, unknown> | undefined,
  desired: Record<string, unknown>,
): boolean {
  const cur = current ?? {};
  for (const [k, v] of Object.entries(desired)) {
    if (v === undefined) continue;
    if (v === null) {
      if (cur[k] !== undefined && cur[k] !== null) return true;
      continue;
    }
    if (k === 'conditions') {
      if (!conditionsEqual(cur[k] as Condition[] | undefined, v as Condition[])) return true;
      continue;
    }
    if (!jsonEqual(cur[k], v)) return true;
  }
  return false;
}

export type StatusWriteResult = 'updated' | 'unchanged' | 'gone';

export interface StatusWriter {
  write(
    ref: ResourceRef,
    obj: KubeObject & { status?: unknown },
    desired: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<StatusWriteResult>;
}

export class ApiStatusWriter implements StatusWriter {
  constructor(
    private readonly api: KubeApi,
    private readonly fieldManager = FIELD_MANAGER,
  ) {}

  async write(
    ref: ResourceRef,
    obj: KubeObject & { status?: unknown },
    desired: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<StatusWriteResult> {
    if (!statusChanged(obj.status as Record<string, unknown> | undefined, desired)) return 'unchanged';
    const ns = obj.metadata?.namespace;
    const name = obj.metadata?.name ?? '';
    const path = resourcePath(ref, ns, name, 'status');
    try {
      await this.api.request('PATCH', path, {
        body: { metadata: { resourceVersion: obj.metadata?.resourceVersion }, status: desired },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: this.fieldManager },
        signal,
      });
      return 'updated';
    } catch (err) {
      // Deleted while we reconciled: nothing left to report on.
      if (isNotFound(err)) return 'gone';
      if (isConflict(err))
        throw new ConflictError(`${obj.kind ?? ref.plural} ${ns}/${name} status`, { cause: err });
      throw err;
    }
  }
}
