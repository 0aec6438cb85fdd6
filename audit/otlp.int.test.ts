/**
 * Audit lines as OTLP logs, received by a real OpenTelemetry Collector (OTLP receiver + file
 * exporter built from the collector's Go modules, e2e/tools/otelcol): what arrives is exactly the
 * line written to stdout, with its time, severity, event name and routing attributes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Collector, startCollector } from '../e2e/tools/otelcol.js';
import { type AuditLine, toLine } from './export.js';
import { AUDIT_EVENT_NAME, OtlpAuditExporter } from './otlp.js';

let collector: Collector;
beforeAll(async () => {
  collector = await startCollector();
}, 20 * 60_000);
afterAll(async () => {
  await collector?.stop();
});

async function eventually<T>(read: () => T, done: (v: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('OTLP audit export to a real OpenTelemetry Collector', () => {
  it('delivers each audit line as one log record whose body is the line', async () => {
    const lines: AuditLine[] = [
      toLine(
        'broker',
        {
          time: '2026-12-04T12:00:00.123Z',
          kind: 'Decision',
          decision: 'Deny',
          pod: 'bot-0',
          user: 'https://idp.example|alice',
          target: 'jira',
          tool: 'jira.delete_issue',
          policy: 'support-read',
          reasons: [
            { policy: 'support-read', rule: 2, condition: 'business-hours', message: 'outside hours' },
          ],
          requestId: 'req-1',
          message: 'ConditionFailed: outside hours',
        },
        { namespace: 'agents', agent: 'support-bot', podUID: 'uid-1', session: 'jti-1' },
        { reason: 'ConditionFailed', stripped: ['x-api-key'], trail: true },
      ),
      toLine(
        'authority',
        { time: '2026-12-04T12:00:01.000Z', kind: 'Credential', decision: 'Allow', target: 'github' },
        { namespace: 'agents', agent: 'support-bot' },
        { endpoint: '/v1/credentials', remoteAddress: '127.0.0.1', trail: true },
      ),
      toLine(
        'controller',
        { time: '2026-12-04T12:00:02.000Z', kind: 'Suspension', message: 'suspended by alice' },
        { namespace: 'agents', agent: 'support-bot' },
        { trail: true },
      ),
    ];
    const exporter = new OtlpAuditExporter({
      endpoint: collector.logsEndpoint,
      version: '0.1.0',
      instance: 'warden-controller-0',
      scheduledDelayMillis: 50,
    });
    for (const l of lines) exporter.export(l);
    await exporter.shutdown();

    const received = await eventually(
      () => collector.received(),
      (r) => r.length >= lines.length,
      'three log records in the collector',
    );
    expect(received).toHaveLength(3);
    const byTime = [...received].sort((a, b) => String(a.timeUnixNano).localeCompare(String(b.timeUnixNano)));
    expect(byTime.map((r) => r.body)).toEqual(lines);
    const [deny, credential] = byTime;
    expect(deny).toMatchObject({
      resource: {
        'service.name': 'warden-controller',
        'service.version': '0.1.0',
        'service.instance.id': 'warden-controller-0',
      },
      scope: 'warden.audit',
      eventName: AUDIT_EVENT_NAME,
      timeUnixNano: String(BigInt(Date.parse('2026-12-04T12:00:00.123Z')) * 1_000_000n),
      severityText: 'WARN',
      attributes: {
        'warden.audit.schema': 'warden.audit/v1',
        'warden.audit.source': 'broker',
        'warden.audit.kind': 'Decision',
        'warden.audit.decision': 'Deny',
        'k8s.namespace.name': 'agents',
        'warden.agent': 'support-bot',
      },
    });
    expect(credential?.severityText).toBe('INFO');
  });
});
