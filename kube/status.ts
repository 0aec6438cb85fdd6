/**
 * Status writes: only through the `/status` subresource, only when something
 * changed (docs/conventions.md §5).
 *
 * The write is a JSON merge patch of just the status fields the writer's field manager
 * owns (core/status-owners.ts; others, such as decision counters written by the authority,
 * are left alone, and a field it does not own is refused),
 * carrying the resourceVersion the reconciler read. The API server rejects it with
 * 409 if the object changed meanwhile; that comes back as a ConflictError so the
 * work queue re-reads and retries, and a status computed from a stale object is
 * never written. (Server-side apply would avoid the conflict but also hide it:
 * the decision would be applied over a spec it was not computed from.)
 */

import { type Condition, conditionsEqual } from '../core/conditions.js';
import { FIELD_MANAGER, PLURAL } from '../core/constants.js';
import { unownedStatusFields } from '../core/status-owners.js';
import { ConflictError, isConflict, isNotFound, TerminalError } from './errors.js';
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

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Whether writing `desired` (the fields a writer owns) as a JSON merge patch would change `current`.
 * Conditions compare without lastTransitionTime; a desired field set to null means "remove", which
 * is a change only if the field is present; an object is compared member by member, as the merge
 * patch applies it (a member the patch leaves out is left alone, so it is no change).
 */
export function statusChanged(
  current: Record<string, unknown> | undefined,
  desired: Record<string, unknown>,
  top = true,
): boolean {
  const cur = current ?? {};
  for (const [k, v] of Object.entries(desired)) {
    if (v === undefined) continue;
    if (v === null) {
      if (cur[k] !== undefined && cur[k] !== null) return true;
      continue;
    }
    if (top && k === 'conditions') {
      if (!conditionsEqual(cur[k] as Condition[] | undefined, v as Condition[])) return true;
      continue;
    }
    if (isPlainObject(v)) {
      const c = cur[k];
      if (!isPlainObject(c)) {
        if (statusChanged({}, v, false)) return true;
        continue;
      }
      if (statusChanged(c, v, false)) return true;
      continue;
    }
    if (!jsonEqual(cur[k], v)) return true;
  }
  return false;
}

export type StatusWriteResult = 'updated' | 'unchanged' | 'gone';

/**
 * Writes the status fields one field manager owns (core/status-owners.ts), only through /status and
 * only when they changed. One per field manager per process: `Manager.statusWriter(fieldManager)`.
 */
export interface StatusWriter {
  /** The field manager every write carries. */
  readonly fieldManager: string;
  /**
   * Merge-patches `desired` with the resourceVersion of `obj`: a status computed from a stale object
   * is refused (ConflictError, 409) and recomputed by the caller. The default for every writer.
   */
  write(
    ref: ResourceRef,
    obj: KubeObject & { status?: unknown },
    desired: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<StatusWriteResult>;
  /**
   * The same without the resourceVersion: for a result that must land whatever else changed on the
   * object since `obj` was read (the revocation's outcome after the credentials were revoked), where
   * this writer is the only one of the fields, so nothing else's write can be lost.
   */
  overwrite(
    ref: ResourceRef,
    obj: KubeObject & { status?: unknown },
    desired: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<StatusWriteResult>;
}

const KIND_OF_PLURAL = new Map<string, string>(
  Object.entries(PLURAL).map(([kind, plural]) => [plural, kind]),
);

export class ApiStatusWriter implements StatusWriter {
  constructor(
    private readonly api: KubeApi,
    readonly fieldManager: string = FIELD_MANAGER,
  ) {}

  write(
    ref: ResourceRef,
    obj: KubeObject & { status?: unknown },
    desired: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<StatusWriteResult> {
    return this.patch(ref, obj, desired, true, signal);
  }

  overwrite(
    ref: ResourceRef,
    obj: KubeObject & { status?: unknown },
    desired: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<StatusWriteResult> {
    return this.patch(ref, obj, desired, false, signal);
  }

  private async patch(
    ref: ResourceRef,
    obj: KubeObject & { status?: unknown },
    desired: Record<string, unknown>,
    precondition: boolean,
    signal: AbortSignal | undefined,
  ): Promise<StatusWriteResult> {
    const kind = KIND_OF_PLURAL.get(ref.plural) ?? obj.kind ?? ref.plural;
    const unowned = unownedStatusFields(kind, this.fieldManager, desired);
    if (unowned.length > 0)
      // A programming error, not a condition of the object: retrying cannot fix it.
      throw new TerminalError(
        `${kind} status: field manager ${this.fieldManager} does not own ${unowned.map((f) => `status.${f}`).join(', ')}; every status field has one owner (core/status-owners.ts, docs/conventions.md §5): add a row there or write through the owner`,
      );
    if (!statusChanged(obj.status as Record<string, unknown> | undefined, desired)) return 'unchanged';
    const ns = obj.metadata?.namespace;
    const name = obj.metadata?.name ?? '';
    const path = resourcePath(ref, ns, name, 'status');
    try {
      await this.api.request('PATCH', path, {
        body: {
          ...(precondition ? { metadata: { resourceVersion: obj.metadata?.resourceVersion } } : {}),
          status: desired,
        },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: this.fieldManager },
        signal,
      });
      return 'updated';
    } catch (err) {
      // Deleted while we reconciled: nothing left to report on.
      if (isNotFound(err)) return 'gone';
      if (isConflict(err))
        throw new ConflictError(`${obj.kind ?? kind} ${ns}/${name} status`, { cause: err });
      throw err;
    }
  }
}
