/**
 * The policy snapshot a broker receives on GET /v1/stream: everything it needs to decide locally
 * for its agent, and nothing about other agents. Pure: built from objects the caller supplies.
 *
 * Brokers compile the AccessPolicy specs themselves (core/policy) — a snapshot carries the
 * serializable specs, not compiled programs — and deny everything while `agent` is null
 * (AgentIdentity deleted) or `agent.suspended` is true.
 */
import { createHash } from 'node:crypto';
import type { AccessPolicySpec, AgentIdentitySpec, CredentialProviderSpec } from '../core/api/index.js';
import { buildPolicySet, type CompiledPolicy } from '../core/policy/index.js';

export interface SnapshotPolicy {
  name: string;
  resourceVersion: string;
  generation: number;
  spec: AccessPolicySpec;
}

export interface PolicySnapshot {
  /** Content hash: equal snapshots have equal versions, so a resumed stream can skip resending. */
  version: string;
  namespace: string;
  agent: {
    name: string;
    labels: Record<string, string>;
    serviceAccountName: string;
    suspended: boolean;
    suspendReason: string;
    userContext: AgentIdentitySpec['userContext'] | null;
    maxCredentialTTL: string;
    /** spec.audit.mode: whether a call the broker cannot audit is denied (Required). */
    auditMode: 'Required' | 'BestEffort';
  } | null;
  /** AccessPolicies selecting the agent that compile; sorted by name. */
  policies: SnapshotPolicy[];
  /** Policies that select the agent but do not compile (their rules are not in force). */
  invalidPolicies: string[];
  /** The namespace's CredentialProviders as the broker needs them (where, how to inject); sorted by name. */
  providers: SnapshotProvider[];
}

/**
 * What a broker learns about a CredentialProvider: the target and the injection format. Built
 * field by field — never by copying the spec — so no secret reference (clientSecretRef,
 * adminSecretRef, apiKey.secretRef, ...) can ever reach a broker.
 */
export interface SnapshotProvider {
  name: string;
  url: string;
  protocol: 'MCP' | 'HTTP' | 'PostgreSQL';
  inject: { header: string; format: string };
  /**
   * Present for type AWS: the broker signs requests (SigV4) instead of injecting a header, so it
   * strips the agent's X-Amz-* headers before deciding. Absent for every other type (so their
   * snapshots, and versions, are unchanged).
   */
  signing?: 'SigV4';
}

/** A CredentialProvider as the store hands it over: name and spec. */
export interface ProviderView {
  name: string;
  namespace: string;
  spec: CredentialProviderSpec;
}

/** The broker-facing part of a CredentialProvider; CRD defaults applied in case the object lacks them. */
export function snapshotProvider(p: ProviderView): SnapshotProvider {
  return {
    name: p.name,
    url: p.spec.target.url,
    protocol: p.spec.target.protocol ?? 'MCP',
    inject: {
      header: p.spec.inject?.header ?? 'Authorization',
      format: p.spec.inject?.format ?? 'Bearer {token}',
    },
    ...(p.spec.type === 'AWS' ? { signing: 'SigV4' as const } : {}),
  };
}

/** An AccessPolicy as the store keeps it: the object and its compile result. */
export interface StoredPolicy {
  name: string;
  namespace: string;
  resourceVersion: string;
  generation: number;
  spec: AccessPolicySpec;
  compiled: CompiledPolicy | null;
  /** Raw agentSelector, used to tell whether an invalid policy would select the agent. */
  selector:
    | { readonly names?: readonly string[]; readonly matchLabels?: Readonly<Record<string, string>> }
    | undefined;
}

export interface IdentityView {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  spec: AgentIdentitySpec;
}

function selectsByRawSelector(p: StoredPolicy, agent: IdentityView): boolean {
  const s = p.selector;
  if (s?.names && s.names.length > 0 && !s.names.includes(agent.name)) return false;
  return Object.entries(s?.matchLabels ?? {}).every(([k, v]) => agent.labels[k] === v);
}

/**
 * Builds the snapshot of `agentName` in `namespace` (identity null = deleted). `providers` may hold
 * other namespaces' CredentialProviders; only `namespace`'s are carried.
 */
export function buildSnapshot(
  namespace: string,
  agentName: string,
  identity: IdentityView | null,
  policies: readonly StoredPolicy[],
  providers: readonly ProviderView[] = [],
): PolicySnapshot {
  let agent: PolicySnapshot['agent'] = null;
  let selected: StoredPolicy[] = [];
  const invalid: string[] = [];
  if (identity) {
    agent = {
      name: agentName,
      labels: { ...identity.labels },
      serviceAccountName: identity.spec.serviceAccountName,
      suspended: identity.spec.suspended === true,
      suspendReason: identity.spec.suspendReason ?? '',
      userContext: identity.spec.userContext ?? null,
      maxCredentialTTL: identity.spec.maxCredentialTTL ?? '1h',
      auditMode: identity.spec.audit?.mode ?? 'BestEffort',
    };
    const inNs = policies.filter((p) => p.namespace === namespace);
    const compiled = inNs.flatMap((p) => (p.compiled ? [p.compiled] : []));
    const set = buildPolicySet(compiled, { name: agentName, namespace, labels: identity.labels });
    const ids = new Set(set.policies.map((p) => p.id));
    selected = inNs.filter((p) => p.compiled && ids.has(p.compiled.id));
    for (const p of inNs) if (!p.compiled && selectsByRawSelector(p, identity)) invalid.push(p.name);
  }
  const body = {
    namespace,
    agent,
    policies: selected
      .map((p) => ({
        name: p.name,
        resourceVersion: p.resourceVersion,
        generation: p.generation,
        spec: p.spec,
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    invalidPolicies: invalid.sort(),
    providers: providers
      .filter((p) => p.namespace === namespace)
      .map(snapshotProvider)
      .sort((a, b) => a.name.localeCompare(b.name)),
  };
  // resourceVersion is part of the hash, so any edit (even one that compiles to the same rules)
  // reaches the broker; identical state always hashes the same across replicas. Providers enter
  // by content only: a secret rotation or status update leaves the version (and brokers) alone.
  const version = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 20);
  return { version, ...body };
}
