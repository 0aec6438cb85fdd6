/**
 * The policy snapshot the authority streams to a broker (GET /v1/stream, event `snapshot`; built by
 * authority/snapshot.ts), and its compilation into a core/policy PolicySet (pure).
 *
 * Wire format (JSON in the SSE `data:` field):
 *   { version, namespace,
 *     agent: {name, labels, serviceAccountName, suspended, suspendReason, userContext,
 *             maxCredentialTTL} | null,              // null = AgentIdentity deleted → deny all
 *     policies: [{name, resourceVersion, generation, spec}], invalidPolicies: [name],
 *     providers?: [{name, url, protocol, inject: {header, format}}] }
 * Policies travel as AccessPolicy specs (compiled CEL programs cannot be serialised); the broker
 * compiles them with the same compiler the authority uses. `providers` lists the namespace's
 * CredentialProviders (where each target is and how to inject — never a secret reference). It is
 * the source of truth: runBroker's static `providers` option (`--provider` flags) only fills in
 * targets the snapshot does not name (docs/adr/0007-broker.md). The field is optional so a broker
 * still reads snapshots from an authority that predates it.
 */
import { z } from 'zod';
import { compileAccessPolicy, formatCompileError } from '../core/policy/compile.js';
import type { CompiledPolicy } from '../core/policy/compiled.js';
import { buildPolicySet, type PolicySet } from '../core/policy/policy-set.js';
import type { AccessPolicySpecLike } from '../core/policy/types.js';

const name = z.string().min(1).max(253);

/** The URL scheme each protocol's target uses (the CredentialProvider CRD enforces the same). */
const SCHEME: Readonly<Record<'MCP' | 'HTTP' | 'PostgreSQL', RegExp>> = {
  MCP: /^https?:\/\//i,
  HTTP: /^https?:\/\//i,
  PostgreSQL: /^postgres(ql)?:\/\//i,
};

export const ProviderSchema = z
  .object({
    name,
    url: z.url({ protocol: /^(https?|postgres(ql)?)$/ }),
    protocol: z.enum(['MCP', 'HTTP', 'PostgreSQL']).default('MCP'),
    inject: z
      .object({
        header: z
          .string()
          .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
          .default('Authorization'),
        format: z.string().max(1024).default('Bearer {token}'),
      })
      .default({ header: 'Authorization', format: 'Bearer {token}' }),
    /** SigV4: an AWS provider; the HTTP proxy signs the request with the issued temporary credentials. */
    signing: z.enum(['SigV4']).optional(),
  })
  .superRefine((p, ctx) => {
    if (!SCHEME[p.protocol].test(p.url)) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: `a ${p.protocol} target needs ${p.protocol === 'PostgreSQL' ? 'a postgres://' : 'an http(s)://'} URL`,
      });
    }
  });
export type Provider = z.infer<typeof ProviderSchema>;

export const TrustedIssuerSchema = z.object({
  issuer: z.string(),
  jwksUri: z.string().optional(),
  audiences: z.array(z.string()).default([]),
  groupsClaim: z.string().optional(),
  departmentClaim: z.string().optional(),
  claims: z.array(z.string()).optional(),
});

export const SnapshotSchema = z.object({
  version: z.string().min(1).max(256),
  namespace: name,
  agent: z
    .object({
      name,
      labels: z.record(z.string(), z.string()).default({}),
      serviceAccountName: z.string().optional(),
      suspended: z.boolean().default(false),
      suspendReason: z.string().max(1024).optional(),
      userContext: z
        .object({
          mode: z.enum(['Optional', 'Required', 'Forbidden']).optional(),
          trustedIssuers: z.array(TrustedIssuerSchema).optional(),
        })
        .nullable()
        .optional(),
      maxCredentialTTL: z.string().optional(),
      // Absent from an older authority: BestEffort, as before.
      auditMode: z.enum(['Required', 'BestEffort']).default('BestEffort'),
    })
    .nullable(),
  policies: z
    .array(
      z.object({
        name,
        resourceVersion: z.string().optional(),
        generation: z.number().optional(),
        spec: z.unknown(),
      }),
    )
    .max(10_000),
  invalidPolicies: z.array(z.string()).default([]),
  providers: z.array(ProviderSchema).max(10_000).optional(),
});
export type PolicySnapshot = z.infer<typeof SnapshotSchema>;
export type PolicySnapshotInput = z.input<typeof SnapshotSchema>;
export type SnapshotAgent = NonNullable<PolicySnapshot['agent']>;

