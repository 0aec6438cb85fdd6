import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { CredentialDenyReason } from '../authority/credentials.js';
import type { OAuthErrorCode } from '../authority/errors.js';
import { BrokerDenyReason } from '../broker/constants.js';
import type { DecisionReason } from '../core/policy/types.js';
import type { ControllerMetrics } from '../kube/controller.js';
import type { RejectionReason } from '../webhook/checks.js';
import {
  ADMISSION_BUCKETS,
  bounded,
  CONTROLLERS,
  controllerMetrics,
  createMetrics,
  REASONS,
  type Reason,
  TOKEN_EXCHANGE_RESULTS,
  type TokenExchangeResult,
} from './metrics.js';
import { startMetricsServer } from './server.js';

/** The sample lines of one series name (e.g. `x_total`, `x_seconds_count`) from the full exposition. */
async function samples(m: ReturnType<typeof createMetrics>, name: string): Promise<string[]> {
  const text = await m.registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

// Compile-time: every reason the components can produce has a label value (tsc fails otherwise).
type Missing<T extends string, Known extends string> = Exclude<T, Known>;
const policyReasonsCovered: Missing<DecisionReason, Reason> extends never ? true : false = true;
const webhookReasonsCovered: Missing<RejectionReason, Reason> extends never ? true : false = true;
const oauthCodesCovered: Missing<Exclude<OAuthErrorCode, 'unsupported_grant_type'>, Reason> extends never
  ? true
  : false = true;
const credentialDenialsCovered: Missing<CredentialDenyReason, Reason> extends never ? true : false = true;
const exchangeCodesCovered: Missing<OAuthErrorCode, TokenExchangeResult | 'invalid_token'> extends never
  ? true
  : false = true;

describe('label value sets', () => {
  it('cover every reason the components define', () => {
    expect([
      policyReasonsCovered,
      webhookReasonsCovered,
      oauthCodesCovered,
      credentialDenialsCovered,
      exchangeCodesCovered,
    ]).toEqual([true, true, true, true, true]);
    for (const r of Object.values(BrokerDenyReason)) expect(REASONS).toContain(r);
  });

  it('are unique and all carry a catch-all where unknown values can arrive', () => {
    for (const set of [REASONS, CONTROLLERS, TOKEN_EXCHANGE_RESULTS]) {
      expect(new Set(set).size).toBe(set.length);
      expect(set).toContain('other');
    }
  });

  it.each([
    ['a known value', 'DeniedByPolicy', 'DeniedByPolicy'],
    ['an unknown value', 'something new', 'other'],
    ['a near miss in case', 'deniedbypolicy', 'other'],
    ['a prototype key', 'constructor', 'other'],
    ['an attacker string', 'x'.repeat(10_000), 'other'],
  ])('bounded() maps %s', (_name, value, expected) => {
    expect(bounded(REASONS, value, 'other')).toBe(expected);
  });
});

describe('createMetrics', () => {
  it('registers every metric with help text and the agreed label names', async () => {
    const text = await createMetrics().registry.metrics();
    const expected: Array<[string, string, string[]]> = [
      ['warden_decisions_total', 'counter', ['component', 'decision', 'reason']],
      ['warden_denials_total', 'counter', ['reason']],
      ['warden_credentials_issued_total', 'counter', ['type']],
      ['warden_revocations_total', 'counter', ['type', 'result']],
      ['warden_workqueue_depth', 'gauge', ['controller']],
      ['warden_reconcile_errors_total', 'counter', ['controller']],
      ['warden_reconcile_duration_seconds', 'histogram', ['controller']],
      ['warden_webhook_admission_duration_seconds', 'histogram', ['outcome']],
      ['warden_broker_request_duration_seconds', 'histogram', ['kind', 'decision']],
      ['warden_audit_entries_total', 'counter', ['result']],
      ['warden_broker_audit_spool_total', 'counter', ['result']],
      ['warden_token_exchanges_total', 'counter', ['result']],
      ['warden_circuit_breaker_trips_total', 'counter', ['threshold', 'action']],
    ];
    for (const [name, type] of expected) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S.{20,}$`, 'm'));
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
    }
    const m = createMetrics();
    const json = await m.registry.getMetricsAsJSON();
    expect(json.map((j) => j.name).sort()).toEqual(expected.map(([n]) => n).sort());
  });

  it('counts a deny in decisions and denials, an allow only in decisions', async () => {
    const m = createMetrics();
    m.decision('broker', 'deny', 'ConditionFailed');
    m.decision('broker', 'deny', 'ConditionFailed');
    m.decision('webhook', 'deny', 'AgentSuspended');
    m.decision('authority', 'allow', 'Allowed');
    expect(await samples(m, 'warden_decisions_total')).toEqual([
      'warden_decisions_total{component="broker",decision="deny",reason="ConditionFailed"} 2',
      'warden_decisions_total{component="webhook",decision="deny",reason="AgentSuspended"} 1',
      'warden_decisions_total{component="authority",decision="allow",reason="Allowed"} 1',
    ]);
    expect(await samples(m, 'warden_denials_total')).toEqual([
      'warden_denials_total{reason="ConditionFailed"} 2',
      'warden_denials_total{reason="AgentSuspended"} 1',
    ]);
  });

  it('keeps the series bounded: 1000 distinct unknown reasons, controllers and types make one series each', async () => {
    const m = createMetrics();
    for (let i = 0; i < 1000; i++) {
      m.decision('broker', 'deny', `made-up reason ${i}`);
      m.credentialIssued(`Type${i}`);
      m.reconcileError(`controller-${i}`);
      m.tokenExchange(`code_${i}`);
      m.brokerRequestDuration(`ftp${i}`, 'allow', 0.01);
    }
    expect(await samples(m, 'warden_denials_total')).toEqual(['warden_denials_total{reason="other"} 1000']);
    expect(await samples(m, 'warden_credentials_issued_total')).toEqual([
      'warden_credentials_issued_total{type="other"} 1000',
    ]);
    expect(await samples(m, 'warden_reconcile_errors_total')).toContain(
      'warden_reconcile_errors_total{controller="other"} 1000',
    );
    expect(await samples(m, 'warden_token_exchanges_total')).toContain(
      'warden_token_exchanges_total{result="other"} 1000',
    );
    expect(await samples(m, 'warden_broker_request_duration_seconds_count')).toEqual([
      'warden_broker_request_duration_seconds_count{kind="other",decision="allow"} 1000',
    ]);
  });

  it('pre-creates the series alerts divide by, at zero', async () => {
    const m = createMetrics();
    expect(await samples(m, 'warden_audit_entries_total')).toEqual([
      'warden_audit_entries_total{result="written"} 0',
      'warden_audit_entries_total{result="dropped"} 0',
    ]);
    expect(await samples(m, 'warden_reconcile_errors_total')).toEqual([
      'warden_reconcile_errors_total{controller="agentidentity"} 0',
      'warden_reconcile_errors_total{controller="accesspolicy"} 0',
      'warden_reconcile_errors_total{controller="credentialprovider"} 0',
      'warden_reconcile_errors_total{controller="revocation"} 0',
      'warden_reconcile_errors_total{controller="audit-retention"} 0',
      'warden_reconcile_errors_total{controller="postgres-sweep"} 0',
    ]);
    expect(await samples(m, 'warden_token_exchanges_total')).toHaveLength(4);
  });

  it('records issuance, revocations, queue depth, audit entries and token exchanges', async () => {
    const m = createMetrics();
    m.credentialIssued('JWT');
    m.credentialIssued('PostgreSQL');
    m.credentialIssued('PostgreSQL');
    m.revocation('PostgreSQL', 'success');
    m.revocation('OAuth2TokenExchange', 'failure');
    m.queueDepth('revocation', 7);
    m.queueDepth('revocation', 3);
    m.queueDepth('agentidentity', -1); // clamped: a depth is never negative
    m.auditEntries('written', 200);
    m.auditEntries('dropped', 0); // no-op
    m.tokenExchange('issued');
    m.tokenExchange('invalid_grant');
    expect(await samples(m, 'warden_credentials_issued_total')).toEqual([
      'warden_credentials_issued_total{type="JWT"} 1',
      'warden_credentials_issued_total{type="PostgreSQL"} 2',
    ]);
    expect(await samples(m, 'warden_revocations_total')).toEqual([
      'warden_revocations_total{type="PostgreSQL",result="success"} 1',
      'warden_revocations_total{type="OAuth2TokenExchange",result="failure"} 1',
    ]);
    expect(await samples(m, 'warden_workqueue_depth')).toEqual([
      'warden_workqueue_depth{controller="revocation"} 3',
      'warden_workqueue_depth{controller="agentidentity"} 0',
    ]);
    expect(await samples(m, 'warden_audit_entries_total')).toEqual([
      'warden_audit_entries_total{result="written"} 200',
      'warden_audit_entries_total{result="dropped"} 0',
    ]);
    expect(await samples(m, 'warden_token_exchanges_total')).toEqual([
      'warden_token_exchanges_total{result="issued"} 1',
      'warden_token_exchanges_total{result="refreshed"} 0',
      'warden_token_exchanges_total{result="invalid_grant"} 1',
      'warden_token_exchanges_total{result="server_error"} 0',
    ]);
  });

  it('histograms: admission latency lands in the right buckets, timers use the injected clock', async () => {
    let now = 1000;
    const m = createMetrics({ nowMs: () => now });
    m.admissionDuration('injected', 0.004);
    const stop = m.startTimer((s) => m.admissionDuration('rejected', s));
    now += 1500;
    expect(stop()).toBe(1.5);
    m.admissionDuration('error', Number.NaN); // recorded as 0 rather than poisoning the sum
    const lines = (
      await Promise.all(
        ['_bucket', '_sum', '_count'].map((s) => samples(m, `warden_webhook_admission_duration_seconds${s}`)),
      )
    ).flat();
    expect(lines).toContain(
      'warden_webhook_admission_duration_seconds_bucket{le="0.0025",outcome="injected"} 0',
    );
    expect(lines).toContain(
      'warden_webhook_admission_duration_seconds_bucket{le="0.005",outcome="injected"} 1',
    );
    expect(lines).toContain('warden_webhook_admission_duration_seconds_bucket{le="1",outcome="rejected"} 0');
    expect(lines).toContain(
      'warden_webhook_admission_duration_seconds_bucket{le="2.5",outcome="rejected"} 1',
    );
    expect(lines).toContain('warden_webhook_admission_duration_seconds_sum{outcome="rejected"} 1.5');
    expect(lines).toContain('warden_webhook_admission_duration_seconds_count{outcome="error"} 1');
    expect(lines).toContain('warden_webhook_admission_duration_seconds_sum{outcome="error"} 0');
    expect(lines.filter((l) => l.includes('outcome="injected"') && l.includes('_bucket'))).toHaveLength(
      ADMISSION_BUCKETS.length + 1, // + le="+Inf"
    );
  });

  it('adds default labels to every series', async () => {
    const m = createMetrics({ defaultLabels: { pod: 'warden-controller-0' } });
    m.decision('operator', 'allow', 'Allowed');
    expect(await samples(m, 'warden_decisions_total')).toEqual([
      'warden_decisions_total{component="operator",decision="allow",reason="Allowed",pod="warden-controller-0"} 1',
    ]);
  });

  it('processes that ask for them also export Node.js process metrics', async () => {
    const text = await createMetrics({ processMetrics: true }).registry.metrics();
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });
});

describe('controllerMetrics (kube/controller.ts ControllerOptions.metrics)', () => {
  it('records every reconcile duration, counts only errors, and reports queue depth', async () => {
    const m = createMetrics();
    // Typed as the operator's hook interface: tsc fails if the two drift apart.
    const hooks: Required<ControllerMetrics> = controllerMetrics(m);
    hooks.reconciled('revocation', 'success', 20);
    hooks.reconciled('revocation', 'conflict', 5);
    hooks.reconciled('revocation', 'error', 120);
    hooks.queueDepth('revocation', 4);
    expect(await samples(m, 'warden_reconcile_errors_total')).toContain(
      'warden_reconcile_errors_total{controller="revocation"} 1',
    );
    expect(await samples(m, 'warden_reconcile_duration_seconds_count')).toEqual([
      'warden_reconcile_duration_seconds_count{controller="revocation"} 3',
    ]);
    expect(await samples(m, 'warden_reconcile_duration_seconds_sum')).toEqual([
      'warden_reconcile_duration_seconds_sum{controller="revocation"} 0.145',
    ]);
    expect(await samples(m, 'warden_workqueue_depth')).toEqual([
      'warden_workqueue_depth{controller="revocation"} 4',
    ]);
  });
});

describe('GET /metrics', () => {
  function get(port: number, path: string, method = 'GET') {
    return new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: res.headers['content-type'],
            body: Buffer.concat(chunks).toString(),
          }),
        );
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('serves the exposition format, and nothing else', async () => {
    const m = createMetrics();
    m.decision('broker', 'deny', 'AgentSuspended');
    const { server, port } = await startMetricsServer(m.registry, 0, '127.0.0.1');
    try {
      const ok = await get(port, '/metrics');
      expect(ok.status).toBe(200);
      expect(ok.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(ok.body).toContain('warden_denials_total{reason="AgentSuspended"} 1\n');
      expect((await get(port, '/metrics?x=1')).status).toBe(200);
      const head = await get(port, '/metrics', 'HEAD');
      expect([head.status, head.body]).toEqual([200, '']);
      const post = await get(port, '/metrics', 'POST');
      expect(post.status).toBe(405);
      expect(post.body).toContain('use GET /metrics');
      const other = await get(port, '/secrets');
      expect(other.status).toBe(404);
      expect(other.body).toContain('/metrics');
      expect((await get(port, '/healthz')).status).toBe(200);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
