/**
 * Idempotent "add if missing, keyed by name" helpers. The mutation is built only
 * from these, so running it twice (admission reinvocation) changes nothing the
 * second time, and nothing the pod author wrote is ever overwritten or removed.
 * They mutate the object they are given; mutate.ts hands them a deep copy.
 */
import type { V1Container, V1EnvVar, V1ObjectMeta, V1Volume } from '@kubernetes/client-node';

/** Adds `container` unless one with the same name exists. `first` places it ahead of the others. */
export function addContainerIfMissing(
  list: V1Container[],
  container: V1Container,
  position: 'first' | 'last',
): V1Container[] {
  if (list.some((c) => c.name === container.name)) return list;
  if (position === 'first') list.unshift(container);
  else list.push(container);
  return list;
}

/** Adds `volume` unless one with the same name exists. */
export function addVolumeIfMissing(list: V1Volume[], volume: V1Volume): V1Volume[] {
  if (!list.some((v) => v.name === volume.name)) list.push(volume);
  return list;
}

/** Adds each env var the container does not define yet; a value the author set wins. */
export function addEnvIfMissing(container: V1Container, vars: readonly V1EnvVar[]): void {
  const env = container.env ?? [];
  for (const v of vars) {
    if (!env.some((e) => e.name === v.name)) env.push({ ...v });
  }
  if (env.length > 0) container.env = env;
}

/** Sets an annotation unless the key is present. */
export function addAnnotationIfMissing(meta: V1ObjectMeta, key: string, value: string): void {
  const annotations = meta.annotations ?? {};
  if (!Object.hasOwn(annotations, key)) annotations[key] = value;
  meta.annotations = annotations;
}

/** Sets a label unless the key is present. */
export function addLabelIfMissing(meta: V1ObjectMeta, key: string, value: string): void {
  const labels = meta.labels ?? {};
  if (!Object.hasOwn(labels, key)) labels[key] = value;
  meta.labels = labels;
}
