/**
 * The authority's view of AgentIdentities, AccessPolicies and CredentialProviders, read from the
 * process's shared cache (kube/cache.ts: the same informers the webhook and the reconcilers read),
 * with compiled policies cached per resourceVersion. Feeds the policy
 * stream (snapshots, change notifications) and central decisions on /v1/credentials.
 */
import type { AccessPolicy, AgentIdentity, CredentialProvider } from '../core/api/index.js';
import {
  type AccessPolicySpecLike,
  buildPolicySet,
  compileAccessPolicy,
  type PolicySet,
} from '../core/policy/index.js';
import type { SharedCache } from '../kube/cache.js';
import type { Informer } from '../kube/informer.js';
import { ACCESS_POLICIES, AGENT_IDENTITIES, CREDENTIAL_PROVIDERS } from '../kube/resources.js';
import {
  buildSnapshot,
  type IdentityView,
  type PolicySnapshot,
  type ProviderView,
  type StoredPolicy,
} from './snapshot.js';

export type ChangeListener = (namespace: string) => void;

/** What the stream and the credentials endpoint need from the store. */
export interface PolicySource {
  identity(namespace: string, name: string): IdentityView | null;
  snapshot(namespace: string, agent: string): PolicySnapshot;
  policySet(namespace: string, agent: string): PolicySet | null;
  /** Called after any AgentIdentity, AccessPolicy or CredentialProvider in `namespace` changed. Returns unsubscribe. */
  subscribe(listener: ChangeListener): () => void;
}

function identityView(obj: AgentIdentity): IdentityView {
  return {
    name: obj.metadata.name ?? '',
    namespace: obj.metadata.namespace ?? '',
    labels: { ...(obj.metadata.labels ?? {}) },
    spec: obj.spec,
  };
}

/** Compiles an AccessPolicy object; invalid ones are kept (compiled null) so snapshots can name them. */
export function storedPolicy(obj: AccessPolicy): StoredPolicy {
  const name = obj.metadata.name ?? '';
  const namespace = obj.metadata.namespace ?? '';
  // The generated types give map values `string | undefined` (json-schema-to-typescript index
  // signatures); JSON from the API server never holds undefined, so the policy engine's shape fits.
  const spec = obj.spec as AccessPolicySpecLike;
  const result = compileAccessPolicy({ namespace, name, spec });
  return {
    name,
    namespace,
    resourceVersion: obj.metadata.resourceVersion ?? '',
    generation: obj.metadata.generation ?? 0,
    spec: obj.spec,
    compiled: result.ok ? result.compiled : null,
    selector: spec.agentSelector as StoredPolicy['selector'],
  };
}

export class InformerPolicyStore implements PolicySource {
  private readonly identities: Informer<AgentIdentity>;
  private readonly policyInformer: Informer<AccessPolicy>;
  private readonly providerInformer: Informer<CredentialProvider>;
  private readonly compiled = new Map<string, StoredPolicy>(); // key ns/name
  private readonly listeners = new Set<ChangeListener>();

  /** Reads `cache`'s informers; starting and stopping them is the cache owner's business. */
  constructor(cache: SharedCache) {
    this.identities = cache.informer<AgentIdentity>(AGENT_IDENTITIES);
    this.policyInformer = cache.informer<AccessPolicy>(ACCESS_POLICIES);
    this.providerInformer = cache.informer<CredentialProvider>(CREDENTIAL_PROVIDERS);
    const notify = (obj: { metadata?: { namespace?: string } }) => {
      const ns = obj.metadata?.namespace ?? '';
      for (const l of this.listeners) l(ns);
    };
    this.identities.on({ add: notify, update: (_o, n) => notify(n), delete: notify });
    const setPolicy = (obj: AccessPolicy) => {
      this.compiled.set(`${obj.metadata.namespace}/${obj.metadata.name}`, storedPolicy(obj));
      notify(obj);
    };
    this.policyInformer.on({
      add: setPolicy,
      update: (old, obj) => {
        // Resyncs re-deliver unchanged objects: skip recompiling and waking streams.
        if (
          old.metadata.resourceVersion === obj.metadata.resourceVersion &&
          this.compiled.has(`${obj.metadata.namespace}/${obj.metadata.name}`)
        )
          return;
        setPolicy(obj);
      },
      delete: (obj) => {
        this.compiled.delete(`${obj.metadata.namespace}/${obj.metadata.name}`);
        notify(obj);
      },
    });
    // Providers are read from the informer cache at snapshot time; a change only wakes the streams
    // (which resend only if the broker-facing part changed: the snapshot version is a content hash).
    this.providerInformer.on({
      add: notify,
      update: (old, obj) => {
        if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) notify(obj);
      },
      delete: notify,
    });
  }

  /** Resolves once the three informers have listed: a store that answers before would deny by mistake. */
  async waitForSync(): Promise<void> {
    await Promise.all([
      this.identities.waitForSync(),
      this.policyInformer.waitForSync(),
      this.providerInformer.waitForSync(),
    ]);
  }

  identity(namespace: string, name: string): IdentityView | null {
    const obj = this.identities.get(name, namespace);
    return obj ? identityView(obj) : null;
  }

  private policiesIn(namespace: string): StoredPolicy[] {
    return [...this.compiled.values()].filter((p) => p.namespace === namespace);
  }

  private providersIn(namespace: string): ProviderView[] {
    return this.providerInformer.list(namespace).map((obj) => ({
      name: obj.metadata.name ?? '',
      namespace: obj.metadata.namespace ?? '',
      spec: obj.spec,
    }));
  }

  snapshot(namespace: string, agent: string): PolicySnapshot {
    return buildSnapshot(
      namespace,
      agent,
      this.identity(namespace, agent),
      this.policiesIn(namespace),
      this.providersIn(namespace),
    );
  }

  policySet(namespace: string, agent: string): PolicySet | null {
    const id = this.identity(namespace, agent);
    if (!id) return null;
    const compiled = this.policiesIn(namespace).flatMap((p) => (p.compiled ? [p.compiled] : []));
    return buildPolicySet(compiled, {
      name: agent,
      namespace,
      labels: id.labels,
      serviceAccount: id.spec.serviceAccountName,
      suspended: id.spec.suspended === true,
      suspendReason: id.spec.suspendReason,
    });
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
