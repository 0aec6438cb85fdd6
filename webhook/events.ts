/**
 * Recording admission outcomes as Events on the AgentIdentity, so
 * `kubectl describe agentidentity <name>` shows which pods were injected or
 * rejected and why. The webhook depends only on the AdmissionEvents interface;
 * the Kubernetes-backed one adapts the controller's recorder.
 */
import { API_VERSION } from '../core/constants.js';
import type { EventRecorder } from '../kube/events.js';

export interface AdmissionEvent {
  agent: { name: string; namespace: string; uid?: string };
  type: 'Normal' | 'Warning';
  /** CamelCase reason, e.g. Injected, AgentSuspended. */
  reason: string;
  /** Human-readable; names the pod. Never contains a secret. */
  note: string;
}

export interface AdmissionEvents {
  record(event: AdmissionEvent): Promise<void>;
}

/** Discards events (tests, benchmarks, or when the recorder is disabled). */
export const noEvents: AdmissionEvents = { record: async () => {} };

/** Keeps events in memory (tests). */
export class MemoryEvents implements AdmissionEvents {
  readonly events: AdmissionEvent[] = [];
  async record(event: AdmissionEvent): Promise<void> {
    this.events.push(event);
  }
}

/**
 * Writes through the controller's Event recorder (kube/events.ts):
 * events.k8s.io/v1 Events, aggregated and rate-limited, so a ReplicaSet
 * retrying a rejected pod cannot flood the API server.
 */
export function recorderEvents(recorder: EventRecorder): AdmissionEvents {
  return {
    record: async (e) => {
      recorder.record(
        { apiVersion: API_VERSION, kind: 'AgentIdentity', metadata: { ...e.agent } },
        { type: e.type, reason: e.reason, action: 'Admit', note: e.note },
      );
    },
  };
}
