/**
 * Reading the AgentIdentity a pod names. A direct GET for now; the controller
 * can pass an informer-cache lookup with the same signature instead.
 */
import { API_VERSION, GROUP, PLURAL, VERSION } from '../core/constants.js';
import { describeError, isNotFound } from '../operator/core/errors.js';
import { type KubeApi, resourcePath } from '../operator/core/kube.js';
import type { AgentIdentityLookup } from './admission.js';
import type { AgentIdentityView } from './types.js';

const AGENT_IDENTITIES = { group: GROUP, version: VERSION, plural: PLURAL.AgentIdentity };

/** Looks the AgentIdentity up with a GET; NotFound becomes `undefined`. */
export function apiLookup(api: KubeApi, timeoutMs = 2000): AgentIdentityLookup {
  return async (namespace, name) => {
    try {
      const obj = await api.request<AgentIdentityView & { apiVersion?: string }>(
        'GET',
        resourcePath(AGENT_IDENTITIES, namespace, name),
        { timeoutMs },
      );
      if (obj.apiVersion !== undefined && obj.apiVersion !== API_VERSION) {
        throw new Error(`unexpected apiVersion ${obj.apiVersion}`);
      }
      return obj;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(describeError(err));
    }
  };
}
