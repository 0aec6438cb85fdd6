/**
 * Gateway benchmark: what `warden gateway` adds to an HTTP-proxied call, next to what the sidecar
 * adds, through the real chain (a local API server, a `warden controller`, the agent's pod with an
 * injected broker for the sidecar path and a gateway-audience token for the gateway path, the same
 * JWT CredentialProvider and upstream). Three paths, back to back in each repeat: direct to the
 * upstream, through the sidecar (loopback HTTP), through the gateway (TLS + the caller's bearer
 * token, keep-alive as an agent's HTTP client would). One call at a time, and open loop at
 * WARDEN_BENCH_GATEWAY_RATE req/s (default 200; 1,000 in the terms when the machine has
 * cores to spare). All parts share this process, so `cpuMicrosPerOp` is the process's CPU per
 * call (client, upstream, Warden): the difference between two paths is what one costs over the
 * other. Every call is audited through the controller on both paths.
 */

import { rmSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { type RunningBroker, runBroker } from '../broker/main.js';
import { GATEWAY_AUDIENCE } from '../core/constants.js';
import { createAgentPod, writePodToken } from '../e2e/agent-stack.js';
import { startControlPlane } from '../e2e/controlplane/controlplane.js';
import { eventually } from '../e2e/eventually.js';
import { type GatewayStack, startGatewayStack } from '../e2e/gateway-fixture.js';
import { installCrds } from '../e2e/harness/crds.js';
import { type BenchResult, latencyResult, median, percentile } from './lib.js';

const REPEATS = Number(process.env.WARDEN_BENCH_GATEWAY_REPEATS ?? 3);
const SEQUENTIAL = Number(process.env.WARDEN_BENCH_GATEWAY_CALLS ?? 500);
const RATE = Number(process.env.WARDEN_BENCH_GATEWAY_RATE ?? 200);
const SECONDS = Number(process.env.WARDEN_BENCH_GATEWAY_SECONDS ?? 3);

interface Path {
  readonly name: string;
  call(i: number): Promise<number>;
  close(): void;
}

function httpPath(name: string, base: string, headers: Record<string, string>, ca?: string): Path {
  const tls = base.startsWith('https:');
  const agent = tls
    ? new Agent({ keepAlive: true, maxSockets: 256, ...(ca ? { ca } : {}) })
    : new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const doRequest = tls ? httpsRequest : httpRequest;
  return {
    name,
    call: (i) => {
      const t0 = process.hrtime.bigint();
      return new Promise((resolve, reject) => {
        const req = doRequest(`${base}/api/v1/tickets/B-${i}`, { agent, headers }, (res) => {
          res.on('data', () => {});
          res.on('end', () =>
            res.statusCode === 200
              ? resolve(Number(process.hrtime.bigint() - t0) / 1000)
              : reject(new Error(`${name}: HTTP ${res.statusCode}`)),
          );
        });
        req.on('error', reject);
        req.end();
      });
    },
    close: () => agent.destroy(),
  };
}

async function sequential(p: Path, n: number): Promise<{ lat: number[]; cpu: number; errors: number }> {
  const lat: number[] = [];
  let errors = 0;
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    try {
      lat.push(await p.call(i));
    } catch {
      errors++;
    }
  }
  const c = process.cpuUsage(c0);
  return { lat, cpu: (c.user + c.system) / Math.max(1, lat.length), errors };
}

async function openLoop(
  p: Path,
  rate: number,
  seconds: number,
): Promise<{ lat: number[]; cpu: number; errors: number }> {
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const lat: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const c0 = process.cpuUsage();
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const now = performance.now() - start;
    for (; i < total && i * interval <= now; i++) {
      inflight.push(
        p.call(i).then(
          (us) => {
            lat.push(us);
          },
          () => {
            errors++;
          },
        ),
      );
    }
    if (i < total) await new Promise((r) => setTimeout(r, Math.max(0, i * interval - now - 0.5)));
  }
  await Promise.all(inflight);
  const c = process.cpuUsage(c0);
  return { lat, cpu: (c.user + c.system) / Math.max(1, lat.length), errors };
}

