/**
 * The real-node story's set-up: a cluster (cluster.ts), the images (images.ts), PostgreSQL
 * on the node, `helm install` of the chart, the sample "Jira" MCP server as a Deployment
 * behind a Service, and the agent's Warden objects. Shared by the e2e suite and `make demo`.
 */
import pg from 'pg';
import {
  ANNOTATION_AGENT,
  ANNOTATION_INJECT,
  GATEWAY_AUDIENCE,
  GROUP,
  VERSION,
} from '../../core/constants.js';
import { createCertificateAuthority } from '../../core/x509.js';
import { useBuiltKubectl } from '../controlplane/controlplane.js';
import { eventually } from '../eventually.js';
import { type KubectlResult, kubectlAt } from '../harness/kubectl.js';
import { createWardenAdmin } from '../harness/postgres.js';
import { type Cluster, startCluster } from './cluster.js';
import { buildClusterImages, type ClusterImages } from './images.js';
import { installWarden, RELEASE, WARDEN_NAMESPACE } from './install.js';
import { type NodeOidc, startNodeOidc } from './oidc.js';
import { type NodePostgres, startNodePostgres } from './postgres.js';

export const AGENT_NS = 'support';
export const TOOLS_NS = 'tools';
export const AGENT = 'support-bot';
/** The ConfigMap holding the node OIDC provider's CA (the chart's controller.idpCa). */
export const IDP_CA_CONFIGMAP = 'warden-idp-ca';
/** The authority as brokers and targets reach it (the chart's default issuer). */
export const AUTHORITY = `https://${RELEASE}.${WARDEN_NAMESPACE}.svc:8443`;

/** The shared gateway's Service (release `warden`: `<fullname>-gateway`) and its TLS Secret. */
export const GATEWAY_SERVICE = `${RELEASE}-gateway`;
export const GATEWAY_TLS_SECRET = 'warden-gateway-tls';
/** The ConfigMap in the agent namespace holding the CA the gateway's certificate chains to. */
export const GATEWAY_CA_CONFIGMAP = 'warden-gateway-ca';
/** The agent without a sidecar that calls the gateway (its own AgentIdentity and policy). */
export const GATEWAY_AGENT = 'gateway-bot';

export interface StoryOptions {
  /**
   * Install the chart with gateway.enabled (a TLS Secret for the gateway Service's names is made
   * first, its CA put in a ConfigMap in the agent namespace) and declare GATEWAY_AGENT.
   */
  readonly gateway?: boolean;
}

export interface Story {
  cluster: Cluster;
  images: ClusterImages;
  pg: NodePostgres;
  /** The identity provider the agent's humans sign in to (on the node, outside the cluster). */
  oidc: NodeOidc;
  k(args: string[], input?: string): Promise<KubectlResult>;
  /** kubectl that throws with stderr on a non-zero exit; returns stdout. */
  kk(args: string[], input?: string): Promise<string>;
  timings: Record<string, number>;
  /**
   * With the gateway option: writes a new serving certificate (same CA, same names, a new key)
   * into the gateway's TLS Secret, as cert-manager's renewal would; returns it.
   */
  renewGatewayTls?: () => Promise<{ certPem: string; keyPem: string }>;
  stop(): Promise<void>;
}

const json = (o: unknown) => JSON.stringify(o);

