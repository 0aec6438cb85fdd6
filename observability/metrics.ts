/**
 * Every Prometheus metric Warden exports, defined once (docs/metrics.md, docs/adr/0010-metrics.md).
 *
 * Callers never touch prom-client objects or write label values themselves: they call the typed
 * helpers below, which map anything outside a label's known set to `other`. That keeps the number
 * of series bounded whatever a reason string, a controller name or an error code turns out to be
 * at run time — a metric label fed from attacker-influenced text would otherwise be a memory leak.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

// ---------------------------------------------------------------------------------------------
// Label value sets. `other` is the catch-all of every set that can meet an unknown value.

/** The Warden component that made a decision. */
export const COMPONENTS = ['broker', 'authority', 'webhook', 'operator'] as const;
export type Component = (typeof COMPONENTS)[number];

export const DECISIONS = ['allow', 'deny'] as const;
export type DecisionLabel = (typeof DECISIONS)[number];

/**
 * Why a decision went the way it did. The union of core/policy DecisionReason, broker
 * BrokerDenyReason, webhook RejectionReason (+ its own outcomes) and the authority's attestation
 * refusals; observability/metrics.test.ts fails when one of those gains a value missing here.
 */
export const REASONS = [
  // core/policy DecisionReason
  'Allowed',
  'DeniedByPolicy',
  'NoMatchingAllow',
  'ConditionFailed',
  'EvaluationError',
  'InputTooLarge',
  'InvalidInput',
  'CostExceeded',
  'AgentSuspended',
  // broker BrokerDenyReason
  'PolicySnapshotMissing',
  'PolicySnapshotStale',
  'PolicySnapshotInvalid',
  'AuthorityUnreachable',
  'AgentIdentityMissing',
  'UnknownTarget',
  'UserTokenInvalid',
  'CredentialDenied',
  'InvalidToolName',
  'UnknownTool',
  'ToolListUnavailable',
  'InvalidRequest',
  'QuotaExceeded',
  'AuditUnavailable',
  'CheckFailed',
  // webhook RejectionReason and admission outcomes
  'InvalidAgentName',
  'AgentLabelMismatch',
  'AgentIdentityNotFound',
  'ServiceAccountMismatch',
  'HostNetwork',
  'NoContainers',
  'ReservedContainerName',
  'ReservedVolumeName',
  'TokenVolumeMounted',
  'SpoolVolumeAltered',
  'BrokerAudienceToken',
  'EphemeralTargetsBroker',
  'SharedProcessNamespace',
  'HostPID',
  'NotInjected',
  'InjectedRecordMismatch',
  'BrokerMissing',
  'BrokerImageNotTrusted',
  'BrokerContainerAltered',
  'TokenVolumeAltered',
  'PodLabelMismatch',
  'ImageNotAllowed',
  'LookupFailed',
  'BadRequest',
  'InternalError',
  'Injected',
  'AlreadyInjected',
  'NotAPod',
  'NotAnAgentPod',
  'OptedOut',
  // authority: OAuth refusals of attestation and credential requests
  'invalid_request',
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
  'access_denied',
  'invalid_target',
  'invalid_token',
  'slow_down',
  'server_error',
  'temporarily_unavailable',
  // authority: refusals at /v1/credentials that are not policy decisions (credentials.ts, issue.ts)
  'AgentNotFound',
  'UserRequired',
  'UserForbidden',
  'ProviderNotFound',
  'CredentialUnavailable',
  'other',
] as const;
export type Reason = (typeof REASONS)[number];

/** CredentialProvider spec.type, plus the authority's own session tokens and agent tokens (gateway). */
export const CREDENTIAL_TYPES = [
  'Session',
  'AgentToken',
  'JWT',
  'OAuth2TokenExchange',
  'OAuth2ClientCredentials',
  'PostgreSQL',
  'APIKey',
  'BasicAuth',
  'AWS',
  'other',
] as const;
export type CredentialType = (typeof CREDENTIAL_TYPES)[number];

/** `failure` means the credential may still be usable upstream until it expires. */
export const REVOCATION_RESULTS = ['success', 'failure', 'unsupported'] as const;
export type RevocationResult = (typeof REVOCATION_RESULTS)[number];

