import { CoreV1Api } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig } from '../../e2e/harness/index.js';
import { KubeConfigApi } from '../../kube/kube.js';
import { kubeSecretsReader } from './secrets.js';

describe('kubeSecretsReader against the real API server', () => {
  let namespace: string;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);

  beforeAll(async () => {
    namespace = await freshNamespace('mint-secrets');
    await core().createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'idp-client' }, stringData: { secret: 's3cr3t-välue' } },
    });
  });

  it('reads and decodes a key', async () => {
    expect(
      await kubeSecretsReader(new KubeConfigApi(kubeConfig())).read(namespace, 'idp-client', 'secret'),
    ).toBe('s3cr3t-välue');
  });

  it('names a missing Secret and a missing key, with the reason', async () => {
    const reader = kubeSecretsReader(new KubeConfigApi(kubeConfig()));
    await expect(reader.read(namespace, 'nope', 'secret')).rejects.toMatchObject({
      reason: 'SecretNotFound',
      message: `Secret ${namespace}/nope not found; create it or fix the secretRef`,
    });
    await expect(reader.read(namespace, 'idp-client', 'other')).rejects.toMatchObject({
      reason: 'SecretKeyMissing',
      message: `Secret ${namespace}/idp-client has no key 'other'`,
    });
  });
});
