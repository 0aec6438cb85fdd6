/**
 * Warden as it ships, on a real node: the chart installed with helm, the controller and
 * the webhook as pods, an annotated agent Deployment whose pods get the broker as a native
 * sidecar, the kubelet-projected token, and an agent container (a real MCP client) calling
 * through the broker over the pod's loopback. One cluster for the whole file.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  ANNOTATION_INJECTED,
  BROKER_CONTAINER_NAME,
  BROKER_TOKEN_DIR,
  DEFAULT_BROKER_AUDIENCE,
  GROUP,
  LEADER_LEASE_NAME,
  PLURAL,
  VERSION,
} from '../../core/constants.js';
import { eventually } from '../eventually.js';
import { NODE_NAME } from './cluster.js';
import { upgradeWarden, WARDEN_NAMESPACE } from './install.js';
import {
  AGENT,
  AGENT_NS,
  agentDeployment,
  GATEWAY_AGENT,
  GATEWAY_SERVICE,
  gatewayAgentPod,
  type Story,
  startStory,
} from './story-fixture.js';

const SETUP_TIMEOUT = 25 * 60_000;
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The namespace docs/runbook.md applies samples/ to. */
const SAMPLES_NS = 'agents';
let story: Story;

interface AgentOutput {
  ok: boolean;
  text?: string;
  error?: string;
  reason?: string;
  code?: unknown;
  tools?: string[];
  rows?: Record<string, unknown>[];
  envNames?: string[];
  envWithTokens?: string[];
  secretsDirs?: string[];
  filesScanned?: number;
  filesWithTokens?: string[];
  uid?: number;
  status?: number;
  challenge?: string | null;
  fingerprint256?: string;
}

interface PodJson {
  metadata: {
    name: string;
    uid: string;
    annotations?: Record<string, string>;
    creationTimestamp: string;
    deletionTimestamp?: string;
  };
  spec: {
    initContainers?: Array<{
      name: string;
      restartPolicy?: string;
      volumeMounts?: Array<{ mountPath: string }>;
    }>;
    containers: Array<{
      name: string;
      env?: Array<{ name: string; value?: string }>;
      volumeMounts?: Array<{ mountPath: string }>;
    }>;
    volumes?: Array<{
      name: string;
      projected?: { sources: Array<{ serviceAccountToken?: { audience: string } }> };
    }>;
  };
  status: {
    phase: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime: string }>;
    initContainerStatuses?: Array<{
      name: string;
      started?: boolean;
      containerID?: string;
      restartCount: number;
      imageID: string;
      state: { running?: { startedAt: string } };
    }>;
    containerStatuses?: Array<{
      name: string;
      ready: boolean;
      containerID?: string;
      restartCount: number;
      imageID: string;
      state: { running?: { startedAt: string } };
    }>;
  };
}

