/**
 * One AdmissionReview in, one AdmissionReview out: parse → gather (look up the
 * AgentIdentity) → decide (checks, mutation, patch) → respond. Independent of
 * HTTP so it can be tested and benchmarked in-process; server.ts adds the
 * transport.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { checkPod, type Problem, rejectionMessage, selectAgent } from './checks.js';
import type { AdmissionEvents } from './events.js';
import { mutatePod } from './mutate.js';
import { diff, type PatchOperation } from './patch.js';
import { checkPodShape } from './pod-shape.js';
import type { AgentIdentityView, BrokerConfig } from './types.js';

/** Finds an AgentIdentity; `undefined` when it does not exist. Throws on other errors. */
export type AgentIdentityLookup = (namespace: string, name: string) => Promise<AgentIdentityView | undefined>;

/** The subset of a pino logger the webhook uses. */
export interface AdmissionLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface AdmissionDeps {
  broker: BrokerConfig;
  lookup: AgentIdentityLookup;
  events: AdmissionEvents;
  logger: AdmissionLogger;
  /** Upper bound for the lookup, well inside the webhook's timeoutSeconds. */
  lookupTimeoutMs?: number;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON patch. */
  patch?: string;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
}

export interface AdmissionReviewOut {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** What happened, for logs, Events and tests. */
export type Outcome =
  | { kind: 'injected'; agent: string; pod: string; ops: PatchOperation[] }
  | { kind: 'unchanged'; agent?: string; pod: string; reason: string }
  | { kind: 'rejected'; agent?: string; pod: string; reason: string; message: string };

/** The request could not be read as an AdmissionReview at all: answer with HTTP 400. */
export class MalformedReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedReviewError';
  }
}

interface ReviewRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  subResource?: string;
  namespace?: string;
  name?: string;
  operation?: string;
  dryRun?: boolean;
  object?: unknown;
}

const DEFAULT_LOOKUP_TIMEOUT_MS = 3000;

/** Validates the envelope: enough to answer by uid. Anything less is a MalformedReviewError. */
export function parseReview(body: unknown): ReviewRequest {
  const where = 'AdmissionReview';
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MalformedReviewError(`${where}: expected a JSON object`);
  }
  const review = body as { apiVersion?: unknown; kind?: unknown; request?: unknown };
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    throw new MalformedReviewError(
      `${where}: apiVersion/kind must be admission.k8s.io/v1 AdmissionReview, got ${String(review.apiVersion)} ${String(review.kind)}; set admissionReviewVersions: [v1] in the webhook configuration`,
    );
  }
  const req = review.request;
  if (typeof req !== 'object' || req === null) throw new MalformedReviewError(`${where}.request: missing`);
  const uid = (req as { uid?: unknown }).uid;
  if (typeof uid !== 'string' || uid.length === 0) {
    throw new MalformedReviewError(`${where}.request.uid: missing or not a string`);
  }
  return req as ReviewRequest;
}

