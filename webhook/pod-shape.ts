/**
 * Structural check of the Pod in an AdmissionReview before anything reads it.
 * The API server only sends well-formed pods, but anything that can reach the
 * webhook's port can send anything; a field of the wrong type must become a
 * clear 400 naming the field, never an exception (500).
 * Only the fields the webhook reads or writes are checked.
 */
import type { V1Pod } from '@kubernetes/client-node';

export type PodShape = { ok: true; pod: V1Pod } | { ok: false; field: string; message: string };

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(field: string, expected: string, got: Json): PodShape {
  const kind = got === null ? 'null' : Array.isArray(got) ? 'a list' : typeof got;
  return { ok: false, field, message: `expected ${expected}, got ${kind}` };
}

/** Checks an optional map of strings (labels, annotations). */
function stringMap(v: Json, field: string): PodShape | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) return bad(field, 'a map of strings', v);
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== 'string') return bad(`${field}[${k}]`, 'a string', value);
  }
  return undefined;
}

/** Checks an optional list of objects with a string `name`. */
function namedList(
  v: Json,
  field: string,
  each?: (item: Record<string, Json>, at: string) => PodShape | undefined,
) {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return bad(field, 'a list', v);
  for (let i = 0; i < v.length; i++) {
    const item = v[i] as Json;
    const at = `${field}[${i}]`;
    if (!isObject(item)) return bad(at, 'an object', item);
    if (typeof item.name !== 'string') return bad(`${at}.name`, 'a string', item.name);
    const inner = each?.(item, at);
    if (inner) return inner;
  }
  return undefined;
}

function container(c: Record<string, Json>, at: string): PodShape | undefined {
  return (
    namedList(c.env, `${at}.env`) ??
    namedList(c.volumeMounts, `${at}.volumeMounts`) ??
    (c.image !== undefined && typeof c.image !== 'string'
      ? bad(`${at}.image`, 'a string', c.image)
      : undefined)
  );
}

export function checkPodShape(v: Json): PodShape {
  const where = 'request.object';
  if (!isObject(v)) return bad(where, 'a Pod object', v);
  const meta = v.metadata;
  if (meta !== undefined && !isObject(meta)) return bad(`${where}.metadata`, 'an object', meta);
  const spec = v.spec;
  if (spec !== undefined && !isObject(spec)) return bad(`${where}.spec`, 'an object', spec);
  const problem =
    (meta && stringMap(meta.annotations, `${where}.metadata.annotations`)) ||
    (meta && stringMap(meta.labels, `${where}.metadata.labels`)) ||
    (meta?.name !== undefined && typeof meta.name !== 'string'
      ? bad(`${where}.metadata.name`, 'a string', meta.name)
      : undefined) ||
    (spec && namedList(spec.containers, `${where}.spec.containers`, container)) ||
    (spec && namedList(spec.initContainers, `${where}.spec.initContainers`, container)) ||
    (spec && namedList(spec.volumes, `${where}.spec.volumes`)) ||
    (spec?.serviceAccountName !== undefined && typeof spec.serviceAccountName !== 'string'
      ? bad(`${where}.spec.serviceAccountName`, 'a string', spec.serviceAccountName)
      : undefined) ||
    (spec?.hostNetwork !== undefined && typeof spec.hostNetwork !== 'boolean'
      ? bad(`${where}.spec.hostNetwork`, 'a boolean', spec.hostNetwork)
      : undefined);
  return problem || { ok: true, pod: v as V1Pod };
}
