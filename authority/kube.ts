/** Kubernetes reads the authority needs, behind small interfaces so handlers stay testable. */
import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import type { PodLike } from '../core/identity/agent.js';
import type { AgentIdentityLike } from './attest.js';
import { apiStatus } from './keystore.js';

export interface PodGetter {
  /** The pod, or null when it does not exist. */
  getPod(namespace: string, name: string): Promise<PodLike | null>;
}

export interface AgentIdentityGetter {
  /** The AgentIdentity, or null when it does not exist. */
  getAgentIdentity(namespace: string, name: string): Promise<AgentIdentityLike | null>;
}

/** Live GETs: every attestation sees the pod as the API server has it now. */
export class LiveKube implements PodGetter, AgentIdentityGetter {
  constructor(
    private readonly core: CoreV1Api,
    private readonly custom: CustomObjectsApi,
  ) {}

  async getPod(namespace: string, name: string): Promise<PodLike | null> {
    try {
      return await this.core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if (apiStatus(err) === 404) return null;
      throw err;
    }
  }

  async getAgentIdentity(namespace: string, name: string): Promise<AgentIdentityLike | null> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL.AgentIdentity,
        name,
      })) as AgentIdentityLike;
    } catch (err) {
      if (apiStatus(err) === 404) return null;
      throw err;
    }
  }
}
