/** Reading series back from a registry, for tests (not used in production code). */
import type { WardenMetrics } from './metrics.js';

/**
 * The value of the series of metric `name` whose labels include `labels` (0 when it does not exist
 * yet). For a histogram pass the sample name, e.g. `<name>_count` or `<name>_sum`.
 */
export async function seriesValue(
  m: Pick<WardenMetrics, 'registry'>,
  name: string,
  labels: Record<string, string>,
  sample = name,
): Promise<number> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  const hit = values.find(
    (v) =>
      // Counters and gauges leave metricName unset; histograms set it per sample (_bucket, _sum, _count).
      ((v as { metricName?: string }).metricName ?? name) === sample &&
      Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
  );
  return hit?.value ?? 0;
}

/** The sum over every series of a counter (e.g. all decisions, whatever their labels). */
export async function counterTotal(m: Pick<WardenMetrics, 'registry'>, name: string): Promise<number> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  return values.reduce((n, v) => n + v.value, 0);
}

/**
 * The value of one sample in a Prometheus text exposition (what a scrape returns), matched by name
 * and by the given labels (other labels, e.g. `pod`, may be present); undefined when absent.
 */
export function scrapedValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}