/** operator/reconcilers: the `name` each Controller is created with. */
export const CONTROLLERS = [
  'agentidentity',
  'accesspolicy',
  'credentialprovider',
  'revocation',
  'audit-retention',
  'postgres-sweep',
  'other',
] as const;
export type ControllerName = (typeof CONTROLLERS)[number];

/** webhook admission outcome (admission.ts Outcome.kind, plus transport errors: 4xx/5xx before a review). */
export const ADMISSION_OUTCOMES = ['injected', 'unchanged', 'rejected', 'error'] as const;
export type AdmissionOutcome = (typeof ADMISSION_OUTCOMES)[number];

/** Broker request kinds (policy input request.kind). */
export const REQUEST_KINDS = ['mcp', 'http', 'postgresql', 'other'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** AgentIdentity spec.circuitBreaker thresholds. */
export const CIRCUIT_BREAKER_THRESHOLDS = [
  'maxDenialsPerMinute',
  'maxCallsPerMinute',
  'maxDistinctToolsPerMinute',
] as const;
export type CircuitBreakerThreshold = (typeof CIRCUIT_BREAKER_THRESHOLDS)[number];

/** Audit entries: persisted in an AuditRecord, or dropped (buffer full, write failed for good). */
export const AUDIT_RESULTS = ['written', 'dropped'] as const;
export type AuditResult = (typeof AUDIT_RESULTS)[number];

/**
 * A broker decision's audit entry: `spooled` (on disk before the answer), `lost` (the spool could
 * not take it; audit mode BestEffort answered anyway), `denied` (the same for audit mode Required:
 * the call was denied with AuditUnavailable).
 */
export const SPOOL_RESULTS = ['spooled', 'lost', 'denied'] as const;
export type SpoolResult = (typeof SPOOL_RESULTS)[number];

/** POST /v1/token: a new session, a refresh, or the OAuth error code of the refusal. */
export const TOKEN_EXCHANGE_RESULTS = [
  'issued',
  'refreshed',
  'invalid_request',
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
  'unsupported_grant_type',
  'access_denied',
  'invalid_target',
  'slow_down',
  'server_error',
  'temporarily_unavailable',
  'other',
] as const;
export type TokenExchangeResult = (typeof TOKEN_EXCHANGE_RESULTS)[number];

/** `value` if it is one of `allowed`, else `other` (or the set's fallback). */
export function bounded<T extends string>(allowed: readonly T[], value: string, fallback: T): T {
  return (allowed as readonly string[]).includes(value) ? (value as T) : fallback;
}

// ---------------------------------------------------------------------------------------------
// Buckets (seconds). Chosen so the SLO thresholds in docs/metrics.md fall on a bucket boundary.

/** Admission: the API server's webhook timeout is 10 s; the alert threshold is 1 s at p99. */
export const ADMISSION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Broker: sub-millisecond policy denials up to long upstream tool calls. */
export const BROKER_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
/** Reconcile: mostly one or two API calls; revocation may wait on upstream revocation endpoints. */
export const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

// ---------------------------------------------------------------------------------------------

export interface MetricsOptions {
  /** Register into this registry (default: a new one, never prom-client's global). */
  registry?: Registry;
  /** Also export Node.js process metrics (CPU, RSS, event-loop lag, GC). Default false. */
  processMetrics?: boolean;
  /** Labels added to every series, e.g. {pod: 'warden-controller-0'}. Keep them constant per process. */
  defaultLabels?: Record<string, string>;
  /** Monotonic clock in milliseconds for the timers (default performance.now); injected by tests. */
  nowMs?: () => number;
}

/** Stops a timer and records the elapsed time; returns the seconds recorded. */
export type StopTimer = () => number;

/** The typed surface every component records through. */
export interface WardenMetrics {
  readonly registry: Registry;
  /** One policy/admission/attestation decision. A deny also counts in warden_denials_total{reason}. */
  decision(component: Component, decision: DecisionLabel, reason: string): void;
  /** A credential handed out (minted, exchanged, or read from a Secret). */
  credentialIssued(type: string): void;
  /** One revocation attempt of one credential. */
  revocation(type: string, result: RevocationResult): void;
  /** Current work-queue length of a controller (ready + waiting for backoff). */
  queueDepth(controller: string, depth: number): void;
  /** A reconcile that failed (conflicts that are simply retried are not failures). */
  reconcileError(controller: string): void;
  /** Duration of one reconcile, whatever its outcome. */
  reconcileDuration(controller: string, seconds: number): void;
  /** Duration of one admission request, from body read to response written. */
  admissionDuration(outcome: AdmissionOutcome, seconds: number): void;
  /** Duration of one request through the broker (decision, credential, upstream), by kind and decision. */
  brokerRequestDuration(kind: string, decision: DecisionLabel, seconds: number): void;
  /** Audit entries persisted or dropped. */
  auditEntries(result: AuditResult, count?: number): void;
  /** One broker decision's entry and the audit spool (broker/access.ts). */
  auditSpool(result: SpoolResult): void;
  /** One POST /v1/token outcome: `issued`, `refreshed` or the OAuth error code. */
  tokenExchange(result: string): void;
  /** The circuit breaker tripped (AgentIdentity spec.circuitBreaker), by threshold and action. */
  circuitBreakerTrip(threshold: CircuitBreakerThreshold, action: 'Suspend' | 'Alert'): void;
  /** Starts a timer; the returned function records into `record` and returns the seconds. */
  startTimer(record: (seconds: number) => void): StopTimer;
}

/**
 * Creates the registry with every Warden metric. One per process: the controller process (operator
 * + webhook + authority) and each broker create their own and serve it on /metrics.
 */
export function createMetrics(opts: MetricsOptions = {}): WardenMetrics {
  const registry = opts.registry ?? new Registry();
  if (opts.defaultLabels) registry.setDefaultLabels(opts.defaultLabels);
  const registers = [registry];
  const nowMs = opts.nowMs ?? (() => performance.now());

  const decisions = new Counter({
    name: 'warden_decisions_total',
    help: 'Access decisions made, by component (broker, authority, webhook, operator), decision (allow, deny) and reason.',
    labelNames: ['component', 'decision', 'reason'] as const,
    registers,
  });
  const denials = new Counter({
    name: 'warden_denials_total',
    help: 'Denials by reason, across components (the deny half of warden_decisions_total without the component label).',
    labelNames: ['reason'] as const,
    registers,
  });
  const issued = new Counter({
    name: 'warden_credentials_issued_total',
    help: 'Credentials handed out, by type (Session for broker sessions, else the CredentialProvider spec.type).',
    labelNames: ['type'] as const,
    registers,
  });
  const revocations = new Counter({
    name: 'warden_revocations_total',
    help: 'Credential revocation attempts, by credential type and result (success, failure, unsupported).',
    labelNames: ['type', 'result'] as const,
    registers,
  });
  const depth = new Gauge({
    name: 'warden_workqueue_depth',
    help: 'Keys waiting in a controller work queue (ready or backing off).',
    labelNames: ['controller'] as const,
    registers,
  });
  const reconcileErrors = new Counter({
    name: 'warden_reconcile_errors_total',
    help: 'Reconciles that failed and were requeued with backoff (conflicts excluded).',
    labelNames: ['controller'] as const,
    registers,
  });
  const reconcileSeconds = new Histogram({
    name: 'warden_reconcile_duration_seconds',
    help: 'Time spent in one reconcile, whatever its outcome.',
    labelNames: ['controller'] as const,
    buckets: RECONCILE_BUCKETS,
    registers,
  });
  const admissionSeconds = new Histogram({
    name: 'warden_webhook_admission_duration_seconds',
    help: 'Time to answer one AdmissionReview, by outcome (injected, unchanged, rejected, error).',
    labelNames: ['outcome'] as const,
    buckets: ADMISSION_BUCKETS,
    registers,
  });
  const brokerSeconds = new Histogram({
    name: 'warden_broker_request_duration_seconds',
    help: 'Time for one agent request through the broker (decision, credential, upstream), by kind and decision.',
    labelNames: ['kind', 'decision'] as const,
    buckets: BROKER_BUCKETS,
    registers,
  });
  const audit = new Counter({
    name: 'warden_audit_entries_total',
    help: 'Audit entries persisted as AuditRecords (written) or lost (dropped).',
    labelNames: ['result'] as const,
    registers,
  });
  const spool = new Counter({
    name: 'warden_broker_audit_spool_total',
    help: 'Broker decisions by what became of their audit entry: spooled (on disk before the answer), lost (spool full or unwritable, answered: audit mode BestEffort), denied (the same, call denied: audit mode Required).',
    labelNames: ['result'] as const,
    registers,
  });
  const exchanges = new Counter({
    name: 'warden_token_exchanges_total',
    help: 'Token exchanges at the authority (POST /v1/token): issued, refreshed, or the OAuth error code.',
    labelNames: ['result'] as const,
    registers,
  });

  const breakerTrips = new Counter({
    name: 'warden_circuit_breaker_trips_total',
    help: 'Circuit breaker trips (AgentIdentity spec.circuitBreaker), by threshold and action (Suspend, Alert).',
    labelNames: ['threshold', 'action'] as const,
    registers,
  });

  // Series an alert divides by or compares against must exist before the first event, or
  // rate() over them is empty rather than 0. Only small, fixed sets are pre-created.
  for (const result of AUDIT_RESULTS) audit.inc({ result }, 0);
  for (const result of SPOOL_RESULTS) spool.inc({ result }, 0);
  for (const result of ['issued', 'refreshed', 'invalid_grant', 'server_error'] as const) {
    exchanges.inc({ result }, 0);
  }
  for (const controller of CONTROLLERS) {
    if (controller !== 'other') reconcileErrors.inc({ controller }, 0);
  }

  if (opts.processMetrics) collectDefaultMetrics({ register: registry });

  const seconds = (s: number) => (Number.isFinite(s) && s >= 0 ? s : 0);

  return {
    registry,
    decision(component, decision, reason) {
      const r = bounded(REASONS, reason, 'other');
      decisions.inc({ component, decision, reason: r });
      if (decision === 'deny') denials.inc({ reason: r });
    },
    credentialIssued(type) {
      issued.inc({ type: bounded(CREDENTIAL_TYPES, type, 'other') });
    },
    revocation(type, result) {
      revocations.inc({ type: bounded(CREDENTIAL_TYPES, type, 'other'), result });
    },
    queueDepth(controller, n) {
      depth.set({ controller: bounded(CONTROLLERS, controller, 'other') }, Math.max(0, n));
    },
    reconcileError(controller) {
      reconcileErrors.inc({ controller: bounded(CONTROLLERS, controller, 'other') });
    },
    reconcileDuration(controller, s) {
      reconcileSeconds.observe({ controller: bounded(CONTROLLERS, controller, 'other') }, seconds(s));
    },
    admissionDuration(outcome, s) {
      admissionSeconds.observe({ outcome }, seconds(s));
    },
    brokerRequestDuration(kind, decision, s) {
      brokerSeconds.observe({ kind: bounded(REQUEST_KINDS, kind, 'other'), decision }, seconds(s));
    },
    auditEntries(result, count = 1) {
      if (count > 0) audit.inc({ result }, count);
    },
    auditSpool(result) {
      spool.inc({ result });
    },
    tokenExchange(result) {
      exchanges.inc({ result: bounded(TOKEN_EXCHANGE_RESULTS, result, 'other') });
    },
    circuitBreakerTrip(threshold, action) {
      breakerTrips.inc({ threshold, action });
    },
    startTimer(record) {
      const start = nowMs();
      return () => {
        const s = (nowMs() - start) / 1000;
        record(s);
        return s;
      };
    },
  };
}

/**
 * Adapter for kube/controller.ts ControllerOptions.metrics: reconcile outcomes and queue
 * depth. `error` and `terminal` count as reconcile errors; `conflict` (409, retried at once) does not.
 */
export function controllerMetrics(m: WardenMetrics): {
  reconciled(
    controller: string,
    outcome: 'success' | 'requeue' | 'conflict' | 'error' | 'terminal',
    durationMs: number,
  ): void;
  queueDepth(controller: string, depth: number): void;
} {
  return {
    reconciled(controller, outcome, durationMs) {
      m.reconcileDuration(controller, durationMs / 1000);
      if (outcome === 'error' || outcome === 'terminal') m.reconcileError(controller);
    },
    queueDepth(controller, n) {
      m.queueDepth(controller, n);
    },
  };
}
