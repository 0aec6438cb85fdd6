/**
 * Audit lines as OTLP log records to an OpenTelemetry Collector (`--audit-otlp-endpoint`), with the
 * maintained OpenTelemetry JS SDK: @opentelemetry/sdk-logs batches, @opentelemetry/exporter-logs-otlp-http
 * sends OTLP/HTTP (JSON). One log record per audit line: the body is the line itself (the same
 * fields as on stdout, docs/audit-export.md), the attributes repeat what a pipeline routes on.
 *
 * Best effort by design: while the collector is unreachable the SDK retries, then drops what does
 * not fit its queue (8,192 records, a few seconds at 1,000 lines/s). The JSON lines on stdout and the AuditRecord trail
 * are the records of truth; OTLP is a convenience for pipelines that speak it.
 */
import { type AnyValue, type Logger, SeverityNumber } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import type { AuditExporter, AuditLine } from './export.js';

/** The event name of every audit log record. */
export const AUDIT_EVENT_NAME = 'warden.audit';

export interface OtlpAuditExporterOptions {
  /** OTLP/HTTP logs endpoint, e.g. http://otel-collector.observability:4318/v1/logs. */
  endpoint: string;
  /** service.version of the resource. */
  version: string;
  /** service.instance.id of the resource (the pod name). */
  instance: string;
  /** How long a batch waits before it is sent (ms; default 1000). */
  scheduledDelayMillis?: number;
}

export class OtlpAuditExporter implements AuditExporter {
  private readonly provider: LoggerProvider;
  private readonly logger: Logger;

  constructor(opts: OtlpAuditExporterOptions) {
    this.provider = new LoggerProvider({
      resource: resourceFromAttributes({
        'service.name': 'warden-controller',
        'service.version': opts.version,
        'service.instance.id': opts.instance,
      }),
      processors: [
        new BatchLogRecordProcessor({
          exporter: new OTLPLogExporter({ url: opts.endpoint }),
          scheduledDelayMillis: opts.scheduledDelayMillis ?? 1000,
          // 1,000 audit lines/s fit a batch a second with room for a few seconds of collector outage.
          maxExportBatchSize: 1024,
          maxQueueSize: 8192,
        }),
      ],
    });
    this.logger = this.provider.getLogger('warden.audit');
  }

  export(line: AuditLine): void {
    const time = Date.parse(line.time);
    this.logger.emit({
      eventName: AUDIT_EVENT_NAME,
      ...(Number.isFinite(time) ? { timestamp: time } : {}),
      severityNumber: line.decision === 'Deny' ? SeverityNumber.WARN : SeverityNumber.INFO,
      severityText: line.decision === 'Deny' ? 'WARN' : 'INFO',
      // The line is plain JSON data (strings, booleans, arrays, objects): a valid AnyValue.
      body: line as unknown as AnyValue,
      attributes: {
        'warden.audit.schema': line.schema,
        'warden.audit.source': line.source,
        'warden.audit.kind': line.kind,
        ...(line.decision ? { 'warden.audit.decision': line.decision } : {}),
        ...(line.namespace ? { 'k8s.namespace.name': line.namespace } : {}),
        ...(line.agent ? { 'warden.agent': line.agent } : {}),
      },
    });
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}
