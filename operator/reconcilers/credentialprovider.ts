/**
 * CredentialProvider reconciler: gather → decide → act.
 *
 * Checks that the Secrets and keys the provider references exist. Secret values
 * never leave the gather step: each referenced Secret is read with a plain GET
 * and reduced to its key names at once (secretKeysOnly); decide sees names, and
 * status, Events and logs carry names only. APIKey and BasicAuth providers are
 * marked as standing secrets in status.
 *
 * Secrets are not watched: the controller's RBAC (config/rbac) grants `get` on
 * Secrets only, per opted-in namespace, so it can read exactly the Secrets
 * providers name and nothing else. A provider that is not Ready because of a
 * Secret is re-checked on a timer (secretRecheckMs), which is how a Secret
 * created later is noticed; Ready providers are re-checked on informer resync.
 */
import type { Logger } from 'pino';
import { type Condition, type CredentialProvider, STANDING_SECRET_TYPES } from '../../core/api/index.js';
import { type DesiredCondition, getCondition, setConditions } from '../../core/conditions.js';
import type { Clock } from '../../kube/clock.js';
import { Controller, type ControllerMetrics, type ReconcileFn } from '../../kube/controller.js';
import { isNotFound, statusCodeOf } from '../../kube/errors.js';
import type { EventInput, EventRecorder } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import { type KubeApi, type KubeObject, resourcePath } from '../../kube/kube.js';
import { CREDENTIAL_PROVIDERS, SECRETS } from '../../kube/resources.js';
import type { StatusWriter } from '../../kube/status.js';
import { ACTION, CONDITION, REASON } from './reasons.js';

/** One Secret key a provider needs, with the field paths that name it. */
export interface SecretKeyRequirement {
  secret: string;
  key: string;
  /** Field path of the Secret name, e.g. `spec.apiKey.secretRef.name`. */
  secretPath: string;
  /** Field path of the key, e.g. `spec.apiKey.secretRef.key` (or the default's field). */
  keyPath: string;
}

export type Requirements = { ok: true; keys: SecretKeyRequirement[] } | { ok: false; message: string };

/** Provider types whose credential is a long-lived secret rather than minted just in time (from core/api). */
const STANDING: ReadonlySet<string> = new Set<string>(STANDING_SECRET_TYPES);

/** Pure: the Secret keys spec.type needs, or why the spec cannot be checked. */
export function secretRequirements(spec: CredentialProvider['spec']): Requirements {
  const one = (base: string, ref: { name: string; key: string } | undefined): Requirements =>
    ref
      ? {
          ok: true,
          keys: [{ secret: ref.name, key: ref.key, secretPath: `${base}.name`, keyPath: `${base}.key` }],
        }
      : { ok: false, message: `${base}: required for spec.type ${spec.type}` };
  const pair = (
    base: string,
    ref: { name: string; usernameKey?: string; passwordKey?: string } | undefined,
  ): Requirements =>
    ref
      ? {
          ok: true,
          keys: [
            {
              secret: ref.name,
              key: ref.usernameKey ?? 'username',
              secretPath: `${base}.name`,
              keyPath: `${base}.usernameKey`,
            },
            {
              secret: ref.name,
              key: ref.passwordKey ?? 'password',
              secretPath: `${base}.name`,
              keyPath: `${base}.passwordKey`,
            },
          ],
        }
      : { ok: false, message: `${base}: required for spec.type ${spec.type}` };
  switch (spec.type) {
    case 'JWT':
      return { ok: true, keys: [] };
    case 'OAuth2TokenExchange':
      return one('spec.oauth2TokenExchange.clientSecretRef', spec.oauth2TokenExchange?.clientSecretRef);
    case 'OAuth2ClientCredentials':
      return one(
        'spec.oauth2ClientCredentials.clientSecretRef',
        spec.oauth2ClientCredentials?.clientSecretRef,
      );
    case 'PostgreSQL':
      return pair('spec.postgresql.adminSecretRef', spec.postgresql?.adminSecretRef);
    case 'APIKey':
      return one('spec.apiKey.secretRef', spec.apiKey?.secretRef);
    case 'BasicAuth':
      return pair('spec.basicAuth.secretRef', spec.basicAuth?.secretRef);
    case 'AWS':
      // Web identity federation: no Secret at all (the Warden token is the proof).
      return spec.aws
        ? { ok: true, keys: [] }
        : { ok: false, message: 'spec.aws: required for spec.type AWS' };
    default:
      return { ok: false, message: `spec.type: unknown type '${String(spec.type)}'` };
  }
}

