/**
 * metav1.Condition helpers (docs/conventions.md §5), free of I/O.
 *
 * A condition's lastTransitionTime records when its *status* last flipped, so a
 * change of reason, message or observedGeneration alone keeps the old time. That
 * keeps `kubectl get` ages meaningful and lets status writes be skipped when
 * nothing but the clock moved.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** The metav1.Condition shape (the same as the generated CRD types' Condition). */
export interface Condition {
  /** CamelCase type, e.g. Ready. */
  type: string;
  status: ConditionStatus;
  /** CamelCase machine-readable reason — use a named constant. */
  reason: string;
  /** For people; never contains a secret. */
  message: string;
  observedGeneration?: number;
  /** RFC 3339 time the status last changed. */
  lastTransitionTime: string;
}

/** A condition as a reconciler decides it: everything but the transition time. */
export type DesiredCondition = Omit<Condition, 'lastTransitionTime'>;

/** RFC 3339 with second precision, as metav1.Time serializes. */
export function formatTime(now: Date): string {
  return `${now.toISOString().slice(0, 19)}Z`;
}

export function getCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

/**
 * Return a new list with `desired` set. The existing condition of that type keeps
 * its lastTransitionTime unless the status flips; a new type gets `now`. Order is
 * kept (new types are appended) so a re-set produces an identical list. Pure: the
 * input array is not modified.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  desired: DesiredCondition,
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === desired.type);
  const existing = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    existing && existing.status === desired.status ? existing.lastTransitionTime : formatTime(now);
  const next: Condition = {
    type: desired.type,
    status: desired.status,
    reason: desired.reason,
    message: desired.message,
    ...(desired.observedGeneration !== undefined ? { observedGeneration: desired.observedGeneration } : {}),
    lastTransitionTime,
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

/** Apply several desired conditions in order. */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  desired: readonly DesiredCondition[],
  now: Date,
): Condition[] {
  return desired.reduce<Condition[]>((acc, d) => setCondition(acc, d, now), [...(conditions ?? [])]);
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** Same type, status, reason, message and observedGeneration (lastTransitionTime ignored). */
export function conditionEqual(a: Condition | DesiredCondition, b: Condition | DesiredCondition): boolean {
  return (
    a.type === b.type &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.observedGeneration === b.observedGeneration
  );
}

/**
 * Whether two condition lists say the same thing, in any order, ignoring
 * lastTransitionTime (which setCondition keeps stable anyway).
 */
export function conditionsEqual(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return false;
  return x.every((c) => {
    const other = getCondition(y, c.type);
    return other !== undefined && conditionEqual(c, other);
  });
}

/** The status flipped between two lists for this type (absent counts as a flip to anything). */
export function conditionFlipped(
  before: readonly Condition[] | undefined,
  after: readonly Condition[] | undefined,
  type: string,
): boolean {
  return getCondition(before, type)?.status !== getCondition(after, type)?.status;
}