async function agentPod(): Promise<PodJson> {
  return eventually(
    'a Ready agent pod',
    async () => {
      const list = JSON.parse(
        await story.kk(['get', 'pods', '-n', AGENT_NS, '-l', `app=${AGENT}`, '-o', 'json']),
      ) as { items: PodJson[] };
      const pods = list.items.filter((p) => !p.metadata.deletionTimestamp);
      const ready = pods.find((p) =>
        p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return pods.length === 1 ? ready : undefined;
    },
    120_000,
  );
}

interface AuditEntry {
  kind: string;
  decision?: string;
  user?: string;
  userIssuer?: string;
  target?: string;
  tool?: string;
  reasons?: Array<{ policy?: string; condition?: string; message?: string }>;
}

/** Every audited entry of the story's agent so far (its AuditRecords' spec.entries). */
async function auditEntries(): Promise<AuditEntry[]> {
  const list = JSON.parse(
    await story.kk(['get', `${PLURAL.AuditRecord}.${GROUP}`, '-n', AGENT_NS, '-o', 'json']),
  ) as { items: Array<{ spec: { agent?: string; entries?: AuditEntry[] } }> };
  return list.items.filter((r) => r.spec.agent === AGENT).flatMap((r) => r.spec.entries ?? []);
}

/** Runs the agent script inside the agent container (kubectl exec) and parses its JSON line. */
async function agent(...args: string[]): Promise<AgentOutput> {
  return agentIn((await agentPod()).metadata.name, args);
}

async function agentIn(podName: string, args: string[]): Promise<AgentOutput> {
  const r = await story.k([
    'exec',
    '-n',
    AGENT_NS,
    podName,
    '-c',
    'agent',
    '--',
    '/nodejs/bin/node',
    '/app/e2e/cluster/workloads/agent.js',
    ...args,
  ]);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as AgentOutput;
  } catch {
    throw new Error(`agent ${args.join(' ')}: no JSON output (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
}

beforeAll(async () => {
  story = await startStory((l) => process.stderr.write(`[cluster] ${l}\n`), { gateway: true });
  const image = story.images.workloads.reference.replace(/:[^:/]+$/, `@${story.images.workloads.digest}`);
  await story.kk(['apply', '-n', AGENT_NS, '-f', '-'], agentDeployment(image));
  await story.kk(['apply', '-n', AGENT_NS, '-f', '-'], gatewayAgentPod(image));
}, SETUP_TIMEOUT);

afterAll(async () => {
  process.stderr.write(
    `[cluster] timings ${JSON.stringify(story?.timings)} memory ${JSON.stringify(story?.cluster.memory())} pods ${story?.cluster.podsMemory()}\n`,
  );
  await story?.stop();
}, 120_000);

describe('Warden installed by helm on a real node', { timeout: 300_000 }, () => {
  it('runs the controller Deployment: 2 Ready replicas from the pushed image digest, one leader', async () => {
    const dep = JSON.parse(
      await story.kk(['get', 'deployment', 'warden-controller', '-n', WARDEN_NAMESPACE, '-o', 'json']),
    ) as {
      status: { readyReplicas?: number };
    };
    expect(dep.status.readyReplicas).toBe(2);
    const pods = JSON.parse(await story.kk(['get', 'pods', '-n', WARDEN_NAMESPACE, '-o', 'json'])) as {
      items: PodJson[];
    };
    for (const p of pods.items) {
      expect(p.status.containerStatuses?.[0]?.imageID).toContain(story.images.warden.digest);
    }
    const holder = await story.kk([
      'get',
      'lease',
      LEADER_LEASE_NAME,
      '-n',
      WARDEN_NAMESPACE,
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ]);
    expect(pods.items.map((p) => p.metadata.name)).toContain(holder);
  });

  it('bootstraps the webhook TLS: the caBundle of the MutatingWebhookConfiguration is the Secret CA', async () => {
    const secretCa = await story.kk([
      'get',
      'secret',
      'warden-webhook-tls',
      '-n',
      WARDEN_NAMESPACE,
      '-o',
      'jsonpath={.data.ca\\.crt}',
    ]);
    const bundle = await eventually('the caBundle patched', async () => {
      const b = await story.kk([
        'get',
        'mutatingwebhookconfiguration',
        '-o',
        'jsonpath={.items[0].webhooks[0].clientConfig.caBundle}',
      ]);
      return b || undefined;
    });
    expect(Buffer.from(bundle, 'base64').toString()).toContain(
      Buffer.from(secretCa, 'base64').toString().trim(),
    );
  });

  it('takes samples/ as docs/runbook.md applies them: every Warden object Ready', async () => {
    // What samples/ declares, read from the files themselves (kubectl apply -f <dir> reads
    // .yaml, .yml and .json): the test follows the samples as they change.
    const declared = readdirSync(join(REPO, 'samples'))
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .flatMap((f) =>
        parseAllDocuments(readFileSync(join(REPO, 'samples', f), 'utf8')).map(
          (d) => d.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string } },
        ),
      )
      .filter((o) => o.apiVersion === `${GROUP}/${VERSION}`)
      .map((o) => `${o.kind}/${o.metadata?.name}`)
      .sort();
    expect(declared.length).toBeGreaterThanOrEqual(3);
    const caBundle = () =>
      story.kk([
        'get',
        'mutatingwebhookconfiguration',
        '-o',
        'jsonpath={.items[0].webhooks[0].clientConfig.caBundle}',
      ]);
    const bundleBefore = await caBundle();

    // docs/runbook.md: create the namespace, let Warden read provider Secrets there, apply.
    await story.kk(['create', 'namespace', SAMPLES_NS]);
    await upgradeWarden({
      kubeconfigPath: story.cluster.kubeconfigPath,
      set: [`rbac.agentNamespaces={${AGENT_NS},${SAMPLES_NS}}`],
    });
    // The upgrade renders the webhook against the cluster: the bootstrapped CA stays trusted.
    expect(await caBundle()).toBe(bundleBefore);
    // docs/runbook.md: right after an install or API server restart an AgentIdentity write can
    // answer 503 'Resource kind … not found' for a few seconds; the documented answer is to apply again.
    const applied = await eventually(
      'kubectl apply -f samples/',
      async () => {
        const r = await story.k(['apply', '-n', SAMPLES_NS, '-f', join(REPO, 'samples')]);
        if (r.code !== 0 && /ServiceUnavailable.*not found/.test(r.stderr)) return undefined;
        return r;
      },
      30_000,
      1000,
    );
    expect(applied.code, applied.stderr).toBe(0);

    interface WardenObject {
      kind: string;
      metadata: { name: string };
      status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
    }
    const list = async () =>
      (
        JSON.parse(
          await story.kk([
            'get',
            `${PLURAL.AgentIdentity},${PLURAL.AccessPolicy},${PLURAL.CredentialProvider}`,
            '-n',
            SAMPLES_NS,
            '-o',
            'json',
          ]),
        ) as { items: WardenObject[] }
      ).items;
    const readyOf = (o: WardenObject) => o.status?.conditions?.find((c) => c.type === 'Ready');
    let last: WardenObject[] = [];
    await eventually(
      'every sample object Ready',
      async () => {
        last = await list();
        return last.length === declared.length && last.every((o) => readyOf(o)?.status === 'True')
          ? true
          : undefined;
      },
      120_000,
      1000,
    ).catch((err: Error) => {
      const states = last.map((o) => `${o.kind}/${o.metadata.name}: ${JSON.stringify(readyOf(o))}`);
      throw new Error(`${err.message}\n${states.join('\n')}`);
    });
    expect(last.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(declared);
    // The README's `kubectl get warden` lists them all (the category holds the three kinds).
    const table = await story.kk(['get', 'warden', '-n', SAMPLES_NS]);
    for (const d of declared) expect(table).toContain(d.split('/')[1]);
  });
});

describe('an annotated agent Deployment on a real node', { timeout: 300_000 }, () => {
  it('gets the broker as a native sidecar: started and probed before the agent container', async () => {
    const pod = await agentPod();
    expect(pod.metadata.annotations?.[ANNOTATION_INJECTED]).toBeTruthy();
    const sidecar = pod.spec.initContainers?.find((c) => c.name === BROKER_CONTAINER_NAME);
    expect(sidecar?.restartPolicy).toBe('Always');
    const broker = pod.status.initContainerStatuses?.find((c) => c.name === BROKER_CONTAINER_NAME);
    const main = pod.status.containerStatuses?.find((c) => c.name === 'agent');
    expect(broker?.started).toBe(true);
    expect(broker?.imageID).toContain(story.images.warden.digest);
    const brokerStart = Date.parse(broker?.state.running?.startedAt ?? '');
    const agentStart = Date.parse(main?.state.running?.startedAt ?? '');
    expect(brokerStart).toBeLessThanOrEqual(agentStart);
    // Reported, not asserted: admission → agent container running (1 s resolution), vs a plain pod.
    story.timings.injectedPodStartSeconds = (agentStart - Date.parse(pod.metadata.creationTimestamp)) / 1000;
    const plain = JSON.parse(await story.kk(['get', 'pods', '-n', 'tools', '-o', 'json'])) as {
      items: PodJson[];
    };
    const p = plain.items[0];
    const plainStart = Date.parse(p?.status.containerStatuses?.[0]?.state.running?.startedAt ?? '');
    story.timings.plainPodStartSeconds =
      (plainStart - Date.parse(p?.metadata.creationTimestamp ?? '')) / 1000;
  });

  it('projects the broker-audience token into the broker container only', async () => {
    const pod = await agentPod();
    const vol = pod.spec.volumes?.find((v) =>
      v.projected?.sources.some((s) => s.serviceAccountToken?.audience === DEFAULT_BROKER_AUDIENCE),
    );
    expect(vol).toBeDefined();
    const sidecar = pod.spec.initContainers?.find((c) => c.name === BROKER_CONTAINER_NAME);
    expect(sidecar?.volumeMounts?.map((m) => m.mountPath)).toContain(BROKER_TOKEN_DIR);
    const agentC = pod.spec.containers.find((c) => c.name === 'agent');
    expect(agentC?.volumeMounts ?? []).toEqual([]);
    // The broker attested with that token: the AgentIdentity counts it as a live broker session.
    const logs = await story.kk(['logs', '-n', AGENT_NS, pod.metadata.name, '-c', BROKER_CONTAINER_NAME]);
    expect(logs).toMatch(/attest/i);
  });

  it('lets the agent container list and call allowed tools over 127.0.0.1', async () => {
    // The first call through a fresh pod also warms the sample server's JWKS cache (jose fetches the
    // authority's keys with a 5 s timeout, which a loaded 2-core machine can miss): retried until it
    // answers (it took 43 s once at load average 29); every later call must succeed at once.
    const tools = await eventually(
      'the first tools/list through the broker',
      async () => {
        const r = await agent('tools', 'jira');
        return r.ok ? r : undefined;
      },
      120_000,
      2000,
    );
    expect(tools.tools).toContain('jira.get_issue');
    const got = await agent('call', 'jira', 'jira.get_issue', '{"key":"SUP-7"}');
    expect(got.ok, JSON.stringify(got)).toBe(true);
    expect(got.text).toMatch(/SUP-7: "Printer on fire" \(open\) — served to /);
  });

  it('denies a tool a Deny policy covers, with the reason', async () => {
    const denied = await agent('call', 'jira', 'jira.delete_issue', '{"key":"SUP-7"}');
    expect(denied.ok).toBe(false);
    expect(`${denied.reason} ${denied.error}`).toMatch(/deny-deletes|Denied|denied/);
  });

  it('acts for a human: the token of a signed-in support engineer lets the agent file an issue', async () => {
    // alice signs in at the identity provider (authorization code + PKCE); the agent forwards
    // her ID token; the authority verifies it against the provider's JWKS over TLS.
    const alice = await story.oidc.idToken({
      sub: 'alice',
      groups: ['support'],
      department: 'customer-care',
    });
    const summary = '{"summary":"Printer on fire"}';
    const alone = await agent('call', 'jira', 'jira.create_issue', summary);
    expect(alone.ok).toBe(false);
    expect(`${alone.reason} ${alone.error}`).toMatch(/support-staff/);
    const filed = await agent('call', 'jira', 'jira.create_issue', summary, alice);
    expect(filed.ok, JSON.stringify(filed)).toBe(true);
    // The Warden JWT the server verified names alice, with the agent as the actor.
    expect(filed.text).toMatch(/created SUP-42 "Printer on fire" — on behalf of alice via /);
    // The trail names her twice, one way: the broker's Decision entry for the call and the
    // authority's Credential entry for the JWT it issued after verifying her token, both by
    // subject with the issuer that vouched for her apart (the broker may have asked for the
    // credential when the MCP session opened, so it is matched by target, not tool).
    const verified = (e: AuditEntry) => e.user === 'alice' && e.userIssuer === story.oidc.issuer;
    let seen: AuditEntry[] = [];
    const entries = await eventually(
      'the audited decision and credential naming alice',
      async () => {
        seen = (await auditEntries()).filter((e) => e.target === 'jira' && e.decision === 'Allow');
        const decided = seen.some((e) => e.kind === 'Decision' && e.tool === 'jira.create_issue');
        const issued = seen.some((e) => e.kind === 'Credential' && verified(e));
        return decided && issued ? seen : undefined;
      },
      60_000,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; allowed jira entries: ${JSON.stringify(seen)}`);
    });
    expect(
      entries.filter((e) => e.kind === 'Decision' && e.tool === 'jira.create_issue').map((e) => e.user),
    ).toEqual(['alice']);
  });

  it('refuses the same call for a human outside the support group', async () => {
    const bob = await story.oidc.idToken({ sub: 'bob', groups: ['sales'] });
    const r = await agent('call', 'jira', 'jira.create_issue', '{"summary":"x"}', bob);
    expect(r.ok).toBe(false);
    expect(`${r.reason} ${r.error}`).toMatch(/support-staff/);
  });

  it('refuses a user token whose claims were rewritten: the authority checks the signature', async () => {
    // bob adds himself to "support" and keeps the provider's signature: the broker's local
    // decision (claims only) would allow, the authority's signature check must not.
    const bob = await story.oidc.idToken({ sub: 'bob', groups: ['sales'] });
    const [header, payload, signature] = bob.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
    const forged = [
      header,
      Buffer.from(JSON.stringify({ ...claims, groups: ['support'] })).toString('base64url'),
      signature,
    ].join('.');
    const r = await agent('call', 'jira', 'jira.create_issue', '{"summary":"x"}', forged);
    expect(r.ok).toBe(false);
    expect(`${r.reason} ${r.error}`).toMatch(/CredentialDenied/);
    expect(r.error).toMatch(/signature/i);
  });

  it('queries PostgreSQL through the broker for a human, who the audit names', async () => {
    const alice = await story.oidc.idToken({ sub: 'alice', groups: ['support'] });
    const r = await agent(
      'sql',
      'orders-db',
      'SELECT count(*)::int AS n FROM orders',
      `-c warden.user_token=${alice}`,
    );
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.rows?.[0]?.n).toBe(3);
    // As for the MCP call: the broker's Decision for the session, the authority's Credential
    // (the temporary role) after verifying her token.
    const entries = await eventually(
      'the audited database decision and credential naming alice',
      async () => {
        const es = (await auditEntries()).filter(
          (e) => e.target === 'orders-db' && e.decision === 'Allow' && e.user?.startsWith('alice'),
        );
        return es.some((e) => e.kind === 'Decision') && es.some((e) => e.kind === 'Credential')
          ? es
          : undefined;
      },
      60_000,
      1000,
    );
    expect(new Set(entries.filter((e) => e.kind === 'Decision').map((e) => e.user))).toEqual(
      new Set(['alice']),
    );
    expect(
      new Set(entries.filter((e) => e.kind === 'Credential').map((e) => `${e.user} (${e.userIssuer})`)),
    ).toEqual(new Set([`alice (${story.oidc.issuer})`]));
  });

  it('queries PostgreSQL through the broker as a temporary role, without a password', async () => {
    const r = await agent('sql', 'orders-db', 'SELECT current_user AS who, count(*)::int AS n FROM orders');
    expect(r.ok).toBe(true);
    expect(r.rows?.[0]?.n).toBe(3);
    expect(String(r.rows?.[0]?.who)).not.toBe('warden_admin');
  });

  it('holds no credential: no token file, no JWT in env or on the filesystem, only broker addresses', async () => {
    const r = await agent('inspect');
    expect(r.ok).toBe(true);
    expect(r.uid).toBe(65532);
    expect(r.secretsDirs).toEqual([]);
    expect(r.envWithTokens).toEqual([]);
    expect(r.filesWithTokens).toEqual([]);
    expect(r.filesScanned).toBeGreaterThan(0);
    expect(r.envNames).toEqual(expect.arrayContaining(['WARDEN_MCP_BASE', 'WARDEN_PG_BASE']));
  });

  it('refuses an agent pod that mounts a broker-audience token into its agent container', async () => {
    const sneaky = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'sneaky-agent',
        labels: { app: AGENT },
        annotations: { [`${GROUP}/agent`]: AGENT },
      },
      spec: {
        serviceAccountName: AGENT,
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'agent',
            image: story.images.workloads.reference.replace(/:[^:/]+$/, `@${story.images.workloads.digest}`),
            volumeMounts: [{ name: 'stolen', mountPath: '/var/run/stolen', readOnly: true }],
          },
        ],
        volumes: [
          {
            name: 'stolen',
            projected: {
              sources: [{ serviceAccountToken: { audience: DEFAULT_BROKER_AUDIENCE, path: 'token' } }],
            },
          },
        ],
      },
    };
    const r = await story.k(['create', '-n', AGENT_NS, '-f', '-'], JSON.stringify(sneaky));
    expect(r.code).not.toBe(0);
    // The API server's wording around the webhook's own message, field path included.
    expect(r.stderr).toContain('admission webhook "inject.pods.warden.dev" denied the request');
    expect(r.stderr).toContain(
      `warden: pod sneaky-agent (agent "${AGENT}") rejected: spec.containers[0].volumeMounts[0]: container "agent" mounts volume "stolen", which projects a service-account token for the Warden broker audience "${DEFAULT_BROKER_AUDIENCE}"; only the injected Warden broker may hold that token: remove the volume and this mount`,
    );
    const get = await story.k(['get', 'pod', 'sneaky-agent', '-n', AGENT_NS]);
    expect(get.code).not.toBe(0);
    expect(get.stderr).toMatch(/NotFound|not found/);
  });

  it('recovers after the leading controller pod is deleted: the standby takes over', async () => {
    const lease = () =>
      story.kk([
        'get',
        'lease',
        LEADER_LEASE_NAME,
        '-n',
        WARDEN_NAMESPACE,
        '-o',
        'jsonpath={.spec.holderIdentity}',
      ]);
    const leader = await lease();
    await story.kk(['delete', 'pod', leader, '-n', WARDEN_NAMESPACE, '--wait=false']);
    const next = await eventually(
      'another replica holding the Lease',
      async () => {
        const h = await lease();
        return h && h !== leader ? h : undefined;
      },
      180_000,
      1000,
    );
    expect(next).not.toBe(leader);
    await story.kk([
      'rollout',
      'status',
      'deployment/warden-controller',
      '-n',
      WARDEN_NAMESPACE,
      '--timeout=180s',
    ]);
    const got = await eventually(
      'a call after the controller came back',
      async () => {
        const r = await agent('call', 'jira', 'jira.get_issue', '{"key":"SUP-8"}');
        return r.ok ? r : undefined;
      },
      120_000,
      1000,
    );
    expect(got.text).toMatch(/SUP-8/);
  });

  it('recovers when the agent pod is deleted: the new pod is injected and calls again', async () => {
    const old = await agentPod();
    await story.kk(['delete', 'pod', '-n', AGENT_NS, old.metadata.name, '--wait=false']);
    const fresh = await eventually(
      'a new Ready agent pod',
      async () => {
        const p = await agentPod();
        return p.metadata.name !== old.metadata.name ? p : undefined;
      },
      120_000,
    );
    expect(fresh.metadata.annotations?.[ANNOTATION_INJECTED]).toBeTruthy();
    expect((await agent('call', 'jira', 'jira.get_issue', '{"key":"SUP-9"}')).ok).toBe(true);
  });

  it('recovers when the kubelet restarts: node NotReady then Ready, the pods keep their containers', async () => {
    const nodeReady = async () =>
      (
        await story.kk([
          'get',
          'node',
          NODE_NAME,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ])
      ).trim();
    // Which containers run, by pod: a restarted kubelet must adopt them, not start new ones.
    const containers = async () => {
      const all = JSON.parse(await story.kk(['get', 'pods', '-A', '-o', 'json'])) as { items: PodJson[] };
      return Object.fromEntries(
        // A pod still terminating from an earlier test may go at any time: not part of the comparison.
        all.items
          .filter((p) => !p.metadata.deletionTimestamp)
          .map((p) => [
            `${p.metadata.name}/${p.metadata.uid}`,
            [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])]
              .map((c) => `${c.name}=${c.containerID}#${c.restartCount}`)
              .sort(),
          ]),
      );
    };
    const before = await containers();
    const agentBefore = await agentPod();
    const stopped = Date.now();
    await story.cluster.stopComponent('kubelet');
    await eventually('the node NotReady', async () => (await nodeReady()) !== 'True', 120_000, 1000);
    story.timings.kubeletStoppedToNotReadySeconds = (Date.now() - stopped) / 1000;
    const restarted = Date.now();
    story.cluster.startComponent('kubelet');
    await eventually('the node Ready again', async () => (await nodeReady()) === 'True', 120_000, 1000);
    story.timings.kubeletRestartToNodeReadySeconds = (Date.now() - restarted) / 1000;
    const agentAfter = await agentPod();
    expect(agentAfter.metadata.uid).toBe(agentBefore.metadata.uid);
    await story.kk([
      'rollout',
      'status',
      'deployment/warden-controller',
      '-n',
      WARDEN_NAMESPACE,
      '--timeout=180s',
    ]);
    expect(await containers()).toEqual(before);
    const got = await eventually(
      'a call after the kubelet came back',
      async () => {
        const r = await agent('call', 'jira', 'jira.get_issue', '{"key":"SUP-10"}');
        return r.ok ? r : undefined;
      },
      120_000,
      1000,
    );
    expect(got.text).toMatch(/SUP-10/);
    story.timings.kubeletRestartToAgentCallSeconds = (Date.now() - restarted) / 1000;
  });

  it('stops the agent with the kill switch', async () => {
    await story.kk([
      'patch',
      `${PLURAL.AgentIdentity}.${GROUP}`,
      AGENT,
      '-n',
      AGENT_NS,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { suspended: true, suspendReason: 'e2e: kill switch' } }),
    ]);
    const denied = await eventually(
      'a denied call after the kill switch',
      async () => {
        const r = await agent('call', 'jira', 'jira.get_issue', '{"key":"SUP-7"}');
        return r.ok ? undefined : r;
      },
      60_000,
      1000,
    );
    expect(`${denied.reason} ${denied.error}`).toMatch(/suspend/i);
  });

  it('leaves an audit trail that verifies', async () => {
    const out = await eventually(
      'audit records',
      async () => {
        const o = await story.kk(['get', `${PLURAL.AuditRecord}.${GROUP}`, '-n', AGENT_NS, '-o', 'name']);
        return o.trim() ? o : undefined;
      },
      60_000,
      1000,
    );
    expect(out).toContain(`auditrecord.${GROUP}/${AGENT}-`);
    const { execFile } = await import('node:child_process');
    const verify = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'npx',
        ['tsx', 'cli/kubectl-warden.ts', 'audit', '-n', AGENT_NS, '--verify'],
        { env: { ...process.env, KUBECONFIG: story.cluster.kubeconfigPath }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      );
    });
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(
      /audit trail OK in namespace support: \d+ record\(s\), \d+ entr(y|ies); no forged, missing, altered or truncated record/,
    );
  });

  it("exports every audit event as a JSON line on the leading controller's stdout (docs/audit-export.md)", async () => {
    const leader = await story.kk([
      'get',
      'lease',
      LEADER_LEASE_NAME,
      '-n',
      WARDEN_NAMESPACE,
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ]);
    const logs = await story.kk(['logs', '-n', WARDEN_NAMESPACE, leader.trim(), '--tail=-1']);
    const lines = logs
      .split('\n')
      .filter((l) => l.startsWith('{"schema":"warden.audit/v1"'))
      .map((l) => JSON.parse(l) as { namespace?: string; agent?: string; kind?: string });
    // The agent called tools again under this leader (after the failover test above).
    expect(lines.some((l) => l.namespace === AGENT_NS && l.agent === AGENT)).toBe(true);
  });
});

