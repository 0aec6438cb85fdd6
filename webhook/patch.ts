/**
 * JSON Patch (RFC 6902) as the diff of the original and the mutated object.
 * Only `add` and `replace` are ever produced: the mutation adds, it never takes
 * anything away, and a diff that would need `remove` is a bug we refuse to emit.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type PatchOperation =
  | { op: 'add'; path: string; value: JsonValue }
  | { op: 'replace'; path: string; value: JsonValue };

/** Thrown when the mutated object lacks something the original had. */
export class RemovalError extends Error {
  constructor(readonly path: string) {
    super(`mutation removed ${path || '/'}; the webhook may only add fields`);
    this.name = 'RemovalError';
  }
}

/** RFC 6901: `~` → `~0`, `/` → `~1` (so `warden.dev/agent` becomes `warden.dev~1agent`). */
export function escapePointerToken(token: string): string {
  // Fast path: almost every key (field names) needs no escaping.
  if (!token.includes('~') && !token.includes('/')) return token;
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * The patch that turns `original` into `mutated`; `[]` when they are equal.
 * Both are plain JSON data (what JSON.parse produced, plus what the mutation
 * added); a member whose value is `undefined` counts as absent, as in JSON.
 */
export function diff(original: unknown, mutated: unknown): PatchOperation[] {
  const ops: PatchOperation[] = [];
  diffValue((original ?? null) as JsonValue, (mutated ?? null) as JsonValue, '', ops);
  return ops;
}

// Round-trip through JSON (used where a deep, JSON-shaped copy is wanted).
function toJson(v: unknown): JsonValue {
  return v === undefined ? null : (JSON.parse(JSON.stringify(v)) as JsonValue);
}

function isObject(v: JsonValue): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Recurses without comparing whole subtrees first: equal subtrees simply
// produce no operations, so each node is visited once.
function diffValue(a: JsonValue, b: JsonValue, path: string, ops: PatchOperation[]): void {
  if (a === b) return;
  if (isObject(a) && isObject(b)) diffObject(a, b, path, ops);
  else if (Array.isArray(a) && Array.isArray(b)) diffArray(a, b, path, ops);
  else ops.push({ op: 'replace', path, value: b });
}

function diffObject(
  a: { [key: string]: JsonValue },
  b: { [key: string]: JsonValue },
  path: string,
  ops: PatchOperation[],
): void {
  for (const key of Object.keys(a)) {
    if (a[key] !== undefined && (!Object.hasOwn(b, key) || b[key] === undefined)) {
      throw new RemovalError(`${path}/${escapePointerToken(key)}`);
    }
  }
  for (const key of Object.keys(b)) {
    const value = b[key];
    if (value === undefined) continue;
    const p = `${path}/${escapePointerToken(key)}`;
    const old = Object.hasOwn(a, key) ? a[key] : undefined;
    if (old === undefined) ops.push({ op: 'add', path: p, value });
    else diffValue(old, value, p, ops);
  }
}

/**
 * Aligns the original elements, in order, inside the mutated array, matching
 * named elements (containers, volumes, env vars) by name and others by value.
 * Unmatched mutated elements become `add` at their final index; operations are
 * emitted in index order so each index is right at the time it is applied.
 */
function diffArray(a: JsonValue[], b: JsonValue[], path: string, ops: PatchOperation[]): void {
  const local: PatchOperation[] = [];
  let i = 0;
  for (let j = 0; j < b.length; j++) {
    const next = a[i];
    const value = b[j] as JsonValue;
    if (next !== undefined && sameElement(next, value)) {
      diffValue(next, value, `${path}/${j}`, local);
      i++;
    } else {
      local.push({ op: 'add', path: `${path}/${j}`, value });
    }
  }
  if (i < a.length) throw new RemovalError(`${path}/${i}`);
  ops.push(...local);
}

function nameOf(v: JsonValue): string | undefined {
  return isObject(v) && typeof v.name === 'string' ? v.name : undefined;
}

function sameElement(a: JsonValue, b: JsonValue): boolean {
  const na = nameOf(a);
  return na !== undefined ? na === nameOf(b) : deepEqual(a, b);
}

export function deepEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i] as JsonValue));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k] as JsonValue, b[k] as JsonValue));
  }
  return false;
}

/** Applies `add`/`replace` operations to a deep copy of `doc` (used by tests and the benchmark to check patches). */
export function applyPatch<T>(doc: T, ops: readonly PatchOperation[]): T {
  const root = { value: structuredClone(toJson(doc)) };
  for (const op of ops) {
    const tokens = op.path === '' ? [] : op.path.slice(1).split('/').map(unescapePointerToken);
    let parent: JsonValue = root as unknown as JsonValue;
    let key = 'value';
    for (const t of tokens) {
      const container = parent as { [k: string]: JsonValue };
      parent = (Object.hasOwn(container, key) ? container[key] : undefined) as JsonValue;
      key = t;
      if (parent === undefined || parent === null || typeof parent !== 'object') {
        throw new Error(`patch path ${op.path}: parent of "${t}" does not exist`);
      }
    }
    if (Array.isArray(parent)) {
      const idx = key === '-' ? parent.length : Number(key);
      if (!Number.isInteger(idx) || idx < 0 || idx > parent.length)
        throw new Error(`patch path ${op.path}: bad index`);
      if (op.op === 'add') parent.splice(idx, 0, op.value);
      else parent[idx] = op.value;
    } else {
      const obj = parent as { [k: string]: JsonValue };
      if (op.op === 'replace' && !Object.hasOwn(obj, key)) {
        throw new Error(`patch path ${op.path}: replace of a missing member`);
      }
      // defineProperty, not assignment: a "__proto__" key must stay a plain member.
      Object.defineProperty(obj, key, {
        value: op.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return root.value as T;
}

function unescapePointerToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}