export async function run(): Promise<BenchResult[]> {
  const cp = await startControlPlane();
  let stack: GatewayStack | undefined;
  let sidecar: RunningBroker | undefined;
  let tokenDir: string | undefined;
  const paths: Path[] = [];
  try {
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const namespace = 'bench-gateway';
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    stack = await startGatewayStack({ kubeConfig: kc, namespace, replicas: 1 });
    // The same agent with a sidecar: a pod as the webhook admits it, and its broker.
    const pod = await createAgentPod(kc, {
      namespace,
      agent: stack.agent,
      name: `${stack.agent}-sidecar`,
      issuer: stack.issuer,
    });
    const written = await writePodToken(kc, {
      namespace,
      serviceAccount: stack.agent,
      pod,
      prefix: 'warden-bench-gw-',
    });
    tokenDir = written.dir;
    sidecar = await runBroker({
      tokenFile: written.tokenFile,
      authorityUrl: stack.issuer,
      listen: { host: '127.0.0.1', port: 0 },
      healthPort: 0,
      healthHost: '127.0.0.1',
      podName: pod.metadata?.name,
    });
    const running = sidecar;
    await eventually('the sidecar to be ready', async () => running.readiness().ready, 30_000);
    const token = await stack.token(GATEWAY_AUDIENCE);
    const direct = httpPath('direct', stack.upstreamUrl, {});
    const viaSidecar = httpPath('sidecar', `http://127.0.0.1:${sidecar.ports.listen}/http/tickets`, {});
    const viaGateway = httpPath(
      'gateway',
      `${stack.urls[0]}/http/tickets`,
      { authorization: `Bearer ${token}` },
      stack.ca,
    );
    paths.push(direct, viaSidecar, viaGateway);
    // Warm-up: JIT, connection pools, TLS sessions, each path's credential cache.
    for (const p of paths) await sequential(p, 100);

    const seq = new Map<string, { lat: number[][]; cpu: number[]; errors: number }>();
    const open = new Map<string, { lat: number[][]; cpu: number[]; errors: number }>();
    for (const p of paths) {
      seq.set(p.name, { lat: [], cpu: [], errors: 0 });
      open.set(p.name, { lat: [], cpu: [], errors: 0 });
    }
    for (let r = 0; r < REPEATS; r++) {
      for (const p of paths) {
        const s = await sequential(p, SEQUENTIAL);
        const m = seq.get(p.name)!;
        m.lat.push(s.lat);
        m.cpu.push(s.cpu);
        m.errors += s.errors;
      }
      for (const p of paths) {
        const s = await openLoop(p, RATE, SECONDS);
        const m = open.get(p.name)!;
        m.lat.push(s.lat);
        m.cpu.push(s.cpu);
        m.errors += s.errors;
      }
    }
    const out: BenchResult[] = [];
    for (const [mode, data, label] of [
      ['sequential', seq, `${SEQUENTIAL} calls one at a time`],
      [`${RATE}rps`, open, `open loop ${RATE} req/s for ${SECONDS} s`],
    ] as const) {
      const d = data.get('direct')!;
      const p50 = (xs: number[][]) => median(xs.map((x) => percentile(Float64Array.from(x).sort(), 50)));
      const addedOver = (name: string) => p50(data.get(name)!.lat) - p50(d.lat);
      const sidecarAdded = addedOver('sidecar');
      const gatewayAdded = addedOver('gateway');
      const cpuOver = (name: string) => median(data.get(name)!.cpu) - median(d.cpu);
      for (const name of ['direct', 'sidecar', 'gateway'] as const) {
        const m = data.get(name)!;
        out.push(
          latencyResult(`gateway/${mode}/${name}`, m.lat, {
            cpuMicrosPerOp: m.cpu,
            ...(name === 'direct' ? {} : { baseline: `gateway/${mode}/direct` }),
            note:
              name === 'gateway'
                ? `${label}, ${REPEATS} repeats; added p50 over direct ${(gatewayAdded / 1000).toFixed(2)} ms vs the sidecar's ${(sidecarAdded / 1000).toFixed(2)} ms (${(gatewayAdded / sidecarAdded).toFixed(2)}×); process CPU per call over direct ${cpuOver('gateway').toFixed(0)} µs vs ${cpuOver('sidecar').toFixed(0)} µs (${(cpuOver('gateway') / cpuOver('sidecar')).toFixed(2)}×); TLS + bearer token; ${m.errors} errors`
                : `${label}, ${REPEATS} repeats; ${m.errors} errors`,
          }),
        );
      }
    }
    return out;
  } finally {
    for (const p of paths) p.close();
    await sidecar?.close();
    await stack?.stop();
    if (tokenDir) rmSync(tokenDir, { recursive: true, force: true });
    await cp.stop();
  }
}
