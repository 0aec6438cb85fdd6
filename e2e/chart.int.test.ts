/**
 * The Helm chart against a real helm (built from its Go module) and the real local
 * kube-apiserver: lint, render several value sets, check what the rendered objects
 * promise (security context, webhook scoping, RBAC), and have the API server accept
 * every object with `kubectl apply --dry-run=server`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  V1Deployment,
  V1LabelSelector,
  V1MutatingWebhookConfiguration,
  V1PolicyRule,
  V1Service,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookConfiguration } from '../webhook/config.js';
import { freshNamespace, kubeconfigPath, kubectl } from './harness/index.js';
import {
  CHART_DIR,
  ensureHelm,
  helmAt,
  objectKeys,
  parseManifests,
  type RenderedObject,
  type RunResult,
} from './tools/helm.js';

const REPO = join(import.meta.dirname, '..');
const THIRD_PARTY_CRDS = join(import.meta.dirname, 'tools', 'testdata', 'third-party-crds.yaml');

interface ValueSet {
  name: string;
  /** Values files under charts/warden/ci/ (also what `ct lint` would use). */
  files: string[];
  /** Extra helm flags (e.g. namespaces only known at run time). */
  extra?: (ctx: { secretNamespaces: string[] }) => string[];
}

const VALUE_SETS: ValueSet[] = [
  { name: 'default', files: [] },
  { name: 'certmanager', files: ['certmanager-values.yaml'] },
  { name: 'certmanager-issuer', files: ['certmanager-issuer-values.yaml'] },
  { name: 'no-networkpolicy', files: ['no-networkpolicy-values.yaml'] },
  { name: 'servicemonitor', files: ['servicemonitor-values.yaml'] },
  { name: 'all-namespaces-secrets', files: ['all-namespaces-secrets-values.yaml'] },
  { name: 'gateway', files: ['gateway-values.yaml'] },
  {
    name: 'hardened',
    files: ['hardened-values.yaml'],
    // The RoleBindings go into namespaces that must exist for the dry run.
    extra: ({ secretNamespaces }) => [
      '--set-json',
      `rbac.agentNamespaces=${JSON.stringify(secretNamespaces)}`,
    ],
  },
];

let helm = '';
let home = '';
let namespace = '';
let secretNamespaces: string[] = [];
const rendered = new Map<string, RenderedObject[]>();

function valuesArgs(set: ValueSet): string[] {
  return [
    ...set.files.flatMap((f) => ['--values', join(CHART_DIR, 'ci', f)]),
    ...(set.extra?.({ secretNamespaces }) ?? []),
  ];
}

function releaseOf(set: ValueSet): string {
  return `w-${set.name}`;
}

async function template(set: ValueSet, more: string[] = []): Promise<RunResult> {
  return helmAt(helm, home, [
    'template',
    releaseOf(set),
    CHART_DIR,
    '--namespace',
    namespace,
    '--include-crds',
    ...valuesArgs(set),
    ...more,
  ]);
}

function find<T = RenderedObject>(objects: RenderedObject[], kind: string, nameSuffix = ''): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
  if (!found) throw new Error(`no ${kind} *${nameSuffix} among ${objectKeys(objects).join(', ')}`);
  return found as unknown as T;
}

function all(set: string): RenderedObject[] {
  const objects = rendered.get(set);
  if (!objects) throw new Error(`value set ${set} was not rendered`);
  return objects;
}

/**
 * A NetworkPolicy as parsed from YAML: client-node's V1NetworkPolicy names the peer
 * list `_from` (a TypeScript keyword workaround), the wire format says `from`.
 */
interface NetworkPolicyJson {
  spec: {
    policyTypes: string[];
    ingress: { ports?: { port: string | number }[]; from?: { podSelector?: V1LabelSelector }[] }[];
  };
}

/** Runs a TypeScript entry point of the repository with tsx (as `make` and the demo do). */
function runTsx(args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), ...args],
      { cwd: REPO, timeout: 110_000, maxBuffer: 8 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 });
      },
    );
  });
}

/** Strips undefined fields so an object built in TypeScript compares equal to parsed YAML. */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

