/**
 * CredentialProvider reconciler: gather → decide → act.
 *
 * Checks that the Secrets and keys the provider references exist. Secret values
 * never enter this code: the Secret informer keeps only key names (see
 * secretKeysOnly), decide sees names, and status/Events/logs carry names only.
 * APIKey and BasicAuth providers are marked as standing secrets in status.
 */
import type { Logger } from 'pino';
import type { Condition } from '../../core/api/generated/common.js';
import type { CredentialProvider } from '../../core/api/generated/credential-provider.js';
import { type DesiredCondition, getCondition, setConditions } from '../../core/conditions.js';
import type { Clock } from '../core/clock.js';
import { Controller, type ControllerMetrics, keyOf, type ReconcileFn } from '../core/controller.js';
import type { EventInput, EventRecorder } from '../core/events.js';
import type { Informer } from '../core/informer.js';
import type { KubeObject } from '../core/kube.js';
import type { StatusWriter } from '../core/status.js';
import { CREDENTIAL_PROVIDERS } from '../resources.js';
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

/** Provider types whose credential is a long-lived secret rather than minted just in time. */
export const STANDING_SECRET_TYPES: ReadonlySet<string> = new Set(['APIKey', 'BasicAuth']);

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
    default:
      return { ok: false, message: `spec.type: unknown type '${String(spec.type)}'` };
  }
}

export interface CredentialProviderFacts {
  provider: CredentialProvider;
  /** Key names of the Secrets that exist in the provider's namespace, by Secret name. */
  secretKeys: ReadonlyMap<string, readonly string[]>;
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
  const { provider, secretKeys } = facts;
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
    const reportedMissing = new Set<string>();
    for (const r of req.keys) {
      const keys = secretKeys.get(r.secret);
      if (!keys) {
        if (reportedMissing.has(r.secret)) continue;
        reportedMissing.add(r.secret);
        problems.push({
          reason: REASON.SecretNotFound,
          message: `${r.secretPath}: Secret ${ns}/${r.secret} not found; create it in namespace ${ns}`,
        });
      } else if (!keys.includes(r.key)) {
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
    const first = problems.find((p) => p.reason === REASON.SecretNotFound) ?? problems[0];
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
      standingSecret: STANDING_SECRET_TYPES.has(provider.spec?.type),
    },
    events,
  };
}

/** A Secret as the informer caches it: metadata and key names only. */
export interface SecretKeys extends KubeObject {
  keys: string[];
}

/** Informer transform: drop every value, keep the key names (data and binaryData). */
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

export interface CredentialProviderDeps {
  providers: Informer<CredentialProvider>;
  secrets: Informer<SecretKeys>;
  status: StatusWriter;
  recorder: EventRecorder;
  clock: Clock;
}

export function reconcileCredentialProvider(deps: CredentialProviderDeps): ReconcileFn {
  return async (key, ctx) => {
    // gather
    const provider = deps.providers.get(key.name, key.namespace);
    if (!provider || provider.metadata?.deletionTimestamp) return;
    const req = secretRequirements(provider.spec);
    const secretKeys = new Map<string, readonly string[]>();
    if (req.ok) {
      for (const r of req.keys) {
        const s = deps.secrets.get(r.secret, key.namespace);
        if (s) secretKeys.set(r.secret, s.keys);
      }
    }
    // decide
    const decision = decideCredentialProvider({ provider, secretKeys }, new Date(deps.clock.now()));
    // act
    const written = await deps.status.write(CREDENTIAL_PROVIDERS, provider, decision.status, ctx.signal);
    if (written === 'updated') {
      for (const e of decision.events) deps.recorder.record(provider, e);
      ctx.logger.info(
        { ready: getCondition(decision.status.conditions, CONDITION.Ready)?.reason },
        'credential provider status updated',
      );
    }
  };
}

/** CredentialProviders in the Secret's namespace that reference it. */
export function providersUsingSecret(providers: Informer<CredentialProvider>, secret: KubeObject): string[] {
  const ns = secret.metadata?.namespace;
  const name = secret.metadata?.name;
  if (!ns || !name) return [];
  return providers
    .list(ns)
    .filter((p) => {
      const req = secretRequirements(p.spec);
      return req.ok && req.keys.some((k) => k.secret === name);
    })
    .map((p) => keyOf(p));
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
  })
    .watchPrimary(deps.providers)
    .watchRelated(deps.secrets, (s) => providersUsingSecret(deps.providers, s));
}