/** What gather learned about one referenced Secret. */
export type SecretFact =
  | { state: 'found'; keys: readonly string[] }
  | { state: 'missing' }
  | { state: 'forbidden' };

export interface CredentialProviderFacts {
  provider: CredentialProvider;
  /** Referenced Secrets by name; a Secret not in the map counts as missing. */
  secrets: ReadonlyMap<string, SecretFact>;
}

// A type alias so it is assignable to the status writer's Record<string, unknown>.
export type CredentialProviderOwnedStatus = {
  observedGeneration?: number;
  conditions: Condition[];
  standingSecret: boolean;
};

export interface CredentialProviderDecision {
  status: CredentialProviderOwnedStatus;
  events: EventInput[];
}

const MAX_KEYS_LISTED = 10;

/** Pure: Ready from the Secret facts; standingSecret from the type. */
export function decideCredentialProvider(
  facts: CredentialProviderFacts,
  now: Date,
): CredentialProviderDecision {
  const { provider, secrets } = facts;
  const ns = provider.metadata?.namespace ?? '';
  const generation = provider.metadata?.generation;
  const req = secretRequirements(provider.spec);
  let ready: DesiredCondition;
  if (!req.ok) {
    ready = {
      type: CONDITION.Ready,
      status: 'False',
      reason: REASON.InvalidSpec,
      message: req.message,
      observedGeneration: generation,
    };
  } else {
    const problems: Array<{ reason: string; message: string }> = [];
    const reported = new Set<string>();
    for (const r of req.keys) {
      const fact = secrets.get(r.secret) ?? { state: 'missing' };
      if (fact.state !== 'found') {
        if (reported.has(r.secret)) continue;
        reported.add(r.secret);
        problems.push(
          fact.state === 'forbidden'
            ? {
                reason: REASON.SecretAccessDenied,
                message: `${r.secretPath}: the controller may not read Secret ${ns}/${r.secret}; bind ClusterRole warden-secret-reader with a RoleBinding in namespace ${ns}`,
              }
            : {
                reason: REASON.SecretNotFound,
                message: `${r.secretPath}: Secret ${ns}/${r.secret} not found; create it in namespace ${ns}`,
              },
        );
        continue;
      }
      const keys = fact.keys;
      if (!keys.includes(r.key)) {
        const present = keys.length
          ? [...keys].sort().slice(0, MAX_KEYS_LISTED).join(', ') +
            (keys.length > MAX_KEYS_LISTED ? ', …' : '')
          : 'none';
        problems.push({
          reason: REASON.SecretKeyMissing,
          message: `${r.keyPath}: Secret ${ns}/${r.secret} has no key '${r.key}' (keys present: ${present}); add the key or change ${r.keyPath}`,
        });
      }
    }
    const first =
      problems.find((p) => p.reason === REASON.SecretNotFound) ??
      problems.find((p) => p.reason === REASON.SecretAccessDenied) ??
      problems[0];
    ready = first
      ? {
          type: CONDITION.Ready,
          status: 'False',
          reason: first.reason,
          message: problems.map((p) => p.message).join('; '),
          observedGeneration: generation,
        }
      : {
          type: CONDITION.Ready,
          status: 'True',
          reason: REASON.Ready,
          message: req.keys.length
            ? 'every referenced Secret and key exists'
            : 'no Secret needed: Warden mints this credential itself',
          observedGeneration: generation,
        };
  }
  const before = provider.status?.conditions;
  const conditions = setConditions(before, [ready], now);
  const old = getCondition(before, CONDITION.Ready);
  const events: EventInput[] =
    old?.status !== ready.status || old?.reason !== ready.reason
      ? [
          {
            type: ready.status === 'True' ? 'Normal' : 'Warning',
            reason: ready.reason,
            action: ACTION.Reconcile,
            note: ready.message,
          },
        ]
      : [];
  return {
    status: {
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      conditions,
      standingSecret: STANDING.has(provider.spec?.type),
    },
    events,
  };
}

