/**
 * Keeps the webhook's TLS material in a Secret and the caBundle of the
 * MutatingWebhookConfiguration in step with it. Every replica runs one; they
 * agree through the API server's optimistic concurrency:
 *   - create-if-absent: the loser of the create race (409 AlreadyExists) reads the winner's Secret;
 *   - rotation: an update carries the resourceVersion that was read, so of two
 *     replicas rotating at once one gets 409 Conflict and adopts the winner's material;
 *   - the caBundle is computed only from the Secret, and patched before a
 *     replica serves a certificate from it, so it never drifts between replicas.
 */
import { FIELD_MANAGER } from '../core/constants.js';
import { describeError, isConflict, isNotFound } from '../kube/errors.js';
import { type KubeApi, resourcePath } from '../kube/kube.js';
import type { AdmissionLogger } from './admission.js';
import {
  DEFAULT_VALIDITY_MS,
  issueMaterial,
  materialFromSecretData,
  planTls,
  secretDataFromMaterial,
  type TlsMaterial,
  type TlsNames,
} from './tls.js';
import type { TlsSource } from './tls-files.js';

const SECRETS = { group: '', version: 'v1', plural: 'secrets' };
const MWCS = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  plural: 'mutatingwebhookconfigurations',
};

interface SecretJson {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

interface WebhookConfigurationJson {
  metadata?: { resourceVersion?: string };
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

export interface TlsStoreOptions {
  api: KubeApi;
  namespace: string;
  secretName: string;
  /** MutatingWebhookConfiguration whose caBundle follows the Secret; undefined to leave it alone. */
  webhookConfigurationName?: string;
  names: TlsNames;
  logger: AdmissionLogger;
  now?: () => Date;
  validityMs?: number;
}

/** How many read-decide-write rounds before giving up on a contended Secret. */
const MAX_ROUNDS = 5;

export class TlsStore {
  private readonly now: () => Date;

  constructor(private readonly opts: TlsStoreOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Returns the material to serve, issuing or rotating it in the Secret when
   * needed, and makes sure the caBundle trusts it.
   */
  async ensure(): Promise<TlsMaterial> {
    const material = await this.ensureSecret();
    if (this.opts.webhookConfigurationName)
      await this.syncCaBundle(this.opts.webhookConfigurationName, material);
    return material;
  }

  private async ensureSecret(): Promise<TlsMaterial> {
    const { api, namespace, secretName, names, logger } = this.opts;
    const path = resourcePath(SECRETS, namespace, secretName);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const secret = await this.readSecret(path);
      const stored = materialFromSecretData(secret?.data);
      const now = this.now();
      const plan = await planTls(stored, names, now);
      if (plan.action === 'use') return plan.material;

      const material = await issueMaterial(
        names,
        now,
        this.opts.validityMs ?? DEFAULT_VALIDITY_MS,
        stored?.caBundlePem,
      );
      const body: SecretJson = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: secretName,
          namespace,
          labels: { 'app.kubernetes.io/name': 'warden', 'app.kubernetes.io/component': 'webhook-tls' },
          ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
        },
        type: 'kubernetes.io/tls',
        data: secretDataFromMaterial(material),
      };
      try {
        if (secret === undefined) {
          await api.request('POST', resourcePath(SECRETS, namespace), {
            body,
            query: { fieldManager: FIELD_MANAGER },
          });
        } else {
          await api.request('PUT', path, { body, query: { fieldManager: FIELD_MANAGER } });
        }
        logger.info(
          { secret: `${namespace}/${secretName}`, reason: plan.reason },
          'issued webhook serving certificate',
        );
        return material;
      } catch (err) {
        // Another replica wrote first: read its material on the next round.
        if (isConflict(err)) {
          logger.info(
            { secret: `${namespace}/${secretName}` },
            'another replica wrote the TLS secret first; adopting it',
          );
          continue;
        }
        throw new Error(`writing TLS Secret ${namespace}/${secretName}: ${describeError(err)}`);
      }
    }
    throw new Error(
      `TLS Secret ${namespace}/${secretName}: still contended after ${MAX_ROUNDS} attempts; will retry`,
    );
  }

  private async readSecret(path: string): Promise<SecretJson | undefined> {
    try {
      return await this.opts.api.request<SecretJson>('GET', path);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`reading TLS Secret ${path}: ${describeError(err)}`);
    }
  }

  /** Sets every webhook's caBundle in the configuration to the Secret's bundle (no-op when equal). */
  async syncCaBundle(name: string, material: TlsMaterial): Promise<void> {
    const { api, logger } = this.opts;
    const path = resourcePath(MWCS, undefined, name);
    const want = Buffer.from(material.caBundlePem).toString('base64');
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let cfg: WebhookConfigurationJson;
      try {
        cfg = await api.request<WebhookConfigurationJson>('GET', path);
      } catch (err) {
        if (isNotFound(err)) {
          logger.warn(
            { configuration: name },
            'MutatingWebhookConfiguration not found; caBundle not patched',
          );
          return;
        }
        throw new Error(`reading MutatingWebhookConfiguration ${name}: ${describeError(err)}`);
      }
      const webhooks = cfg.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig?.caBundle === want)) return;
      for (const w of webhooks) w.clientConfig = { ...w.clientConfig, caBundle: want };
      try {
        // PUT with the resourceVersion we read: a concurrent writer makes us re-read, not clobber.
        await api.request('PUT', path, { body: cfg, query: { fieldManager: FIELD_MANAGER } });
        logger.info({ configuration: name }, 'patched caBundle');
        return;
      } catch (err) {
        if (isConflict(err)) continue;
        throw new Error(`updating caBundle of MutatingWebhookConfiguration ${name}: ${describeError(err)}`);
      }
    }
    throw new Error(
      `MutatingWebhookConfiguration ${name}: caBundle update still contended after ${MAX_ROUNDS} attempts`,
    );
  }
}

/**
 * Re-checks the Secret periodically (rotation, or another replica's rotation)
 * and hands new material to `onChange` (e.g. WebhookServer.setCertificate).
 * Errors are logged and retried at the next tick; the current certificate keeps serving.
 */
export function watchTls(
  store: TlsSource,
  current: TlsMaterial,
  onChange: (m: TlsMaterial) => void,
  intervalMs: number,
  logger: AdmissionLogger,
): () => void {
  let last = current;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    store
      .ensure()
      .then((m) => {
        if (m.certPem !== last.certPem || m.keyPem !== last.keyPem) {
          last = m;
          onChange(m);
        }
      })
      .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'TLS refresh failed'))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
