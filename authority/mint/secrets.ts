/**
 * The SecretsReader the authority uses in production: a live GET of the Secret each time (no
 * cache, so a rotated or deleted Secret takes effect on the next mint). Values are decoded only
 * here and returned to the minter; errors name the Secret and key, never a value.
 */
import { type KubeApi, resourcePath } from '../../kube/kube.js';
import { SECRETS } from '../../kube/resources.js';
import { apiStatus } from '../keystore.js';
import { MintError, type SecretsReader } from './types.js';

/** `api`: the process's API client (a Manager's). */
export function kubeSecretsReader(api: KubeApi): SecretsReader {
  return {
    async read(namespace, name, key) {
      let data: Record<string, string> | undefined;
      try {
        data = (
          await api.request<{ data?: Record<string, string> }>('GET', resourcePath(SECRETS, namespace, name))
        ).data;
      } catch (err) {
        const status = apiStatus(err);
        if (status === 404) {
          throw new MintError(
            'SecretNotFound',
            `Secret ${namespace}/${name} not found; create it or fix the secretRef`,
          );
        }
        if (status === 403) {
          throw new MintError(
            'SecretNotFound',
            `Secret ${namespace}/${name}: the controller may not read Secrets in ${namespace} (RBAC); grant it the per-namespace secret reader`,
          );
        }
        throw new MintError(
          'UpstreamUnreachable',
          `Secret ${namespace}/${name}: reading it failed (HTTP ${status ?? 'error'})`,
        );
      }
      const encoded = data?.[key];
      if (encoded === undefined) {
        throw new MintError('SecretKeyMissing', `Secret ${namespace}/${name} has no key '${key}'`);
      }
      return Buffer.from(encoded, 'base64').toString('utf8');
    },
  };
}