/** The Warden objects of the story: the agent, its policies, the Jira and PostgreSQL providers. */
export function storyManifests(o: {
  dbAdminPassword: string;
  workloadsImage: string;
  /** The identity provider whose users the agent acts for. */
  oidc: Pick<NodeOidc, 'issuer' | 'clientId'>;
}): string {
  const doc = (kind: string, name: string, spec: unknown) =>
    json({ apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec });
  const repository = o.workloadsImage.slice(0, o.workloadsImage.lastIndexOf(':'));
  return [
    json({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: AGENT } }),
    doc('AgentIdentity', AGENT, {
      serviceAccountName: AGENT,
      attestation: { requiredPodLabels: { app: AGENT }, allowedImages: [`${repository}@sha256:*`] },
      userContext: {
        mode: 'Optional',
        trustedIssuers: [
          {
            issuer: o.oidc.issuer,
            audiences: [o.oidc.clientId],
            groupsClaim: 'groups',
            departmentClaim: 'department',
          },
        ],
      },
    }),
    doc('CredentialProvider', 'jira', {
      target: { url: `http://jira-mcp.${TOOLS_NS}.svc.cluster.local:8080/mcp`, protocol: 'MCP' },
      type: 'JWT',
      jwt: { audience: 'jira-mcp', defaultTTL: '5m' },
      inject: { header: 'Authorization', format: 'Bearer {token}' },
    }),
    doc('AccessPolicy', 'support-read', {
      agentSelector: { names: [AGENT] },
      rules: [{ targets: ['jira'], tools: ['jira.get_*'] }, { targets: ['orders-db'] }],
    }),
    // Filing an issue needs a human of the support group behind the agent.
    doc('AccessPolicy', 'support-create', {
      agentSelector: { names: [AGENT] },
      rules: [
        {
          targets: ['jira'],
          tools: ['jira.create_issue'],
          when: [{ name: 'support-staff', expression: "user.present && 'support' in user.groups" }],
        },
      ],
    }),
    doc('AccessPolicy', 'deny-deletes', {
      effect: 'Deny',
      rules: [{ targets: ['*'], tools: ['*.delete_*'] }],
    }),
    json({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'orders-db-admin' },
      stringData: { username: 'warden_admin', password: o.dbAdminPassword },
    }),
    doc('CredentialProvider', 'orders-db', {
      type: 'PostgreSQL',
      target: { url: 'postgres://10.244.0.1:5432/postgres', protocol: 'PostgreSQL' },
      postgresql: {
        host: '10.244.0.1',
        port: 5432,
        database: 'postgres',
        adminSecretRef: { name: 'orders-db-admin' },
        grantRoles: ['orders_read'],
        roleTTL: '10m',
      },
    }),
  ].join('\n---\n');
}

/** The agent Deployment: annotated, its image pinned by digest, no API token mounted. */
export function agentDeployment(image: string, replicas = 1): string {
  return json({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: AGENT },
    spec: {
      replicas,
      selector: { matchLabels: { app: AGENT } },
      template: {
        metadata: { labels: { app: AGENT }, annotations: { [`${GROUP}/agent`]: AGENT } },
        spec: {
          serviceAccountName: AGENT,
          // The agent needs no Kubernetes API access; its only credentials come via the broker.
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 2,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 },
          containers: [
            {
              name: 'agent',
              image,
              imagePullPolicy: 'IfNotPresent',
              args: ['/app/e2e/cluster/workloads/agent.js', 'serve'],
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  });
}

/** The Jira MCP server: a Deployment + Service in the tools namespace, trusting the authority's CA. */
function jiraManifests(image: string): string {
  return [
    json({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'jira-mcp', namespace: TOOLS_NS },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'jira-mcp' } },
        template: {
          metadata: { labels: { app: 'jira-mcp' } },
          spec: {
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 2,
            containers: [
              {
                name: 'jira',
                image,
                args: ['/app/e2e/cluster/workloads/jira-mcp.js'],
                env: [
                  { name: 'ISSUER', value: AUTHORITY },
                  { name: 'JWKS_URL', value: `${AUTHORITY}/.well-known/jwks.json` },
                  { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/warden-ca/ca.crt' },
                ],
                ports: [{ name: 'mcp', containerPort: 8080 }],
                readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
                volumeMounts: [{ name: 'ca', mountPath: '/etc/warden-ca', readOnly: true }],
              },
            ],
            volumes: [{ name: 'ca', configMap: { name: 'warden-authority-ca' } }],
          },
        },
      },
    }),
    json({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'jira-mcp', namespace: TOOLS_NS },
      spec: { selector: { app: 'jira-mcp' }, ports: [{ port: 8080, targetPort: 8080 }] },
    }),
  ].join('\n---\n');
}

/**
 * A throwaway CA for the gateway's Service names: `issue()` makes a serving certificate (each call
 * a new key), `caPem` is what agents trust.
 */
