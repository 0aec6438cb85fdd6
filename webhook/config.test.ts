import { describe, expect, it } from 'vitest';
import { MATCH_CONDITIONS, POD_WEBHOOK_NAME, webhookConfiguration } from './config.js';

describe('webhookConfiguration', () => {
  const cfg = webhookConfiguration({
    wardenNamespace: 'warden-system',
    clientConfig: { service: { name: 'warden', namespace: 'warden-system' } },
    caBundlePem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
  });
  const hook = cfg.webhooks?.[0];

  it('registers one pod CREATE webhook with the safety settings the issue requires', () => {
    expect(cfg.webhooks).toHaveLength(1);
    expect(hook).toMatchObject({
      name: POD_WEBHOOK_NAME,
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail',
      reinvocationPolicy: 'IfNeeded',
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    });
    expect(['None', 'NoneOnDryRun']).toContain(hook?.sideEffects);
    expect(hook?.timeoutSeconds).toBeLessThanOrEqual(5);
  });

  it('never sends kube-system or Warden’s own namespace', () => {
    expect(hook?.namespaceSelector?.matchExpressions).toContainEqual({
      key: 'kubernetes.io/metadata.name',
      operator: 'NotIn',
      values: ['kube-system', 'warden-system'],
    });
  });

  it('is called only for annotated or labelled pods that did not opt out', () => {
    expect(hook?.matchConditions).toEqual(MATCH_CONDITIONS);
    expect(MATCH_CONDITIONS.map((c) => c.expression).join(' ')).toMatch(
      /'warden.dev\/agent' in object.metadata.annotations/,
    );
    expect(MATCH_CONDITIONS.map((c) => c.expression).join(' ')).toMatch(
      /\['warden.dev\/inject'\] != 'false'/,
    );
  });

  it('points at the service path /mutate with the CA bundle base64-encoded', () => {
    expect(hook?.clientConfig.service).toEqual({
      name: 'warden',
      namespace: 'warden-system',
      port: 443,
      path: '/mutate',
    });
    expect(Buffer.from(hook?.clientConfig.caBundle ?? '', 'base64').toString()).toMatch(/BEGIN CERTIFICATE/);
  });

  it('caps the timeout at 5 seconds', () => {
    const c = webhookConfiguration({
      wardenNamespace: 'w',
      clientConfig: { url: 'https://x/mutate' },
      timeoutSeconds: 30,
    });
    expect(c.webhooks?.[0]?.timeoutSeconds).toBe(5);
  });
});
