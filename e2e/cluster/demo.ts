/**
 * `make demo`: the Warden story on a real node — the chart installed with helm, the agent
 * as a Deployment whose pods get the broker as a native sidecar, the agent container (a
 * real MCP client) calling through it over the pod's loopback. Needs root (the cluster
 * creates a network namespace, cgroups and mounts); `make demo-local` tells the same story
 * with host processes around an API server.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BROKER_CONTAINER_NAME, GROUP, PLURAL } from '../../core/constants.js';
import { eventually } from '../eventually.js';
import { WARDEN_NAMESPACE } from './install.js';
import { AGENT, AGENT_NS, agentDeployment, type Story, startStory } from './story-fixture.js';

let step = 0;
const say = (line: string) => process.stdout.write(`\n${String(++step).padStart(2)}. ${line}\n`);
const show = (text: string) => process.stdout.write(`${text.trimEnd().replace(/^/gm, '      ')}\n`);
const t0 = Date.now();

if (process.getuid?.() !== 0) {
  process.stderr.write(
    'make demo runs Warden on a real single-node cluster and needs root (network namespace, cgroups, mounts)\n' +
      'and a Linux kernel with overlayfs, veth, bridge and netfilter. Run it as root, or run `make demo-local`\n' +
      '(the same story with host processes around a local API server; no root needed).\n',
  );
  process.exit(2);
}

async function main(story: Story): Promise<void> {
  const { kk } = story;
  show(
    `node Ready after ${story.timings.nodeReadySeconds?.toFixed(1)} s; images built and pushed in ${story.timings.imagesSeconds?.toFixed(0)} s; helm install --wait ${story.timings.helmInstallSeconds?.toFixed(0)} s`,
  );
  show(await kk(['get', 'nodes', '-o', 'wide']));
  show(await kk(['get', 'pods', '-n', WARDEN_NAMESPACE, '-o', 'wide']));

  say('The platform team declared the agent, its policies and providers');
  show(await kk(['get', 'warden', '-n', AGENT_NS]));

  say('The app team deploys the annotated agent: the webhook injects the broker as a native sidecar');
  const image = story.images.workloads.reference.replace(/:[^:/]+$/, `@${story.images.workloads.digest}`);
  const created = Date.now();
  await kk(['apply', '-n', AGENT_NS, '-f', '-'], agentDeployment(image));
  await kk(['rollout', 'status', `deployment/${AGENT}`, '-n', AGENT_NS, '--timeout=180s']);
  show(`Deployment rolled out in ${((Date.now() - created) / 1000).toFixed(1)} s`);
  show(await kk(['get', 'pods', '-n', AGENT_NS, '-o', 'wide']));
  const pod = (
    await kk([
      'get',
      'pods',
      '-n',
      AGENT_NS,
      '-l',
      `app=${AGENT}`,
      '-o',
      'jsonpath={.items[0].metadata.name}',
    ])
  ).trim();
  show(
    await kk([
      'get',
      'pod',
      pod,
      '-n',
      AGENT_NS,
      '-o',
      `jsonpath=init (native sidecar): {.spec.initContainers[0].name} restartPolicy={.spec.initContainers[0].restartPolicy}{"\\n"}started {.status.initContainerStatuses[0].state.running.startedAt}, agent started {.status.containerStatuses[0].state.running.startedAt}{"\\n"}injected: {.metadata.annotations.warden\\.dev/injected}{"\\n"}`,
    ]),
  );

  const agent = async (...args: string[]) =>
    (
      await story.k([
        'exec',
        '-n',
        AGENT_NS,
        pod,
        '-c',
        'agent',
        '--',
        '/nodejs/bin/node',
        '/app/e2e/cluster/workloads/agent.js',
        ...args,
      ])
    ).stdout.trim();

  say('The broker attested with its kubelet-projected token');
  show(
    (await kk(['logs', '-n', AGENT_NS, pod, '-c', BROKER_CONTAINER_NAME])).split('\n').slice(0, 3).join('\n'),
  );

  say('Inside the agent container: kubectl exec of a real MCP client, talking to 127.0.0.1');
  show(`tools: ${await agent('tools', 'jira')}`);
  show(`jira.get_issue: ${await agent('call', 'jira', 'jira.get_issue', '{"key":"SUP-7"}')}`);
  show(`jira.delete_issue: ${await agent('call', 'jira', 'jira.delete_issue', '{"key":"SUP-7"}')}`);
  show(
    `SQL through the broker: ${await agent('sql', 'orders-db', 'SELECT current_user AS who, count(*)::int AS orders FROM orders')}`,
  );

  say('What the agent container holds: no token file, no JWT in env or files');
  show(await agent('inspect'));

  say('The security team flips the kill switch');
  await kk([
    'patch',
    `${PLURAL.AgentIdentity}.${GROUP}`,
    AGENT,
    '-n',
    AGENT_NS,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { suspended: true, suspendReason: 'demo: suspicious activity' } }),
  ]);
  const denied = await eventually(
    'a denied call',
    async () => {
      const out = await agent('call', 'jira', 'jira.get_issue', '{"key":"SUP-7"}');
      return out.includes('"ok":false') ? out : undefined;
    },
    60_000,
    1000,
  );
  show(denied);

  say('The auditor reads the trail: the AuditRecords, `kubectl warden audit --verify` and `status`');
  show(await kk(['get', `${PLURAL.AuditRecord}.${GROUP}`, '-n', AGENT_NS]));
  show((await cli(story, ['audit', '-n', AGENT_NS, '--verify'])).stdout);
  show((await cli(story, ['status', '-n', AGENT_NS])).stdout);

  say('Before narrowing a policy, replay the trail against it: `kubectl warden replay`');
  // The proposal: support-read no longer lets the agent read issues, only search them.
  const proposal = join(mkdtempSync(join(tmpdir(), 'warden-demo-replay-')), 'support-read.yaml');
  writeFileSync(
    proposal,
    JSON.stringify({
      apiVersion: `${GROUP}/v1alpha1`,
      kind: 'AccessPolicy',
      metadata: { name: 'support-read', namespace: AGENT_NS },
      spec: {
        agentSelector: { names: [AGENT] },
        rules: [{ targets: ['jira'], tools: ['jira.search*'] }, { targets: ['orders-db'] }],
      },
    }),
  );
  show(`kubectl warden replay -f support-read.yaml -n ${AGENT_NS} --since 1h`);
  show((await cli(story, ['replay', '-f', proposal, '-n', AGENT_NS, '--since', '1h'])).stdout);

  say('What the agent did, from the trail: `kubectl warden usage`');
  show((await cli(story, ['usage', '-n', AGENT_NS, '--since', '1h'])).stdout);

  say('The circuit breaker: revive the agent, allow it 3 denials a minute, let it loop on a denied tool');
  show((await cli(story, ['revive', AGENT, '-n', AGENT_NS])).stdout.trim());
  await kk([
    'patch',
    `${PLURAL.AgentIdentity}.${GROUP}`,
    AGENT,
    '-n',
    AGENT_NS,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { circuitBreaker: { maxDenialsPerMinute: 3, action: 'Suspend' } } }),
  ]);
  let calls = 0;
  const reason = await eventually(
    'the circuit breaker suspending the agent',
    async () => {
      await agent('call', 'jira', 'jira.delete_issue', '{"key":"SUP-7"}');
      calls++;
      const r = await kk([
        'get',
        `${PLURAL.AgentIdentity}.${GROUP}`,
        AGENT,
        '-n',
        AGENT_NS,
        '-o',
        'jsonpath={.spec.suspendReason}',
      ]);
      return r.startsWith('CircuitBreakerTripped') ? r : undefined;
    },
    180_000,
    500,
  );
  show(`after ${calls} denied calls, spec.suspendReason: ${reason}`);
}

/** `kubectl warden …` as a user runs it, against the cluster's kubeconfig; never throws. */
function cli(story: Story, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['tsx', 'cli/kubectl-warden.ts', ...args],
      { env: { ...process.env, KUBECONFIG: story.cluster.kubeconfigPath }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (code !== 0 && stderr) process.stderr.write(stderr);
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const story = await startStory((l) => show(l));
let failed = false;
try {
  await main(story);
} catch (err) {
  failed = true;
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  process.stdout.write('\nCleaning up...\n');
  await story.stop();
  process.stdout.write(`Done in ${((Date.now() - t0) / 1000).toFixed(1)} s${failed ? ' (FAILED)' : ''}\n`);
}
process.exit(failed ? 1 : 0);
