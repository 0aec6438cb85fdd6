/**
 * The MutatingWebhookConfiguration that registers the webhook. See
 * docs/adr/0005-webhook-tls.md for why pods are selected with matchConditions
 * on the annotation rather than an objectSelector on the label.
 */
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { ANNOTATION_AGENT, ANNOTATION_INJECT, LABEL_AGENT, LABEL_WEBHOOK_IGNORE } from '../core/constants.js';
import { MUTATE_PATH } from './server.js';

/** Name of the single webhook entry inside the configuration (must be a qualified name). */
export const POD_WEBHOOK_NAME = 'inject.pods.warden.dev';
/** Default name of the MutatingWebhookConfiguration object. */
export const DEFAULT_CONFIGURATION_NAME = 'warden-pod-injector';
/** A namespace labelled `warden.dev/webhook: disabled` is never sent to the webhook. */
export const WEBHOOK_DISABLED_VALUE = 'disabled';
/** The API server waits at most this long; the handler bounds its own lookups well inside it. */
export const WEBHOOK_TIMEOUT_SECONDS = 5;

export interface WebhookConfigurationOptions {
  /** metadata.name of the configuration. */
  name?: string;
  /** Warden's own namespace: never sent to the webhook (its pods must start while the webhook is down). */
  wardenNamespace: string;
  /** In-cluster: the Service in front of the controller. Tests: `{ url: 'https://127.0.0.1:<port>/mutate' }`. */
  clientConfig: { service: { name: string; namespace: string; port?: number } } | { url: string };
  /** PEM bundle of the CAs that sign the serving certificate. */
  caBundlePem?: string;
  /** Extra namespace labels required (tests scope the webhook to their own namespace). */
  namespaceMatchLabels?: Record<string, string>;
  timeoutSeconds?: number;
}

/** CEL conditions evaluated by the API server before calling: only annotated or labelled agent pods, not opted out. */
export const MATCH_CONDITIONS = [
  {
    name: 'warden-agent-pod',
    expression:
      `(has(object.metadata.annotations) && '${ANNOTATION_AGENT}' in object.metadata.annotations) || ` +
      `(has(object.metadata.labels) && '${LABEL_AGENT}' in object.metadata.labels)`,
  },
  {
    name: 'not-opted-out',
    expression:
      `!has(object.metadata.annotations) || !('${ANNOTATION_INJECT}' in object.metadata.annotations) || ` +
      `object.metadata.annotations['${ANNOTATION_INJECT}'] != 'false'`,
  },
];

export function webhookConfiguration(opts: WebhookConfigurationOptions): V1MutatingWebhookConfiguration {
  const timeoutSeconds = Math.min(
    WEBHOOK_TIMEOUT_SECONDS,
    Math.max(1, opts.timeoutSeconds ?? WEBHOOK_TIMEOUT_SECONDS),
  );
  const clientConfig: AdmissionregistrationV1WebhookClientConfig =
    'url' in opts.clientConfig
      ? { url: opts.clientConfig.url }
      : {
          service: {
            name: opts.clientConfig.service.name,
            namespace: opts.clientConfig.service.namespace,
            port: opts.clientConfig.service.port ?? 443,
            path: MUTATE_PATH,
          },
        };
  if (opts.caBundlePem) clientConfig.caBundle = Buffer.from(opts.caBundlePem).toString('base64');
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: {
      name: opts.name ?? DEFAULT_CONFIGURATION_NAME,
      labels: { 'app.kubernetes.io/name': 'warden', 'app.kubernetes.io/component': 'webhook' },
    },
    webhooks: [
      {
        name: POD_WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        clientConfig,
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        matchPolicy: 'Equivalent',
        namespaceSelector: {
          matchLabels: opts.namespaceMatchLabels,
          matchExpressions: [
            {
              key: 'kubernetes.io/metadata.name',
              operator: 'NotIn',
              values: ['kube-system', opts.wardenNamespace],
            },
            { key: LABEL_WEBHOOK_IGNORE, operator: 'NotIn', values: [WEBHOOK_DISABLED_VALUE] },
          ],
        },
        matchConditions: MATCH_CONDITIONS,
        // Fail closed, and the matchConditions confine that to agent pods: an
        // agent pod must never start without its broker.
        failurePolicy: 'Fail',
        // Events on the AgentIdentity are the only side effect, skipped on dry runs.
        sideEffects: 'NoneOnDryRun',
        // Webhooks after us may add containers; run again so they get the env vars.
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds,
      },
    ],
  };
}