async function gatewayTls(): Promise<{
  issue(): Promise<{ certPem: string; keyPem: string }>;
  caPem: string;
}> {
  const ca = await createCertificateAuthority('warden-gateway-e2e-ca', 24 * 3600_000);
  const names = [
    GATEWAY_SERVICE,
    `${GATEWAY_SERVICE}.${WARDEN_NAMESPACE}`,
    `${GATEWAY_SERVICE}.${WARDEN_NAMESPACE}.svc`,
    `${GATEWAY_SERVICE}.${WARDEN_NAMESPACE}.svc.cluster.local`,
  ];
  return {
    caPem: ca.certPem,
    issue: async () => {
      const leaf = await ca.issue({
        commonName: names[2]!,
        dnsNames: names,
        validityMs: 24 * 3600_000,
        usage: 'server',
      });
      return { certPem: leaf.certPem, keyPem: leaf.keyPem };
    },
  };
}

/** The gateway's TLS Secret holding this pair (kubectl apply). */
const gatewayTlsSecret = (pair: { certPem: string; keyPem: string }) =>
  json({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: GATEWAY_TLS_SECRET, namespace: WARDEN_NAMESPACE },
    stringData: { 'tls.crt': pair.certPem, 'tls.key': pair.keyPem },
  });

/** The agent without a sidecar: its service account, AgentIdentity and a read policy. */
function gatewayAgentManifests(): string {
  const doc = (kind: string, name: string, spec: unknown) =>
    json({ apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec });
  return [
    json({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: GATEWAY_AGENT } }),
    doc('AgentIdentity', GATEWAY_AGENT, { serviceAccountName: GATEWAY_AGENT }),
    doc('AccessPolicy', `${GATEWAY_AGENT}-read`, {
      agentSelector: { names: [GATEWAY_AGENT] },
      rules: [{ targets: ['jira'], tools: ['jira.get_*'] }, { targets: ['orders-db'] }],
    }),
  ].join('\n---\n');
}

/**
 * The pod of GATEWAY_AGENT: opted out of injection, no sidecar; the kubelet projects its token for
 * the gateway's audience, and it trusts the gateway's CA. It reaches the gateway Service only.
 */
export function gatewayAgentPod(image: string): string {
  const gatewayHost = `${GATEWAY_SERVICE}.${WARDEN_NAMESPACE}.svc`;
  return json({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: GATEWAY_AGENT,
      labels: { app: GATEWAY_AGENT },
      annotations: { [ANNOTATION_AGENT]: GATEWAY_AGENT, [ANNOTATION_INJECT]: 'false' },
    },
    spec: {
      serviceAccountName: GATEWAY_AGENT,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 2,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 },
      containers: [
        {
          name: 'agent',
          image,
          imagePullPolicy: 'IfNotPresent',
          args: ['/app/e2e/cluster/workloads/agent.js', 'serve'],
          env: [
            { name: 'WARDEN_GATEWAY_URL', value: `https://${gatewayHost}:443` },
            { name: 'WARDEN_GATEWAY_TOKEN_FILE', value: '/var/run/secrets/warden.dev/gateway/token' },
            { name: 'WARDEN_GATEWAY_PG', value: `${gatewayHost}:5432` },
            { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/warden-gateway/ca.crt' },
          ],
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          },
          volumeMounts: [
            { name: 'gateway-token', mountPath: '/var/run/secrets/warden.dev/gateway', readOnly: true },
            { name: 'gateway-ca', mountPath: '/etc/warden-gateway', readOnly: true },
          ],
        },
      ],
      volumes: [
        {
          name: 'gateway-token',
          projected: {
            sources: [
              { serviceAccountToken: { audience: GATEWAY_AUDIENCE, expirationSeconds: 3600, path: 'token' } },
            ],
          },
        },
        { name: 'gateway-ca', configMap: { name: GATEWAY_CA_CONFIGMAP } },
      ],
    },
  });
}

