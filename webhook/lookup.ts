/**
 * Reading the AgentIdentity a pod names. A direct GET for now; the controller
 * can pass an informer-cache lookup with the same signature instead.
 */
import { API_VERSION, GROUP, PLURAL, VERSION } from '../core/constants.js';
import { describeError, isNotFound } from '../kube/errors.js';
import { type KubeApi, resourcePath } from '../kube/kube.js';
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

/** What the lookup needs from an informer (kube/informer.ts's Informer fits). */
export interface AgentIdentityCache {
  hasSynced(): boolean;
  get(name: string, namespace?: string): AgentIdentityView | undefined;
}

/**
 * Answers from the controller's informer cache, so admission costs no API
 * round trip. A miss (or a cache not yet synced) falls back to `fallback`:
 * an AgentIdentity created a moment before its pod may not be cached yet, and
 * a valid pod must not be rejected for that.
 */
export function cachedLookup(cache: AgentIdentityCache, fallback: AgentIdentityLookup): AgentIdentityLookup {
  return async (namespace, name) => {
    if (cache.hasSynced()) {
      const hit = cache.get(name, namespace);
      if (hit !== undefined) return hit;
    }
    return fallback(namespace, name);
  };
}
