/**
 * Recording admission outcomes as Events on the AgentIdentity, so
 * `kubectl describe agentidentity <name>` shows which pods were injected or
 * rejected and why. The webhook depends only on the AdmissionEvents interface;
 * the Kubernetes-backed implementation is below.
 */
import { randomBytes } from 'node:crypto';
import { API_VERSION, REPORTING_CONTROLLER } from '../core/constants.js';
import { type KubeApi, resourcePath } from '../operator/core/kube.js';

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

/** Writes core/v1 Events (shown by `kubectl describe` and `kubectl events`). */
export class KubeAdmissionEvents implements AdmissionEvents {
  constructor(
    private readonly api: KubeApi,
    private readonly instance: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async record(e: AdmissionEvent): Promise<void> {
    const t = this.now().toISOString();
    await this.api.request(
      'POST',
      resourcePath({ group: '', version: 'v1', plural: 'events' }, e.agent.namespace),
      {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: {
            name: `${e.agent.name}.${randomBytes(8).toString('hex')}`,
            namespace: e.agent.namespace,
          },
          involvedObject: {
            apiVersion: API_VERSION,
            kind: 'AgentIdentity',
            name: e.agent.name,
            namespace: e.agent.namespace,
            uid: e.agent.uid,
          },
          type: e.type,
          reason: e.reason,
          // core/v1 Event messages are limited to 1 KiB by convention; keep them short.
          message: e.note.length > 1024 ? `${e.note.slice(0, 1021)}...` : e.note,
          action: 'Admit',
          source: { component: REPORTING_CONTROLLER },
          reportingComponent: REPORTING_CONTROLLER,
          reportingInstance: this.instance,
          firstTimestamp: t,
          lastTimestamp: t,
          count: 1,
        },
      },
    );
  }
}