/** A snapshot ready for decisions. */
export interface CompiledSnapshot {
  readonly version: string;
  readonly set: PolicySet;
  readonly namespace: string;
  readonly agent: SnapshotAgent;
  readonly providers: ReadonlyMap<string, Provider>;
  /** Allow policies left out because they do not compile (they only ever narrow what is allowed). */
  readonly skippedAllow: readonly string[];
}

export type CompileSnapshotResult =
  | { readonly ok: true; readonly snapshot: CompiledSnapshot }
  | { readonly ok: false; readonly message: string };

/** Validate the wire JSON; errors name the field path. */
export function parseSnapshot(
  value: unknown,
): { ok: true; snapshot: PolicySnapshot } | { ok: false; message: string } {
  const r = SnapshotSchema.safeParse(value);
  if (r.success) return { ok: true, snapshot: r.data };
  const issues = r.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(snapshot)'}: ${i.message}`)
    .join('; ');
  return { ok: false, message: `policy snapshot is malformed: ${issues}` };
}

/**
 * Compile every policy. A Deny policy (or one whose effect cannot be read) that fails to compile
 * makes the whole snapshot invalid: skipping it would allow what it was written to deny (fail
 * closed). An Allow policy that fails is skipped and reported.
 */
export function compileSnapshot(
  snapshot: PolicySnapshot,
  staticProviders: readonly Provider[] = [],
): CompileSnapshotResult {
  const a = snapshot.agent;
  if (!a) {
    return {
      ok: false,
      message:
        'the AgentIdentity of this broker no longer exists; nothing is allowed (recreate it or remove the pod)',
    };
  }
  const compiled: CompiledPolicy[] = [];
  const skippedAllow: string[] = [];
  const ns = snapshot.namespace;
  for (const p of snapshot.policies) {
    const spec = p.spec as AccessPolicySpecLike;
    const effect = spec && typeof spec === 'object' ? (spec.effect ?? 'Allow') : 'unknown';
    let errors: string;
    try {
      const r = compileAccessPolicy({ namespace: ns, name: p.name, spec });
      if (r.ok) {
        compiled.push(r.compiled);
        continue;
      }
      errors = r.errors.map((e) => formatCompileError({ namespace: ns, name: p.name }, e)).join('; ');
    } catch (err) {
      errors = `AccessPolicy ${ns}/${p.name}: spec is malformed (${err instanceof Error ? err.message : String(err)})`;
    }
    if (effect !== 'Allow') {
      return {
        ok: false,
        message: `${effect === 'Deny' ? 'a Deny' : 'a'} policy does not compile in the broker, so nothing is allowed until it is fixed: ${errors}`,
      };
    }
    skippedAllow.push(errors);
  }
  const set = buildPolicySet(compiled, {
    name: a.name,
    namespace: ns,
    labels: a.labels,
    serviceAccount: a.serviceAccountName,
    suspended: a.suspended,
    suspendReason: a.suspendReason || undefined,
  });
  const providers = new Map(staticProviders.map((p) => [p.name, p]));
  for (const p of snapshot.providers ?? []) providers.set(p.name, p);
  return {
    ok: true,
    snapshot: { version: snapshot.version, namespace: ns, set, agent: a, providers, skippedAllow },
  };
}