export async function startStory(
  log: (line: string) => void = () => {},
  opts: StoryOptions = {},
): Promise<Story> {
  const timings: Record<string, number> = {};
  const t = () => Date.now();
  let t0 = t();
  const cluster = await startCluster({ log });
  timings.nodeReadySeconds = cluster.readyMs / 1000;
  timings.clusterStartSeconds = (t() - t0) / 1000;
  const stops: Array<() => Promise<unknown>> = [() => cluster.stop()];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    useBuiltKubectl(cluster.binaries);
    const k = (args: string[], input?: string) =>
      kubectlAt(cluster.kubeconfigPath, args, input === undefined ? {} : { input });
    const kk = async (args: string[], input?: string) => {
      const r = await k(args, input);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
      return r.stdout;
    };
    t0 = t();
    const images = await buildClusterImages(cluster, log);
    timings.imagesSeconds = (t() - t0) / 1000;

    const pgServer = await startNodePostgres(cluster);
    const su = new pg.Client({ connectionString: pgServer.connectionString });
    await su.connect();
    const dbAdminPassword = `e2e-${Math.random().toString(36).slice(2)}`;
    await createWardenAdmin(su, { password: dbAdminPassword, grantRoles: ['orders_read'] });
    for (const q of [
      'CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL)',
      "INSERT INTO orders VALUES (1, 'keyboard'), (2, 'monitor'), (3, 'cable')",
      'GRANT SELECT ON orders TO orders_read',
    ]) {
      await su.query(q);
    }
    await su.end();

    // The humans' identity provider runs on the node, outside the cluster; the chart is told
    // its CA (controller.idpCa) so the authority verifies their tokens over TLS.
    const oidc = await startNodeOidc(cluster);
    stops.push(() => oidc.stop());
    for (const ns of [AGENT_NS, TOOLS_NS, WARDEN_NAMESPACE]) await kk(['create', 'namespace', ns]);
    await kk([
      'create',
      'configmap',
      IDP_CA_CONFIGMAP,
      '-n',
      WARDEN_NAMESPACE,
      `--from-literal=ca.crt=${oidc.caPem}`,
    ]);
    let renewGatewayTls: Story['renewGatewayTls'];
    if (opts.gateway) {
      const tls = await gatewayTls();
      await kk(['apply', '-f', '-'], gatewayTlsSecret(await tls.issue()));
      renewGatewayTls = async () => {
        const pair = await tls.issue();
        await kk(['apply', '-f', '-'], gatewayTlsSecret(pair));
        return pair;
      };
      await kk([
        'create',
        'configmap',
        GATEWAY_CA_CONFIGMAP,
        '-n',
        AGENT_NS,
        `--from-literal=ca.crt=${tls.caPem}`,
      ]);
    }
    t0 = t();
    await installWarden({
      kubeconfigPath: cluster.kubeconfigPath,
      image: images.warden,
      agentNamespaces: [AGENT_NS],
      set: [
        `controller.idpCa.configMap=${IDP_CA_CONFIGMAP}`,
        ...(opts.gateway ? ['gateway.enabled=true', `gateway.tls.secretName=${GATEWAY_TLS_SECRET}`] : []),
      ],
      log,
    });
    timings.helmInstallSeconds = (t() - t0) / 1000;

    // The Jira server verifies Warden JWTs against the authority's JWKS over TLS: it trusts
    // the CA the controller bootstrapped (public data, copied into its namespace).
    const ca = await eventually('the webhook TLS Secret', async () => {
      const out = await kk([
        'get',
        'secret',
        'warden-webhook-tls',
        '-n',
        WARDEN_NAMESPACE,
        '-o',
        'jsonpath={.data.ca\\.crt}',
      ]);
      return out ? Buffer.from(out, 'base64').toString() : undefined;
    });
    await kk(['create', 'configmap', 'warden-authority-ca', '-n', TOOLS_NS, `--from-literal=ca.crt=${ca}`]);
    await kk(
      ['apply', '-f', '-'],
      jiraManifests(images.workloads.reference.replace(/:[^:/]+$/, `@${images.workloads.digest}`)),
    );
    await kk(
      ['apply', '-n', AGENT_NS, '-f', '-'],
      storyManifests({ dbAdminPassword, workloadsImage: images.workloads.reference, oidc }),
    );
    if (opts.gateway) await kk(['apply', '-n', AGENT_NS, '-f', '-'], gatewayAgentManifests());
    await kk(['rollout', 'status', 'deployment/jira-mcp', '-n', TOOLS_NS, '--timeout=120s']);
    return {
      cluster,
      images,
      pg: pgServer,
      oidc,
      k,
      kk,
      timings,
      ...(renewGatewayTls ? { renewGatewayTls } : {}),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