describe('the shared gateway (gateway.enabled) on a real node', { timeout: 300_000 }, () => {
  it('runs two gateway replicas behind a Service with the TLS and PostgreSQL ports', async () => {
    await story.kk([
      'rollout',
      'status',
      `deployment/${GATEWAY_SERVICE}`,
      '-n',
      WARDEN_NAMESPACE,
      '--timeout=180s',
    ]);
    const deployment = JSON.parse(
      await story.kk(['get', 'deployment', GATEWAY_SERVICE, '-n', WARDEN_NAMESPACE, '-o', 'json']),
    ) as { status: { readyReplicas?: number } };
    expect(deployment.status.readyReplicas).toBe(2);
    const svc = JSON.parse(
      await story.kk(['get', 'service', GATEWAY_SERVICE, '-n', WARDEN_NAMESPACE, '-o', 'json']),
    ) as { spec: { ports: Array<{ name: string; port: number }> } };
    expect(svc.spec.ports.map((p) => [p.name, p.port])).toEqual([
      ['https', 443],
      ['postgresql', 5432],
    ]);
  });

  it('the agent pod that opted out has no sidecar, only its gateway-audience token', async () => {
    await story.kk([
      'wait',
      '--for=condition=Ready',
      `pod/${GATEWAY_AGENT}`,
      '-n',
      AGENT_NS,
      '--timeout=180s',
    ]);
    const pod = JSON.parse(
      await story.kk(['get', 'pod', GATEWAY_AGENT, '-n', AGENT_NS, '-o', 'json']),
    ) as PodJson;
    expect(pod.spec.initContainers ?? []).toEqual([]);
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['agent']);
    expect(pod.metadata.annotations?.[ANNOTATION_INJECTED]).toBeUndefined();
    const audiences = (pod.spec.volumes ?? []).flatMap((v) =>
      (v.projected?.sources ?? []).map((src) => src.serviceAccountToken?.audience),
    );
    expect(audiences).toEqual(['warden.dev/gateway']);
  });

  it('calls a tool through the gateway Service with its projected token; a Deny policy still denies', async () => {
    // The first call also warms the sample server's JWKS cache (as through the sidecar): retried.
    const got = await eventually(
      'the first tool call through the gateway',
      async () => {
        const r = await agentIn(GATEWAY_AGENT, ['gw-call', 'jira', 'jira.get_issue', '{"key":"SUP-9"}']);
        return r.ok ? r : undefined;
      },
      120_000,
      2000,
    );
    expect(got.text).toMatch(/SUP-9: "Printer on fire" \(open\) — served to /);
    const denied = await agentIn(GATEWAY_AGENT, ['gw-call', 'jira', 'jira.delete_issue', '{"key":"SUP-9"}']);
    expect(denied.ok).toBe(false);
    expect(`${denied.reason} ${denied.error}`).toMatch(/deny-deletes/);
  });

  it('answers an MCP request without a token 401 with the RFC 9728 challenge', async () => {
    const r = await agentIn(GATEWAY_AGENT, ['gw-anonymous', 'jira']);
    expect(r.status).toBe(401);
    expect(r.challenge).toContain(
      `resource_metadata="https://${GATEWAY_SERVICE}.${WARDEN_NAMESPACE}.svc:443/.well-known/oauth-protected-resource/mcp/jira"`,
    );
  });

  it('queries PostgreSQL through the gateway Service with the token as the password over TLS', async () => {
    const r = await agentIn(GATEWAY_AGENT, ['gw-sql', 'orders-db', 'SELECT count(*)::int AS n FROM orders']);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.rows).toEqual([{ n: 3 }]);
  });

  it('serves a renewed certificate from its updated Secret on every replica without a restart; calls go on', async () => {
    // The replicas as they are now: their pod names and restart counts must not change.
    const selector = JSON.parse(
      await story.kk(['get', 'deployment', GATEWAY_SERVICE, '-n', WARDEN_NAMESPACE, '-o', 'json']),
    ) as { spec: { selector: { matchLabels: Record<string, string> } } };
    const labels = Object.entries(selector.spec.selector.matchLabels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const replicas = async () =>
      (
        JSON.parse(await story.kk(['get', 'pods', '-n', WARDEN_NAMESPACE, '-l', labels, '-o', 'json'])) as {
          items: Array<{
            metadata: { name: string };
            status: { podIP?: string; containerStatuses?: Array<{ restartCount: number }> };
          }>;
        }
      ).items.map((p) => ({
        name: p.metadata.name,
        ip: p.status.podIP ?? '',
        restarts: (p.status.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0),
      }));
    const before = await replicas();
    expect(before).toHaveLength(2);
    const served = async () =>
      Promise.all(
        before.map(async (r) => (await agentIn(GATEWAY_AGENT, ['gw-cert', `${r.ip}:8443`])).fingerprint256),
      );
    const old = await served();
    expect(old[0]).toBeDefined();
    expect(old[1]).toBe(old[0]);

    const renewed = await story.renewGatewayTls!();
    const expected = new X509Certificate(renewed.certPem).fingerprint256;
    expect(expected).not.toBe(old[0]);
    // The kubelet updates the Secret's volume on its own schedule (up to about a minute and a
    // half); the gateway sees the swap and serves the new pair to new connections.
    await eventually(
      'both gateway replicas to serve the renewed certificate',
      async () => (await served()).every((f) => f === expected),
      240_000,
      3000,
    );
    const r = await agentIn(GATEWAY_AGENT, ['gw-call', 'jira', 'jira.get_issue', '{"key":"SUP-9"}']);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect((await agentIn(GATEWAY_AGENT, ['gw-cert'])).fingerprint256).toBe(expected);
    expect(await replicas()).toEqual(before);
  });

  it("audits the gateway's decisions in the agent's trail, with its pod", async () => {
    const entries = await eventually(
      "the gateway agent's Decision entries",
      async () => {
        const list = JSON.parse(
          await story.kk(['get', `${PLURAL.AuditRecord}.${GROUP}`, '-n', AGENT_NS, '-o', 'json']),
        ) as { items: Array<{ spec: { agent?: string; entries?: Array<AuditEntry & { pod?: string }> } }> };
        const mine = list.items
          .filter((rec) => rec.spec.agent === GATEWAY_AGENT)
          .flatMap((rec) => rec.spec.entries ?? []);
        const wanted = ['jira.get_issue', 'jira.delete_issue'];
        return wanted.every((t) => mine.some((e) => e.kind === 'Decision' && e.tool === t)) &&
          mine.some((e) => e.kind === 'Decision' && e.target === 'orders-db')
          ? mine
          : undefined;
      },
      60_000,
      2000,
    );
    const get = entries.find((e) => e.kind === 'Decision' && e.tool === 'jira.get_issue');
    expect(get?.decision).toBe('Allow');
    expect(get?.pod).toBe(GATEWAY_AGENT);
    expect(entries.find((e) => e.kind === 'Decision' && e.tool === 'jira.delete_issue')?.decision).toBe(
      'Deny',
    );
  });
});