/** A Secret reduced to metadata and key names. */
export interface SecretKeys extends KubeObject {
  keys: string[];
}

/** Drop every value, keep the key names (data and binaryData). */
export function secretKeysOnly(
  secret: KubeObject & { data?: Record<string, unknown>; binaryData?: Record<string, unknown> },
): SecretKeys {
  return {
    apiVersion: secret.apiVersion,
    kind: secret.kind,
    metadata: {
      name: secret.metadata?.name,
      namespace: secret.metadata?.namespace,
      uid: secret.metadata?.uid,
      resourceVersion: secret.metadata?.resourceVersion,
    },
    keys: [...Object.keys(secret.data ?? {}), ...Object.keys(secret.binaryData ?? {})],
  };
}

/** Reads one Secret and returns only what decide may see. */
export type SecretReader = (namespace: string, name: string, signal: AbortSignal) => Promise<SecretFact>;

/** A SecretReader over the API: GET (the only verb RBAC grants), reduced to key names at once. */
export function apiSecretReader(api: KubeApi): SecretReader {
  return async (namespace, name, signal) => {
    try {
      const secret = await api.request<KubeObject & { data?: Record<string, unknown> }>(
        'GET',
        resourcePath(SECRETS, namespace, name),
        { signal, timeoutMs: 10_000 },
      );
      return { state: 'found', keys: secretKeysOnly(secret).keys };
    } catch (err) {
      if (isNotFound(err)) return { state: 'missing' };
      if (statusCodeOf(err) === 403) return { state: 'forbidden' };
      throw err;
    }
  };
}

export interface CredentialProviderDeps {
  providers: Informer<CredentialProvider>;
  readSecret: SecretReader;
  status: StatusWriter;
  recorder: EventRecorder;
  clock: Clock;
  /** Re-check a provider that is not Ready because of a Secret this often. Default 30 s. */
  secretRecheckMs?: number;
}

export function reconcileCredentialProvider(deps: CredentialProviderDeps): ReconcileFn {
  return async (key, ctx) => {
    // gather
    const provider = deps.providers.get(key.name, key.namespace);
    if (!provider || provider.metadata?.deletionTimestamp) return;
    const req = secretRequirements(provider.spec);
    const secrets = new Map<string, SecretFact>();
    if (req.ok) {
      for (const name of new Set(req.keys.map((k) => k.secret))) {
        secrets.set(name, await deps.readSecret(key.namespace, name, ctx.signal));
      }
    }
    // decide
    const decision = decideCredentialProvider({ provider, secrets }, new Date(deps.clock.now()));
    // act
    const written = await deps.status.write(CREDENTIAL_PROVIDERS, provider, decision.status, ctx.signal);
    const ready = getCondition(decision.status.conditions, CONDITION.Ready);
    if (written === 'updated') {
      for (const e of decision.events) deps.recorder.record(provider, e);
      ctx.logger.info({ ready: ready?.reason }, 'credential provider status updated');
    }
    if (written !== 'gone' && ready?.status !== 'True' && ready?.reason !== REASON.InvalidSpec) {
      // The Secret may appear (or be granted) later; we do not watch Secrets, so look again.
      return { requeueAfter: deps.secretRecheckMs ?? 30_000 };
    }
    return undefined;
  };
}

export function credentialProviderController(
  deps: CredentialProviderDeps & { logger: Logger; concurrency?: number; metrics?: ControllerMetrics },
): Controller {
  return new Controller({
    name: 'credentialprovider',
    reconcile: reconcileCredentialProvider(deps),
    logger: deps.logger,
    clock: deps.clock,
    concurrency: deps.concurrency,
    metrics: deps.metrics,
  }).watchPrimary(deps.providers);
}