beforeAll(async () => {
  helm = await ensureHelm();
  home = mkdtempSync(join(tmpdir(), 'warden-helm-'));
  namespace = await freshNamespace('chart');
  secretNamespaces = [await freshNamespace('chart-agents'), await freshNamespace('chart-payments')];
  // cert-manager and Prometheus Operator CRDs do not exist on the local control plane.
  const crds = await kubectl(['apply', '--server-side', '-f', THIRD_PARTY_CRDS]);
  if (crds.code !== 0) throw new Error(`installing stand-in CRDs failed:\n${crds.stderr}`);
  const wait = await kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    '-f',
    THIRD_PARTY_CRDS,
  ]);
  if (wait.code !== 0) throw new Error(`stand-in CRDs not established:\n${wait.stderr}`);
  for (const set of VALUE_SETS) {
    const out = await template(set);
    if (out.code !== 0) throw new Error(`helm template (${set.name}) failed:\n${out.stderr}`);
    rendered.set(set.name, parseManifests(out.stdout));
  }
  const counts = VALUE_SETS.map((s) => `${s.name}=${all(s.name).length}`).join(', ');
  process.stderr.write(`[chart] rendered objects per value set (CRDs included): ${counts}\n`);
}, 25 * 60_000);

afterAll(() => {
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('helm lint', () => {
  it.each(VALUE_SETS.map((s) => [s.name, s] as const))(
    'passes --strict with the %s values',
    async (_name, set) => {
      const out = await helmAt(helm, home, [
        'lint',
        '--strict',
        CHART_DIR,
        '--namespace',
        'warden-system',
        ...valuesArgs(set),
      ]);
      expect(out.stderr + out.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(out.code).toBe(0);
    },
  );
});

describe('kubectl apply --dry-run=server accepts every rendered object', () => {
  it.each(VALUE_SETS.map((s) => [s.name, s] as const))('%s', async (name) => {
    const objects = all(name);
    const input = objects.map((o) => JSON.stringify(o)).join('\n');
    // Server-side apply: every namespaced template names its namespace, and the CRDs
    // the global setup installed are compared field by field with the chart's copies.
    const out = await kubectl(
      ['apply', '--server-side', '--dry-run=server', '--field-manager=chart-test', '-f', '-'],
      {
        input,
      },
    );
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    // One line per object: "<kind>/<name> serverside-applied (server dry run)".
    const applied = out.stdout.split('\n').filter((l) => /\(server dry run\)$/.test(l));
    expect(applied).toHaveLength(objects.length);
  });
});

describe('what the default values render', () => {
  it('renders the expected objects, CRDs included', () => {
    expect(objectKeys(all('default'))).toEqual(
      [
        'ClusterRole/w-default-warden-controller',
        'ClusterRole/w-default-warden-secret-reader',
        'ClusterRoleBinding/w-default-warden-controller',
        'CustomResourceDefinition/accesspolicies.warden.dev',
        'CustomResourceDefinition/agentidentities.warden.dev',
        'CustomResourceDefinition/auditrecords.warden.dev',
        'CustomResourceDefinition/credentialproviders.warden.dev',
        'Deployment/w-default-warden-controller',
        'MutatingWebhookConfiguration/w-default-warden-pod-injector',
        'MutatingAdmissionPolicy/w-default-warden-kill-switch-user',
        'MutatingAdmissionPolicyBinding/w-default-warden-kill-switch-user',
        'NetworkPolicy/w-default-warden-controller',
        'PodDisruptionBudget/w-default-warden-controller',
        'Role/w-default-warden-audit-keys-reader',
        'Role/w-default-warden-controller',
        'RoleBinding/w-default-warden-audit-keys-reader',
        'RoleBinding/w-default-warden-controller',
        'Service/w-default-warden',
        'ServiceAccount/w-default-warden-controller',
      ].sort(),
    );
  });

  it('runs two locked-down controller replicas with probes, spread over nodes', () => {
    const deploy = find<V1Deployment>(all('default'), 'Deployment');
    expect(deploy.spec?.replicas).toBe(2);
    const pod = deploy.spec?.template.spec;
    const [container] = pod?.containers ?? [];
    expect(container?.args?.[0]).toBe('controller');
    expect(pod?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container?.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container?.livenessProbe?.httpGet?.port).toBe('health');
    expect(container?.readinessProbe?.httpGet?.port).toBe('health');
    expect(container?.resources?.limits).toHaveProperty('memory');
    expect(pod?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    expect(deploy.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
  });

  it('starts `warden controller` with the flags of the release, and only built-in defaults elsewhere', () => {
    const deploy = find<V1Deployment>(all('default'), 'Deployment');
    expect(deploy.spec?.template.spec?.containers[0]?.args).toEqual([
      'controller',
      '--namespace=$(POD_NAMESPACE)',
      '--identity=$(POD_NAME)',
      '--log-level=info',
      '--webhook-port=9443',
      '--authority-port=8443',
      '--health-port=8081',
      '--service=w-default-warden',
      `--issuer=https://w-default-warden.${namespace}.svc:8443`,
      '--broker-image=ghcr.io/warden-dev/warden:0.1.0',
      '--audit-batch-size=200',
      '--audit-flush-seconds=5',
      '--audit-retention=720h',
      '--webhook-configuration=w-default-warden-pod-injector',
    ]);
  });

  it('registers the same webhook as webhook/config.ts, scoped away from kube-system and its own namespace', () => {
    const mwc = find<V1MutatingWebhookConfiguration>(all('default'), 'MutatingWebhookConfiguration');
    const [entry] = mwc.webhooks ?? [];
    const [expected] =
      webhookConfiguration({
        wardenNamespace: namespace,
        clientConfig: { service: { name: 'w-default-warden', namespace } },
      }).webhooks ?? [];
    expect(plain(entry)).toEqual(plain(expected));
    expect(entry?.failurePolicy).toBe('Fail');
    expect(entry?.timeoutSeconds).toBe(5);
    expect(entry?.reinvocationPolicy).toBe('IfNeeded');
    expect(entry?.clientConfig.caBundle).toBeUndefined(); // selfManaged: the controller patches it
  });

  it("grants no write access to Warden specs but the breaker's AgentIdentity patch, no wildcards, and no Secret writes outside its namespace", () => {
    const objects = all('default');
    const clusterRules = objects
      .filter((o) => o.kind === 'ClusterRole')
      .flatMap((o) => (o as unknown as { rules: V1PolicyRule[] }).rules);
    for (const rule of clusterRules) {
      expect(rule.verbs).not.toContain('*');
      expect(rule.resources).not.toContain('*');
      if (rule.resources?.includes('secrets')) expect(rule.verbs).toEqual(['get']);
      // Reading, plus the circuit breaker's patch of spec.suspended in a rule of its own.
      if (rule.resources?.includes('agentidentities'))
        expect([['get', 'list', 'watch'], ['patch']]).toContainEqual(rule.verbs.sort());
      if (rule.verbs.includes('patch') && rule.resources?.includes('agentidentities'))
        expect(rule.resources).toEqual(['agentidentities']);
      if (rule.resources?.includes('auditrecords')) expect(rule.verbs).not.toContain('update');
    }
    const mwcRule = clusterRules.find((r) => r.resources?.includes('mutatingwebhookconfigurations'));
    expect(mwcRule?.resourceNames).toEqual(['w-default-warden-pod-injector']);
  });

  it('binds Secret reading nowhere until agent namespaces are listed', () => {
    const bindings = all('default').filter(
      (o) => o.kind.endsWith('Binding') && o.metadata.name.endsWith('-secret-reader'),
    );
    expect(bindings).toEqual([]);
  });

  it('lets every authenticated user get the published audit keys, and nothing else', () => {
    const objects = all('default');
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name.endsWith('-audit-keys-reader')) as
      | (RenderedObject & { rules: V1PolicyRule[] })
      | undefined;
    expect(role?.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['warden-audit-keys'], verbs: ['get'] },
    ]);
    const binding = objects.find(
      (o) => o.kind === 'RoleBinding' && o.metadata.name.endsWith('-audit-keys-reader'),
    ) as (RenderedObject & { subjects: Array<{ kind: string; name: string }> }) | undefined;
    expect(binding?.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' },
    ]);
  });

  it('grants exactly the rules of config/rbac/ (the kustomize install), names aside', () => {
    const rulesOf = (objects: RenderedObject[], kind: string) =>
      objects
        .filter((o) => o.kind === kind)
        .flatMap((o) => (o as unknown as { rules: V1PolicyRule[] }).rules)
        // Resource names differ by design (they follow the release name): compare the rest.
        // Order within a list carries no meaning either.
        .map((r) => ({
          apiGroups: [...(r.apiGroups ?? [])].sort(),
          resources: [...(r.resources ?? [])].sort(),
          verbs: [...r.verbs].sort(),
          resourceNames: r.resourceNames?.length ?? 0,
        }))
        .map((r) => JSON.stringify(r))
        .sort();
    const kustomize = parseManifests(
      ['cluster_role.yaml', 'role.yaml', 'secret_reader_role.yaml', 'audit_keys_reader_role.yaml']
        .map((f) => readFileSync(join(CHART_DIR, '..', '..', 'config', 'rbac', f), 'utf8'))
        .join('\n---\n'),
    );
    expect(rulesOf(all('default'), 'ClusterRole')).toEqual(rulesOf(kustomize, 'ClusterRole'));
    expect(rulesOf(all('default'), 'Role')).toEqual(rulesOf(kustomize, 'Role'));
  });

  it('lets only agent pods reach the authority port', () => {
    const np = find<NetworkPolicyJson>(all('default'), 'NetworkPolicy');
    const authority = np.spec.ingress.find((r) => r.ports?.some((p) => p.port === 'authority'));
    expect(authority?.from?.[0]?.podSelector?.matchExpressions?.[0]).toEqual({
      key: 'warden.dev/agent',
      operator: 'Exists',
    });
  });
});

describe('value sets change what they say', () => {
  it('certManager: Issuer + Certificate, CA injection annotation, Secret mounted, no caBundle RBAC', () => {
    const objects = all('certmanager');
    const cert = find<RenderedObject & { spec: { secretName: string; issuerRef: { name: string } } }>(
      objects,
      'Certificate',
    );
    expect(cert.spec.secretName).toBe('warden-webhook-tls');
    expect(cert.spec.issuerRef.name).toBe('w-certmanager-warden-selfsigned');
    expect(find(objects, 'Issuer').metadata.name).toBe('w-certmanager-warden-selfsigned');
    const mwc = find<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
    expect(mwc.metadata?.annotations?.['cert-manager.io/inject-ca-from']).toBe(
      `${namespace}/${cert.metadata.name}`,
    );
    const deploy = find<V1Deployment>(objects, 'Deployment');
    expect(deploy.spec?.template.spec?.volumes?.find((v) => v.name === 'tls')?.secret?.secretName).toBe(
      'warden-webhook-tls',
    );
    const rules = objects
      .filter((o) => o.kind === 'ClusterRole')
      .flatMap((o) => (o as unknown as { rules: V1PolicyRule[] }).rules);
    expect(rules.some((r) => r.resources?.includes('mutatingwebhookconfigurations'))).toBe(false);
  });

  it('certManager: the controller serves the mounted files and leaves the caBundle alone', () => {
    const args = find<V1Deployment>(all('certmanager'), 'Deployment').spec?.template.spec?.containers[0]
      ?.args;
    expect(args).toContain('--tls-cert-dir=/var/run/warden/tls');
    expect(args).toContain('--webhook-configuration=');
  });

  it('certManager with an issuerRef uses it and creates no Issuer', () => {
    const objects = all('certmanager-issuer');
    expect(objects.some((o) => o.kind === 'Issuer')).toBe(false);
    expect(
      find<RenderedObject & { spec: { issuerRef: unknown } }>(objects, 'Certificate').spec.issuerRef,
    ).toEqual({
      kind: 'ClusterIssuer',
      name: 'corporate-ca',
      group: 'cert-manager.io',
    });
  });

  it('networkPolicy and PDB off: neither is rendered', () => {
    const kinds = all('no-networkpolicy').map((o) => o.kind);
    expect(kinds).not.toContain('NetworkPolicy');
    expect(kinds).not.toContain('PodDisruptionBudget');
  });

  it('readSecretsInAllNamespaces: one ClusterRoleBinding, no per-namespace RoleBindings', () => {
    const bindings = all('all-namespaces-secrets').filter((o) => o.metadata.name.endsWith('-secret-reader'));
    expect(bindings.map((b) => b.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding']);
  });

  it('serviceMonitor on: scrapes the metrics port of the Service', () => {
    const sm = find<RenderedObject & { spec: { endpoints: { port: string }[] } }>(
      all('servicemonitor'),
      'ServiceMonitor',
    );
    expect(sm.spec.endpoints[0]?.port).toBe('metrics');
    expect(sm.metadata.labels?.release).toBe('prometheus');
    expect(all('default').some((o) => o.kind === 'ServiceMonitor')).toBe(false);
  });

  it('hardened: digests pinned, hard anti-affinity, egress restricted, Secrets readable only in listed namespaces', () => {
    const objects = all('hardened');
    const deploy = find<V1Deployment>(objects, 'Deployment');
    expect(deploy.spec?.template.spec?.containers[0]?.image).toBe(
      'ghcr.io/warden-dev/warden@sha256:0000000000000000000000000000000000000000000000000000000000000001',
    );
    expect(
      deploy.spec?.template.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution,
    ).toHaveLength(1);
    expect(deploy.spec?.template.spec?.containers[0]?.args).toContain(
      '--broker-image=registry.example.com/warden@sha256:0000000000000000000000000000000000000000000000000000000000000002',
    );
    expect(find<NetworkPolicyJson>(objects, 'NetworkPolicy').spec.policyTypes).toEqual(['Ingress', 'Egress']);
    const secretBindings = objects.filter(
      (o) => o.kind === 'RoleBinding' && o.metadata.name.endsWith('-secret-reader'),
    );
    expect(secretBindings.map((b) => b.metadata.namespace).sort()).toEqual([...secretNamespaces].sort());
    expect(
      objects.some((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name.endsWith('-secret-reader')),
    ).toBe(false);
  });
});

describe('gateway.enabled', () => {
  it('runs two gateway replicas on TLS with their own token, the authority CA and a spool, and names its SA to the controller', () => {
    const objects = all('gateway');
    const gw = find<V1Deployment>(objects, 'Deployment', '-gateway');
    expect(gw.spec?.replicas).toBe(2);
    const pod = gw.spec?.template.spec;
    expect(pod?.automountServiceAccountToken).toBe(false);
    const c = pod?.containers[0];
    expect(c?.args?.[0]).toBe('gateway');
    expect(c?.args).toEqual(
      expect.arrayContaining([
        '--token-file=/var/run/secrets/warden.dev/gateway/token',
        `--public-url=https://w-gateway-warden-gateway.${namespace}.svc:443`,
        '--tls-cert=/var/run/warden/tls/tls.crt',
        '--audit-spool=/var/run/warden/spool',
        '--pg-listen=0.0.0.0:5432',
        '--caller-rate=200',
        '--caller-burst=400',
      ]),
    );
    // The PostgreSQL endpoint on the same Service and NetworkPolicy as the TLS listener.
    expect(c?.ports?.map((p) => [p.name, p.containerPort])).toEqual([
      ['gateway', 8443],
      ['postgresql', 5432],
      ['health', 15102],
    ]);
    const svc = find<V1Service>(objects, 'Service', '-gateway');
    expect(svc.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ['https', 443, 'gateway'],
      ['postgresql', 5432, 'postgresql'],
    ]);
    const token = pod?.volumes?.find((v) => v.name === 'token')?.projected?.sources?.[0]?.serviceAccountToken;
    expect(token).toEqual({ audience: 'warden.dev/broker', expirationSeconds: 3600, path: 'token' });
    // Only the CA of the authority's certificate reaches the gateway, not its key.
    expect(pod?.volumes?.find((v) => v.name === 'authority-ca')?.secret?.items).toEqual([
      { key: 'ca.crt', path: 'ca.crt' },
    ]);
    const controller = find<V1Deployment>(objects, 'Deployment', '-controller');
    expect(controller.spec?.template.spec?.containers[0]?.args).toContain(
      `--gateway-service-account=${namespace}/w-gateway-warden-gateway`,
    );
    expect(
      objects
        .filter((o) => o.metadata.name.endsWith('-gateway'))
        .map((o) => o.kind)
        .sort(),
    ).toEqual(['Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  });

  it.each([
    ['0 turns the per-caller limit off', ['gateway.callerRateLimit.perSecond=0'], []],
    [
      'a fractional rate without a burst leaves the burst to the gateway (at least 1)',
      ['gateway.callerRateLimit.perSecond=0.5', 'gateway.callerRateLimit.burst=null'],
      ['--caller-rate=0.5'],
    ],
  ])('callerRateLimit: %s', async (_name, sets, expected) => {
    const gatewaySet = VALUE_SETS.find((v) => v.name === 'gateway')!;
    const out = await template(
      gatewaySet,
      sets.flatMap((x) => ['--set', x]),
    );
    expect(out.code, out.stderr).toBe(0);
    const args =
      find<V1Deployment>(parseManifests(out.stdout), 'Deployment', '-gateway').spec?.template.spec
        ?.containers[0]?.args ?? [];
    expect(args.filter((a) => a.startsWith('--caller-'))).toEqual(expected);
  });

  it('is off by default: no gateway object, no --gateway-service-account', () => {
    expect(all('default').filter((o) => o.metadata.name.endsWith('-gateway'))).toEqual([]);
    const args =
      find<V1Deployment>(all('default'), 'Deployment').spec?.template.spec?.containers[0]?.args ?? [];
    expect(args.some((a) => a.startsWith('--gateway-service-account'))).toBe(false);
  });

  it('refuses to render without a TLS Secret, saying which value to set', async () => {
    const out = await template(VALUE_SETS[0]!, ['--set', 'gateway.enabled=true']);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('gateway.tls.secretName: name the kubernetes.io/tls Secret');
  });

  it('the gateway command accepts every flag the chart passes', async () => {
    const help = await runTsx(['cli/warden.ts', 'gateway', '--help']);
    expect(help.code, help.stderr).toBe(0);
    const known = new Set([...help.stdout.matchAll(/^\s+(--[a-z0-9-]+)/gm)].map((m) => m[1]));
    const args =
      find<V1Deployment>(all('gateway'), 'Deployment', '-gateway').spec?.template.spec?.containers[0]?.args ??
      [];
    const flags = args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]);
    expect(flags.filter((f) => !known.has(f))).toEqual([]);
  }, 120_000);
});

describe('the controller accepts what the chart passes', () => {
  it('every flag of the default value sets is an option of `warden controller`', async () => {
    const help = await runTsx(['cli/warden.ts', 'controller', '--help']);
    expect(help.code, help.stderr).toBe(0);
    const known = new Set([...help.stdout.matchAll(/^\s+(--[a-z0-9-]+)/gm)].map((m) => m[1]));
    for (const set of [
      'default',
      // cert-manager mode passes --tls-cert-dir and an empty --webhook-configuration.
      'certmanager',
      'certmanager-issuer',
      'no-networkpolicy',
      'servicemonitor',
      'all-namespaces-secrets',
      'hardened',
      'gateway',
    ]) {
      const args =
        find<V1Deployment>(all(set), 'Deployment', '-controller').spec?.template.spec?.containers[0]?.args ??
        [];
      const flags = args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]);
      expect(
        flags.filter((f) => !known.has(f)),
        `${set}: flags unknown to warden controller`,
      ).toEqual([]);
    }
  }, 120_000);
});

describe('values that differ from the controller defaults become flags', () => {
  it('broker resources, pull policy, audit retention, TLS Secret name', async () => {
    const [defaults] = VALUE_SETS;
    const out = await template(defaults!, [
      '--set',
      'broker.resources.limits.memory=256Mi',
      '--set',
      'broker.resources.requests.cpu=50m',
      '--set',
      'broker.image.pullPolicy=Always',
      '--set',
      'audit.retention=2160h',
      '--set',
      'audit.maxRecordsPerAgent=1000',
      '--set',
      'audit.maxRecordsPerNamespace=20000',
      '--set',
      'audit.otlpEndpoint=http://otel-collector.observability:4318/v1/logs',
      '--set',
      'certificates.secretName=custom-tls',
      '--set',
      'controller.leaderElection.enabled=false',
      '--set',
      'controller.replicas=1',
    ]);
    expect(out.stderr).toBe('');
    const args = find<V1Deployment>(parseManifests(out.stdout), 'Deployment').spec?.template.spec
      ?.containers[0]?.args;
    expect(args).toEqual(
      expect.arrayContaining([
        '--broker-memory-limit=256Mi',
        '--broker-cpu-request=50m',
        '--broker-image-pull-policy=Always',
        '--audit-retention=2160h',
        '--audit-max-records-per-agent=1000',
        '--audit-max-records-per-namespace=20000',
        '--audit-otlp-endpoint=http://otel-collector.observability:4318/v1/logs',
        '--tls-secret=custom-tls',
        '--no-leader-election',
      ]),
    );
    expect(args?.some((a) => a.startsWith('--broker-memory-request'))).toBe(false);
  });

  it('record limits of 0 and an empty OTLP endpoint (the defaults) render no flag', async () => {
    const [defaults] = VALUE_SETS;
    const out = await template(defaults!, []);
    const args = find<V1Deployment>(parseManifests(out.stdout), 'Deployment').spec?.template.spec
      ?.containers[0]?.args;
    expect(args?.some((a) => a.startsWith('--audit-max-records'))).toBe(false);
    expect(args?.some((a) => a.startsWith('--audit-otlp-endpoint'))).toBe(false);
  });
});

describe('an identity provider behind a private CA (controller.idpCa)', () => {
  it('mounts the ConfigMap key read-only and passes it as --idp-ca', async () => {
    const [defaults] = VALUE_SETS;
    const out = await template(defaults!, [
      '--set',
      'controller.idpCa.configMap=corp-idp-ca',
      '--set',
      'controller.idpCa.key=bundle.pem',
    ]);
    expect(out.stderr).toBe('');
    const pod = find<V1Deployment>(parseManifests(out.stdout), 'Deployment').spec?.template.spec;
    expect(pod?.containers[0]?.args).toContain('--idp-ca=/etc/warden/idp-ca/ca.crt');
    expect(pod?.containers[0]?.volumeMounts).toContainEqual({
      name: 'idp-ca',
      mountPath: '/etc/warden/idp-ca',
      readOnly: true,
    });
    // Not optional: without the ConfigMap the pod does not start (fail closed, visibly).
    expect(plain(pod?.volumes?.find((v) => v.name === 'idp-ca'))).toEqual({
      name: 'idp-ca',
      configMap: { name: 'corp-idp-ca', items: [{ key: 'bundle.pem', path: 'ca.crt' }] },
    });
  });

  it('renders values without controller.idpCa (a --reuse-values upgrade keeps the old chart values)', async () => {
    const [defaults] = VALUE_SETS;
    const out = await template(defaults!, ['--set', 'controller.idpCa=null']);
    expect(out.code, out.stderr).toBe(0);
    const pod = find<V1Deployment>(parseManifests(out.stdout), 'Deployment').spec?.template.spec;
    expect(pod?.volumes?.some((v) => v.name === 'idp-ca')).toBe(false);
  });

  it('renders values without broker.auditSpool (a --reuse-values upgrade from before the spool)', async () => {
    const [defaults] = VALUE_SETS;
    const out = await template(defaults!, ['--set', 'broker.auditSpool=null']);
    expect(out.code, out.stderr).toBe(0);
    const args = find<V1Deployment>(parseManifests(out.stdout), 'Deployment').spec?.template.spec
      ?.containers[0]?.args;
    expect(args?.some((a) => a.startsWith('--broker-audit-spool-max-bytes'))).toBe(false);
  });

  it('renders neither the flag nor the volume by default', () => {
    const pod = find<V1Deployment>(all('default'), 'Deployment').spec?.template.spec;
    expect(pod?.containers[0]?.args?.some((a) => a.startsWith('--idp-ca'))).toBe(false);
    expect(pod?.volumes?.some((v) => v.name === 'idp-ca')).toBe(false);
  });
});

describe('contradictory values fail rendering with a message naming the option', () => {
  it.each([
    [
      'an unknown certificate source',
      ['--set', 'certificates.source=vault'],
      'certificates.source: "vault" is not supported',
    ],
    [
      'a webhook timeout over 5 s',
      ['--set', 'webhook.timeoutSeconds=10'],
      'webhook.timeoutSeconds: 10 is out of range',
    ],
    ['an audit batch over 500', ['--set', 'audit.batchSize=1000'], 'audit.batchSize: 1000 is out of range'],
    [
      'a negative per-agent record limit',
      ['--set', 'audit.maxRecordsPerAgent=-5'],
      'audit.maxRecordsPerAgent: -5 is not a whole number of records',
    ],
    [
      'a fractional per-namespace record limit',
      ['--set', 'audit.maxRecordsPerNamespace=2.5'],
      'audit.maxRecordsPerNamespace: 2.5 is not a whole number of records',
    ],
    [
      'two replicas without leader election',
      ['--set', 'controller.leaderElection.enabled=false'],
      'controller.leaderElection.enabled: must be true',
    ],
    [
      'an unknown anti-affinity mode',
      ['--set', 'controller.podAntiAffinity=always'],
      'controller.podAntiAffinity',
    ],
    [
      'an existing ServiceAccount without a name',
      ['--set', 'serviceAccount.create=false'],
      'serviceAccount.name is required',
    ],
  ])('%s', async (_name, args, message) => {
    const [defaults] = VALUE_SETS;
    const out = await template(defaults!, args);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain(message);
  });
});

describe('upgrades keep the webhook trusted (selfManaged)', () => {
  it('carries the live caBundle over when rendering against the cluster', async () => {
    const set: ValueSet = { name: 'upgrade', files: [] };
    const name = `${releaseOf(set)}-warden-pod-injector`;
    const caBundle = Buffer.from(
      '-----BEGIN CERTIFICATE-----\nfixture\n-----END CERTIFICATE-----\n',
    ).toString('base64');
    // What the controller would have patched in. The fixture can never be called:
    // it selects no namespace and fails open.
    const live = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name },
      webhooks: [
        {
          name: 'inject.pods.warden.dev',
          admissionReviewVersions: ['v1'],
          clientConfig: { url: 'https://127.0.0.1:1/mutate', caBundle },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          namespaceSelector: { matchLabels: { 'warden.dev/chart-test': 'never-matches' } },
          failurePolicy: 'Ignore',
          sideEffects: 'None',
        },
      ],
    };
    const created = await kubectl(['create', '-f', '-'], { input: JSON.stringify(live) });
    expect(created.stderr).toBe('');
    try {
      const out = await helmAt(
        helm,
        home,
        ['template', releaseOf(set), CHART_DIR, '--namespace', namespace, '--dry-run=server'],
        kubeconfigPath(),
      );
      expect(out.stderr).toBe('');
      const mwc = find<V1MutatingWebhookConfiguration>(
        parseManifests(out.stdout),
        'MutatingWebhookConfiguration',
      );
      expect(mwc.webhooks?.[0]?.clientConfig.caBundle).toBe(caBundle);
    } finally {
      await kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
    }
  });
});

describe('NOTES.txt', () => {
  it.each([
    [
      'default',
      [],
      [
        'rollout status deployment/w-notes-warden-controller',
        'self-managed by the controller',
        'rbac.agentNamespaces is empty',
      ],
    ],
    [
      'certManager, agent namespaces listed, no NetworkPolicy',
      [
        '--set',
        'certificates.source=certManager',
        '--set',
        'rbac.agentNamespaces={agents}',
        '--set',
        'networkPolicy.enabled=false',
      ],
      ['cert-manager Certificate', 'WARNING: networkPolicy.enabled is false'],
    ],
  ])('renders for %s', async (_name, args, expected) => {
    const out = await helmAt(
      helm,
      home,
      ['install', 'w-notes', CHART_DIR, '--namespace', namespace, '--dry-run=server', ...args],
      kubeconfigPath(),
    );
    expect(out.stderr).toBe('');
    const notes = out.stdout.slice(out.stdout.indexOf('NOTES:'));
    for (const text of expected) expect(notes).toContain(text);
  });
});

describe('the chart ships the CRDs from crds/ unchanged', () => {
  it.each(['agentidentity.yaml', 'accesspolicy.yaml', 'credentialprovider.yaml', 'auditrecord.yaml'])(
    '%s',
    (file) => {
      const source = readFileSync(join(CHART_DIR, '..', '..', 'crds', file), 'utf8');
      const copy = readFileSync(join(CHART_DIR, 'crds', file), 'utf8');
      expect(copy).toBe(source);
    },
  );
});
