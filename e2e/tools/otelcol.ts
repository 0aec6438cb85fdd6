/**
 * A real OpenTelemetry Collector for tests and benchmarks: the minimal build of
 * e2e/tools/otelcol (OTLP receiver + file exporter, built by build-otelcol.sh and cached in
 * ~/.cache/warden/tools), listening on a loopback port and writing what it receives to a file
 * in its own temporary directory. Its own telemetry is off, so it opens no other port.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connects, ensureTool, freePort } from './local-tool.js';

/** The collector binary, built first when the cache lacks it. */
export function ensureCollector(timeoutMs = 20 * 60_000): Promise<string> {
  return ensureTool('build-otelcol.sh', 'OTELCOL', timeoutMs);
}

/** A plain value from an OTLP JSON AnyValue ({"stringValue": …}, {"kvlistValue": …}, …). */
export function fromAnyValue(v: unknown): unknown {
  const o = (v ?? {}) as Record<string, unknown>;
  if ('stringValue' in o) return o.stringValue;
  if ('boolValue' in o) return o.boolValue;
  if ('intValue' in o) return Number(o.intValue);
  if ('doubleValue' in o) return o.doubleValue;
  if ('arrayValue' in o) return ((o.arrayValue as { values?: unknown[] }).values ?? []).map(fromAnyValue);
  if ('kvlistValue' in o) return attributes((o.kvlistValue as { values?: unknown[] }).values);
  return undefined;
}

function attributes(kvs: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of (kvs as { key: string; value: unknown }[] | undefined) ?? [])
    out[kv.key] = fromAnyValue(kv.value);
  return out;
}

/** One log record as the collector received it. */
export interface ReceivedLog {
  resource: Record<string, unknown>;
  scope: string;
  eventName?: string;
  timeUnixNano?: string;
  severityNumber?: number;
  severityText?: string;
  body: unknown;
  attributes: Record<string, unknown>;
}

export interface Collector {
  /** OTLP/HTTP logs endpoint. */
  logsEndpoint: string;
  /** Every log record the file exporter has written so far. */
  received(): ReceivedLog[];
  stop(): Promise<void>;
}

export async function startCollector(): Promise<Collector> {
  const bin = await ensureCollector();
  const dir = mkdtempSync(join(tmpdir(), 'warden-otelcol-'));
  const port = await freePort();
  const out = join(dir, 'logs.jsonl');
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      http:',
      `        endpoint: 127.0.0.1:${port}`,
      'exporters:',
      '  file:',
      `    path: ${out}`,
      '    flush_interval: 100ms',
      'service:',
      '  telemetry:',
      '    metrics:',
      '      level: none',
      '  pipelines:',
      '    logs:',
      '      receivers: [otlp]',
      '      exporters: [file]',
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + String(c)).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!(await connects(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the OpenTelemetry Collector did not start listening on 127.0.0.1:${port}:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    logsEndpoint: `http://127.0.0.1:${port}/v1/logs`,
    received() {
      let text = '';
      try {
        text = readFileSync(out, 'utf8');
      } catch {
        return [];
      }
      const logs: ReceivedLog[] = [];
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        const req = JSON.parse(line) as {
          resourceLogs?: {
            resource?: { attributes?: unknown };
            scopeLogs?: { scope?: { name?: string }; logRecords?: Record<string, unknown>[] }[];
          }[];
        };
        for (const rl of req.resourceLogs ?? []) {
          for (const sl of rl.scopeLogs ?? []) {
            for (const r of sl.logRecords ?? []) {
              logs.push({
                resource: attributes(rl.resource?.attributes),
                scope: sl.scope?.name ?? '',
                ...(typeof r.eventName === 'string' ? { eventName: r.eventName } : {}),
                ...(typeof r.timeUnixNano === 'string' ? { timeUnixNano: r.timeUnixNano } : {}),
                ...(typeof r.severityNumber === 'number' ? { severityNumber: r.severityNumber } : {}),
                ...(typeof r.severityText === 'string' ? { severityText: r.severityText } : {}),
                body: fromAnyValue(r.body),
                attributes: attributes(r.attributes),
              });
            }
          }
        }
      }
      return logs;
    },
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
