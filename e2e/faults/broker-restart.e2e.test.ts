/**
 * Fault: the broker is restarted mid-stream. A real `warden broker` child process serves an MCP
 * agent (the SDK's Client over streamable HTTP) in front of a real stateful MCP server; it is
 * SIGKILLed while a tool call's SSE stream is open, and a new broker starts on the same ports with
 * the same projected-token file (what the kubelet does when the sidecar restarts). What the agent
 * sees: the cut call fails with an error (no hang, no partial result), and its next call — on the
 * same MCP session — works through the new broker, which attested again. Both brokers' decisions
 * are in the audit trail.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type McpUpstream, startMcpUpstream } from '../../broker/int-fixtures.js';
import { KubeConfigApi } from '../../kube/kube.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../harness/index.js';
import { eventually } from '../killswitch-fixture.js';
import {
  type AgentPod,
  auditEntries,
  type BrokerChild,
  type ControllerChild,
  createAgentPod,
  createWardenObject,
  decisions,
  freePort,
  spawnBroker,
  spawnController,
} from './faults-a-fixture.js';

/** The agent's own bound on the call whose stream is cut. */
const CUT_CALL_TIMEOUT_MS = 5000;

describe('fault: broker restarted mid-stream', () => {
  let ns: string;
  let api: KubeConfigApi;
  let upstream: McpUpstream;
  let controller: ControllerChild;
  let pod: AgentPod;
  let broker: BrokerChild | undefined;
  let ports: { listen: number; health: number };

  const startBroker = () =>
    spawnBroker({
      tokenFile: pod.tokenFile,
      authorityUrl: controller.authorityUrl,
      listenPort: ports.listen,
      healthPort: ports.health,
      podName: pod.podName,
    });

  /** Session entries (token exchanges the authority accepted) for the agent's pod. */
  const sessions = async () =>
    (await auditEntries(api, ns, pod.agent)).filter(
      (e) => e.kind === 'Session' && e.decision === 'Allow' && e.pod === pod.podName,
    );

  beforeAll(async () => {
    ns = await freshNamespace('faults-broker');
    const kc = kubeConfig();
    api = new KubeConfigApi(kc);
    upstream = await startMcpUpstream();
    controller = await spawnController({
      kubeconfigPath: kubeconfigPath(),
      namespace: ns,
      authorityPort: await freePort(),
    });
    pod = await createAgentPod(kc, api, { namespace: ns, agent: 'bot' });
    await createWardenObject(api, ns, 'CredentialProvider', 'jira', {
      target: { url: upstream.url, protocol: 'MCP' },
      type: 'JWT',
      jwt: { audience: 'jira', defaultTTL: '5m' },
    });
    await createWardenObject(api, ns, 'AccessPolicy', 'bot-jira', {
      agentSelector: { names: ['bot'] },
      effect: 'Allow',
      rules: [{ targets: ['jira'], tools: ['jira.get_*', 'jira.wait'] }],
    });
    ports = { listen: await freePort(), health: await freePort() };
    broker = await startBroker();
  }, 120_000);

  afterAll(async () => {
    upstream?.release();
    await broker?.stop();
    await controller?.stop();
    await upstream?.close();
  });

  it('cuts the open stream with an error, then the next call re-attests and works; both brokers audited', async () => {
    // The agent: one MCP session; every request of a call carries that call's x-request-id.
    let requestId = 'restart-connect';
    const client = new Client({ name: 'agent', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${broker!.url}/mcp/jira`), {
      fetch: (url, init) => {
        const headers = new Headers(init?.headers);
        headers.set('x-request-id', requestId);
        return fetch(url, { ...init, headers });
      },
      // The agent does not resume cut streams: it sees the failure and retries by itself.
      reconnectionOptions: {
        maxReconnectionDelay: 1000,
        initialReconnectionDelay: 100,
        reconnectionDelayGrowFactor: 1,
        maxRetries: 0,
      },
    });
    const errors: Error[] = [];
    client.onerror = (err) => errors.push(err);
    await client.connect(transport);
    const sessionId = transport.sessionId;
    expect(sessionId).toBeDefined();

    requestId = 'restart-before';
    const first = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-1' } });
    expect(JSON.stringify(first.content)).toContain('printer on fire');
    const sessionsBefore = await eventually('the first attestation in the audit trail', async () => {
      const got = await sessions();
      return got.length > 0 && got;
    });

    // A tool call whose SSE stream stays open until the upstream is released.
    requestId = 'restart-cut';
    const cut = client
      .callTool({ name: 'jira.wait', arguments: {} }, undefined, { timeout: CUT_CALL_TIMEOUT_MS })
      .then(
        (r) => ({ ok: true as const, r }),
        (err: unknown) => ({ ok: false as const, err: err as Error }),
      );
    await eventually('the upstream to be running jira.wait', async () =>
      upstream.calls.includes('jira.wait'),
    );
    // Both decisions of the first broker are shipped before it dies (an unshipped tail — at most
    // the shipper's 1 s flush interval — dies with the process: docs/faults.md).
    await eventually('the first broker’s decisions in the audit trail', async () => {
      const got = decisions(await auditEntries(api, ns, 'bot'), 'restart-');
      return (
        got.some((e) => e.requestId === 'restart-cut') && got.some((e) => e.requestId === 'restart-before')
      );
    });

    await broker!.kill();
    broker = undefined;
    const killedAt = Date.now();
    // The agent's transport reports the cut stream at once; the call itself ends with an error
    // (the SDK leaves a request whose stream broke pending until the agent's own timeout: an
    // unresumable stream cannot deliver the answer) — never with a result.
    await eventually('the transport to report the cut stream', async () =>
      errors.some((e) => /SSE stream disconnected/.test(e.message)),
    );
    const outcome = await cut;
    expect(outcome.ok).toBe(false);
    // The broker's upstream request died with it: nothing left running on the agent's behalf.
    await eventually('the upstream exchange aborted', async () => upstream.aborted > 0);

    // The kubelet restarts the sidecar: same ports, same projected-token file.
    broker = await startBroker();
    expect((await broker.readiness()).status).toBe(200);

    requestId = 'restart-after';
    const next = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-2' } });
    expect(JSON.stringify(next.content)).toContain('issue SUP-2');
    // Same MCP session end to end: the new broker passes the session id through.
    expect(transport.sessionId).toBe(sessionId);

    // The new broker attested again: a new session for the same pod, issued after the kill.
    const fresh = await eventually('a new session in the audit trail', async () => {
      const got = (await sessions()).filter((e) => Date.parse(e.time) >= killedAt - 1000);
      return got.length > 0 && got;
    });
    const oldIds = new Set(sessionsBefore.map((e) => e.credentialId));
    expect(fresh.some((e) => e.credentialId && !oldIds.has(e.credentialId))).toBe(true);

    // Audit: the old broker's decisions and the new one's, once each, for the same pod.
    const audited = await eventually('the new broker’s decision in the audit trail', async () => {
      const got = decisions(await auditEntries(api, ns, 'bot'), 'restart-');
      return got.some((e) => e.requestId === 'restart-after') && got;
    });
    const byId = (id: string) => audited.filter((e) => e.requestId === id);
    for (const id of ['restart-before', 'restart-cut', 'restart-after']) {
      expect(byId(id), id).toHaveLength(1);
      expect(byId(id)[0]).toMatchObject({ decision: 'Allow', pod: pod.podName, target: 'jira' });
    }
    expect(byId('restart-cut')[0]?.tool).toBe('jira.wait');
    expect(byId('restart-after')[0]?.tool).toBe('jira.get_issue');
    await client.close().catch(() => {});
  }, 120_000);
});
