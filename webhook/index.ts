/**
 * Wiring for `warden controller`: TLS from the shared Secret (caBundle kept in
 * step), the HTTPS admission server, and a periodic refresh that rotates the
 * certificate or picks up another replica's rotation.
 */
import type { KubeApi } from '../kube/kube.js';
import type { AdmissionDeps, AdmissionLogger, AgentIdentityLookup } from './admission.js';
import { DEFAULT_CONFIGURATION_NAME } from './config.js';
import type { AdmissionEvents } from './events.js';
import { apiLookup } from './lookup.js';
import { type HandlerOptions, WebhookServer } from './server.js';
import type { TlsMaterial, TlsNames } from './tls.js';
import { FileTlsSource, type TlsSource } from './tls-files.js';
import { TlsStore, watchTls } from './tls-store.js';
import type { BrokerConfig } from './types.js';

export { webhookConfiguration } from './config.js';
export { DEFAULT_BROKER_CONFIG } from './types.js';

/** Default name of the Secret holding the webhook's serving certificate and CA bundle. */
export const DEFAULT_TLS_SECRET_NAME = 'warden-webhook-tls';

/** `maxBodyBytes` and `metrics` (observability/metrics.ts) come from HandlerOptions. */
export interface WebhookOptions extends HandlerOptions {
  api: KubeApi;
  /** Warden's namespace: where the TLS Secret lives. */
  namespace: string;
  secretName?: string;
  /** The MutatingWebhookConfiguration whose caBundle is kept in step (default warden-pod-injector); null leaves it alone. */
  configurationName?: string | null;
  /** Names the serving certificate is valid for (Service DNS names; 127.0.0.1 in tests). */
  names: TlsNames;
  broker: BrokerConfig;
  port: number;
  host?: string;
  logger: AdmissionLogger;
  events: AdmissionEvents;
  /** Defaults to a GET per admission; pass an informer-cache lookup to avoid it. */
  lookup?: AgentIdentityLookup;
  /**
   * Give new brokers the current CA bundle (pod annotation projected as a file,
   * --authority-ca) because the authority is served with this same certificate.
   * Follows rotation.
   */
  injectAuthorityCa?: boolean;
  /**
   * Serve tls.crt/tls.key(/ca.crt) from this directory (cert-manager) instead of the
   * self-managed Secret: nothing is issued and no caBundle is patched.
   */
  certDir?: string;
  /** How often to re-check the Secret (or files) for rotation. Default 1 minute. */
  refreshIntervalMs?: number;
  now?: () => Date;
}

export interface RunningWebhook {
  port: number;
  /** Where the serving material comes from: the self-managed Secret, or files. */
  store: TlsSource;
  /** The material currently served. */
  material(): TlsMaterial;
  /** Called after each rotation, once the caBundle trusts the new certificate (e.g. to reload the authority's TLS). */
  onCertificateChange(listener: (m: TlsMaterial) => void): void;
  stop(): Promise<void>;
}

export async function startWebhook(o: WebhookOptions): Promise<RunningWebhook> {
  const store: TlsSource = o.certDir
    ? new FileTlsSource(o.certDir)
    : new TlsStore({
        api: o.api,
        namespace: o.namespace,
        secretName: o.secretName ?? DEFAULT_TLS_SECRET_NAME,
        webhookConfigurationName:
          o.configurationName === null ? undefined : (o.configurationName ?? DEFAULT_CONFIGURATION_NAME),
        names: o.names,
        logger: o.logger,
        ...(o.now ? { now: o.now } : {}),
      });
  let current = await store.ensure();
  const brokerFor = (m: TlsMaterial): BrokerConfig =>
    o.injectAuthorityCa ? { ...o.broker, authorityCaBundlePem: m.caBundlePem } : o.broker;
  // The handler reads deps.broker per review, so rotation updates what new pods get.
  const deps: AdmissionDeps = {
    broker: brokerFor(current),
    lookup: o.lookup ?? apiLookup(o.api),
    events: o.events,
    logger: o.logger,
  };
  const listeners: ((m: TlsMaterial) => void)[] = [];
  const server = new WebhookServer(deps, current, { maxBodyBytes: o.maxBodyBytes, metrics: o.metrics });
  const port = await server.listen(o.port, o.host);
  const stopWatch = watchTls(
    store,
    current,
    (m) => {
      current = m;
      server.setCertificate(m);
      deps.broker = brokerFor(m);
      for (const l of listeners) {
        try {
          l(m);
        } catch (err) {
          o.logger.error({ err: (err as Error).message }, 'certificate change listener failed');
        }
      }
      o.logger.info({ port }, 'serving rotated webhook certificate');
    },
    o.refreshIntervalMs ?? 60_000,
    o.logger,
  );
  return {
    port,
    store,
    material: () => current,
    onCertificateChange: (l) => {
      listeners.push(l);
    },
    async stop() {
      stopWatch();
      await server.close();
    },
  };
}