function respond(response: AdmissionResponse): AdmissionReviewOut {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

function podNameOf(pod: V1Pod, req: ReviewRequest): string {
  const m = pod.metadata;
  if (m?.name) return m.name;
  if (req.name) return req.name;
  // generateName pods get their name after admission.
  return m?.generateName ? `${m.generateName}<generated>` : '<unnamed>';
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Answers one AdmissionReview. Throws MalformedReviewError when the body is not
 * an AdmissionReview with a uid; every other problem becomes a response.
 */
export async function handleReview(
  body: unknown,
  deps: AdmissionDeps,
): Promise<{ review: AdmissionReviewOut; outcome: Outcome }> {
  const req = parseReview(body);
  const uid = req.uid;
  const kind = req.kind ?? {};

  if (kind.group !== '' || kind.kind !== 'Pod' || (req.subResource ?? '') !== '') {
    const what = `${kind.group ? `${kind.group}/` : ''}${kind.kind ?? '<unknown kind>'}${req.subResource ? `/${req.subResource}` : ''}`;
    const warning = `warden webhook ignored ${what}: it only mutates Pods; check the rules of its MutatingWebhookConfiguration`;
    deps.logger.warn({ uid, kind: what }, 'non-pod admission request');
    return {
      review: respond({ uid, allowed: true, warnings: [warning] }),
      outcome: { kind: 'unchanged', pod: req.name ?? '', reason: 'NotAPod' },
    };
  }
  if (req.operation !== 'CREATE') {
    return {
      review: respond({ uid, allowed: true }),
      outcome: { kind: 'unchanged', pod: req.name ?? '', reason: `Operation${req.operation ?? 'Unknown'}` },
    };
  }
  const shape = checkPodShape(req.object);
  if (!shape.ok) {
    const message = `warden: malformed AdmissionReview: ${shape.field}: ${shape.message}; the webhook only accepts Pods as the API server sends them`;
    return {
      review: respond({ uid, allowed: false, status: { code: 400, message, reason: 'BadRequest' } }),
      outcome: { kind: 'rejected', pod: req.name ?? '', reason: 'BadRequest', message },
    };
  }
  const pod = shape.pod;
  const namespace = req.namespace || pod.metadata?.namespace || 'default';
  const podName = podNameOf(pod, req);

  const selection = selectAgent(pod);
  if (selection.kind === 'none' || selection.kind === 'opted-out') {
    // Not ours (the matchConditions should have kept it away) or opted out:
    // admit untouched.
    return {
      review: respond({ uid, allowed: true }),
      outcome: {
        kind: 'unchanged',
        pod: podName,
        reason: selection.kind === 'none' ? 'NotAnAgentPod' : 'OptedOut',
      },
    };
  }
  if (selection.kind === 'invalid') {
    return reject({ uid, namespace, podName }, [selection.problem], deps, req);
  }

  const agentName = selection.name;
  let agent: AgentIdentityView | undefined;
  try {
    agent = await withTimeout(
      deps.lookup(namespace, agentName),
      deps.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS,
      'AgentIdentity lookup',
    );
  } catch (err) {
    // Fail closed: without the AgentIdentity we cannot check suspension or the service account.
    const message = `warden: pod ${podName}: could not read AgentIdentity ${namespace}/${agentName}: ${(err as Error).message}; retry, and check that the Warden controller can reach the API server`;
    deps.logger.error(
      { uid, namespace, pod: podName, agent: agentName, err: (err as Error).message },
      'lookup failed',
    );
    return {
      review: respond({ uid, allowed: false, status: { code: 500, message, reason: 'InternalError' } }),
      outcome: { kind: 'rejected', agent: agentName, pod: podName, reason: 'LookupFailed', message },
    };
  }

  const problems = checkPod(pod, namespace, agentName, agent, {
    trustedImages: [deps.broker.image],
    authorityUrl: deps.broker.authorityUrl,
  });
  if (problems.length > 0 || agent === undefined) {
    return reject({ uid, namespace, podName, agentName, agent }, problems, deps, req);
  }

  let ops: PatchOperation[];
  try {
    ops = diff(pod, mutatePod(pod, agentName, agent, deps.broker));
  } catch (err) {
    const message = `warden: pod ${podName}: internal error building the patch (${(err as Error).message}); please report this`;
    deps.logger.error({ uid, namespace, pod: podName, err: (err as Error).message }, 'patch failed');
    return {
      review: respond({ uid, allowed: false, status: { code: 500, message, reason: 'InternalError' } }),
      outcome: { kind: 'rejected', agent: agentName, pod: podName, reason: 'InternalError', message },
    };
  }

  if (ops.length === 0) {
    // Reinvocation, or a pod that already carries everything: nothing to do, nothing to report.
    return {
      review: respond({ uid, allowed: true }),
      outcome: { kind: 'unchanged', agent: agentName, pod: podName, reason: 'AlreadyInjected' },
    };
  }
  deps.logger.info({ uid, namespace, pod: podName, agent: agentName, ops: ops.length }, 'injected broker');
  emit(deps, req, {
    agent: { name: agentName, namespace, uid: agent.metadata.uid },
    type: 'Normal',
    reason: 'Injected',
    note: `pod ${podName}: injected broker ${deps.broker.image} (Warden ${deps.broker.version})`,
  });
  return {
    review: respond({
      uid,
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
    }),
    outcome: { kind: 'injected', agent: agentName, pod: podName, ops },
  };
}

interface RejectContext {
  uid: string;
  namespace: string;
  podName: string;
  agentName?: string;
  /** The AgentIdentity, when it exists: the Event is recorded on it. */
  agent?: AgentIdentityView;
}

function reject(
  ctx: RejectContext,
  problems: Problem[],
  deps: AdmissionDeps,
  req: ReviewRequest,
): { review: AdmissionReviewOut; outcome: Outcome } {
  const { uid, namespace, podName, agentName, agent } = ctx;
  const first = problems[0];
  const reason = first?.reason ?? 'Rejected';
  const message = rejectionMessage(podName, agentName, problems);
  deps.logger.info(
    { uid, namespace, pod: podName, agent: agentName, reasons: problems.map((p) => p.reason) },
    'rejected pod',
  );
  // An Event needs an object to hang on; a missing AgentIdentity has none.
  if (agent !== undefined && agentName !== undefined) {
    emit(deps, req, {
      agent: { name: agentName, namespace, uid: agent.metadata.uid },
      type: 'Warning',
      reason,
      note: message,
    });
  }
  return {
    review: respond({ uid, allowed: false, status: { code: 403, message, reason: 'Forbidden' } }),
    outcome: { kind: 'rejected', agent: agentName, pod: podName, reason, message },
  };
}

/**
 * Events are best effort and never delay or fail the admission; they are
 * skipped on dry-run requests (the configuration declares NoneOnDryRun).
 */
function emit(
  deps: AdmissionDeps,
  req: ReviewRequest,
  event: Parameters<AdmissionEvents['record']>[0],
): void {
  if (req.dryRun === true) return;
  deps.events.record(event).catch((err: unknown) => {
    deps.logger.warn(
      { agent: event.agent.name, reason: event.reason, err: (err as Error).message },
      'event not recorded',
    );
  });
}
