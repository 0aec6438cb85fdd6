/**
 * A real single-node Kubernetes cluster on this machine: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, containerd + runc, kubelet, kube-proxy, CoreDNS
 * and a CNCF distribution registry, all built from their Go modules (build.sh and
 * e2e/controlplane/build.sh) or Debian packages (scripts/ensure-cluster-packages.sh).
 *
 * Everything runs inside a network namespace of its own (the "node"): a bridge carries the
 * pod network 10.244.0.0/24 and its gateway 10.244.0.1 is the node IP; the kubelet's and
 * kube-proxy's iptables rules live in that namespace too, so the host's rules are never
 * touched and several clusters can run side by side (one slot each, see acquireSlot). The
 * host reaches the node over a veth pair (a /30 of 10.250.<slot>.0): the API server and the
 * registry. Pods cannot leave the node: FORWARD drops anything from the bridge to elsewhere.
 *
 * Stopping removes everything it made (cleanup.sh); so does a watchdog when this process
 * dies without stopping (SIGKILL, crash), within about a second.
 * Recipe and measurements: docs/real-node.md.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import https from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createCertificateAuthority, generateKeyPair } from '../../core/x509.js';
import { type Binaries as ControlPlaneBinaries, ensureBinaries } from '../controlplane/controlplane.js';
import { buildAndPush, type PushedImage } from './oci.js';

const here = dirname(fileURLToPath(import.meta.url));
const execFileP = promisify(execFile);

/** Fixed inside the node's network namespace (every cluster has its own). */
export const NODE_IP = '10.244.0.1';
export const POD_CIDR = '10.244.0.0/24';
export const SERVICE_CIDR = '10.0.0.0/24';
export const API_PORT = 6443;
/** The registry as the node (containerd) pulls from it: image references use this host. */
export const REGISTRY_IN_NODE = '127.0.0.1:5000';
export const NODE_NAME = 'warden-node';
const SLOT_ROOT = '/run/warden-cluster';
const MAX_SLOTS = 32;

export interface NodeBinaries extends ControlPlaneBinaries {
  kubelet: string;
  kubeProxy: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  coredns: string;
  registry: string;
  pause: string;
}

export interface Cluster {
  /** Admin kubeconfig for the host (server https://<node uplink>:6443). */
  kubeconfigPath: string;
  server: string;
  caPem: string;
  /** The registry as the host pushes to it (host:port, plain http). */
  registryPush: string;
  /** The node's address on the host uplink: the host reaches the API server, registry and node services there. */
  uplinkIp: string;
  /** Slot number, network namespace and work dir of this cluster. */
  slot: number;
  netns: string;
  dir: string;
  binaries: NodeBinaries;
  /** Milliseconds from start() to node Ready. */
  readyMs: number;
  /** Builds and pushes an image; `name:tag` becomes 127.0.0.1:5000/name:tag for pods. */
  push(
    nameTag: string,
    layerDirs: string[],
    config: Parameters<typeof buildAndPush>[3],
  ): Promise<PushedImage>;
  /** Starts a long-running process inside the node's network namespace (e.g. PostgreSQL). */
  startInNode(name: string, argv: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  /** Runs a command inside the node's network namespace and returns its stdout. */
  execInNode(argv: string[]): Promise<string>;
  /**
   * Stops one component (SIGTERM, SIGKILL after 30 s) and resolves once it has exited, e.g.
   * the kubelet: its containers keep running under containerd, as on a real node.
   */
  stopComponent(name: string): Promise<void>;
  /** Starts a component stopComponent() stopped again, with the same command line. */
  startComponent(name: string): void;
  /** Resident memory (bytes) of each component process, by name. */
  memory(): Record<string, number>;
  /** Resident memory (bytes) of the pods: every process in the cluster's cgroup subtree. */
  podsMemory(): number;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** Prebuilt binaries (default: ensureNodeBinaries()). */
  binaries?: NodeBinaries;
  log?: (line: string) => void;
  keepDir?: boolean;
}

type Log = (line: string) => void;

function parseVars(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

async function runScript(script: string, log: Log): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line) log(line);
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${script} failed with exit code ${code}`)),
    );
  });
}

/** Installs the Debian packages and builds every binary the cluster runs (cached). */
export async function ensureNodeBinaries(
  log: Log = (l) => process.stderr.write(`${l}\n`),
): Promise<NodeBinaries> {
  await runScript(join(here, '..', '..', 'scripts', 'ensure-cluster-packages.sh'), log);
  const cp = await ensureBinaries(log);
  const v = parseVars(await runScript(join(here, 'build.sh'), log));
  const need = [
    'KUBELET',
    'KUBE_PROXY',
    'KUBE_CONTROLLER_MANAGER',
    'KUBE_SCHEDULER',
    'COREDNS',
    'REGISTRY',
    'PAUSE',
  ];
  for (const k of need) if (!v[k]) throw new Error(`e2e/cluster/build.sh did not print ${k}=<path>`);
  return {
    ...cp,
    kubelet: v.KUBELET as string,
    kubeProxy: v.KUBE_PROXY as string,
    kubeControllerManager: v.KUBE_CONTROLLER_MANAGER as string,
    kubeScheduler: v.KUBE_SCHEDULER as string,
    coredns: v.COREDNS as string,
    registry: v.REGISTRY as string,
    pause: v.PAUSE as string,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Takes a free slot (a directory under /run/warden-cluster): its number names the network
 * namespace, the uplink and its /30. A slot whose owner and watchdog are both gone is
 * cleaned (cleanup.sh of its recorded work dir) and reused.
 */
async function acquireSlot(): Promise<{ slot: number; lockDir: string }> {
  mkdirSync(SLOT_ROOT, { recursive: true });
  for (let slot = 1; slot <= MAX_SLOTS; slot++) {
    const lockDir = join(SLOT_ROOT, String(slot));
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'owner'), String(process.pid));
      return { slot, lockDir };
    } catch {
      const read = (f: string) => {
        try {
          return readFileSync(join(lockDir, f), 'utf8').trim();
        } catch {
          return '';
        }
      };
      const owner = Number(read('owner'));
      const watchdog = Number(read('watchdog'));
      if ((owner && alive(owner)) || (watchdog && alive(watchdog))) continue;
      if (!owner) continue; // being created right now by another process
      const workDir = read('workdir');
      if (workDir) await execFileP(join(here, 'cleanup.sh'), [workDir]).catch(() => {});
      execFileP('rm', ['-rf', lockDir]).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      slot--; // retry this slot
    }
  }
  throw new Error(`all ${MAX_SLOTS} cluster slots under ${SLOT_ROOT} are in use: stop a cluster first`);
}

async function sh(argv: string[]): Promise<string> {
  const [cmd, ...args] = argv;
  try {
    return (await execFileP(cmd as string, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${argv.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

function kubeconfig(server: string, caPem: string, certPem: string, keyPem: string, user: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: warden-node
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(caPem)}
users:
- name: ${user}
  user:
    client-certificate-data: ${b64(certPem)}
    client-key-data: ${b64(keyPem)}
contexts:
- name: warden-node
  context:
    cluster: warden-node
    user: ${user}
current-context: warden-node
`;
}

function httpsGet(url: string, tls: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function tail(path: string, lines = 25): Promise<string> {
  try {
    return (await execFileP('tail', ['-n', String(lines), path])).stdout;
  } catch {
    return '';
  }
}

/** Every slot's host uplink lives in this range (10.250.<slot>.0/30); see the unreachable route. */
const UPLINK_RANGE = '10.250.0.0/16';

/** Starts the cluster; resolves once the node is Ready and the default ServiceAccount exists. */
export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const log: Log = opts.log ?? (() => {});
  if (process.getuid?.() !== 0) {
    throw new Error('the real-node cluster needs root (network namespace, cgroups, mounts); run it as root');
  }
  const bins = opts.binaries ?? (await ensureNodeBinaries(log));
  const started = Date.now();
  const { slot, lockDir } = await acquireSlot();
  // Short paths: containerd's socket path must stay under the 108-byte unix socket limit.
  const dir = mkdtempSync(`/tmp/wn${slot}-`);
  writeFileSync(join(lockDir, 'workdir'), dir);
  const netns = `warden-node-${slot}`;
  const hostVeth = `wn${slot}h`;
  const nodeVeth = `wn${slot}n`;
  const hostIp = `10.250.${slot}.1`;
  const uplinkIp = `10.250.${slot}.2`;
  const cgroupRoot = `warden-node-${slot}`;
  const cniNetwork = `warden-node-${slot}`;
  const socket = join(dir, 'c.sock');
  for (const d of [
    'pids',
    'logs',
    'pki',
    'cni/net.d',
    'cni/ipam',
    'registry',
    'etcd',
    'kubelet',
    'pod-logs',
    'certs.d/127.0.0.1:5000',
  ]) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  writeFileSync(
    join(dir, 'cluster.env'),
    [
      `NETNS=${netns}`,
      `HOST_VETH=${hostVeth}`,
      `CGROUP_ROOT=${cgroupRoot}`,
      `CNI_NETWORK=${cniNetwork}`,
      `SOCKET=${socket}`,
      `LOCK_DIR=${lockDir}`,
      '',
    ].join('\n'),
  );

  // The watchdog: its own session, so Ctrl-C on the terminal does not reach it; when this
  // process is gone (and the work dir still exists) it runs cleanup.sh.
  const watchdog = spawn(
    'setsid',
    [
      'bash',
      '-c',
      'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done; [ -d "$2" ] && exec "$3" "$2"',
      'warden-cluster-watchdog',
      String(process.pid),
      dir,
      join(here, 'cleanup.sh'),
    ],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  writeFileSync(join(lockDir, 'watchdog'), String(watchdog.pid));

  const procs = new Map<string, ChildProcess>();
  const commands = new Map<string, { argv: string[]; env: NodeJS.ProcessEnv | undefined }>();
  let stopped = false;
  const cleanup = async () => {
    if (stopped) return;
    stopped = true;
    if (opts.keepDir) {
      log(`keeping ${dir}; remove it with e2e/cluster/cleanup.sh ${dir}`);
      return;
    }
    await execFileP(join(here, 'cleanup.sh'), [dir]).catch((err: Error) => log(`cleanup: ${err.message}`));
  };

  const inNode = (argv: string[]) => ['nsenter', `--net=/run/netns/${netns}`, '--', ...argv];
  const startInNode = (name: string, argv: string[], env?: NodeJS.ProcessEnv): ChildProcess => {
    const logPath = join(dir, 'logs', `${name}.log`);
    const fd = openSync(logPath, 'a');
    const [cmd, ...args] = inNode(argv);
    // Own process group, so Ctrl-C does not stop them all at once in arbitrary order;
    // nsenter execs the binary, so the pid recorded is the component's.
    const child = spawn(cmd as string, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: env ?? process.env,
    });
    closeSync(fd);
    child.unref();
    writeFileSync(join(dir, 'pids', name), String(child.pid));
    procs.set(name, child);
    commands.set(name, { argv, env });
    return child;
  };
  const died = (name: string) => {
    const c = procs.get(name);
    return !!c && (c.exitCode !== null || c.signalCode !== null);
  };
  const waitFor = async (what: string, probe: () => Promise<boolean>, timeoutMs: number, logName: string) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (died(logName)) {
        throw new Error(
          `${what} exited during start-up; last log lines:\n${await tail(join(dir, 'logs', `${logName}.log`))}`,
        );
      }
      if (await probe().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      `${what} not ready after ${timeoutMs / 1000} s; last log lines:\n${await tail(join(dir, 'logs', `${logName}.log`))}`,
    );
  };

  try {
    // --- network: the node namespace, its bridge (gateway = node IP) and the uplink -----
    log(`slot ${slot}: network namespace ${netns}, node IP ${NODE_IP}, uplink ${uplinkIp}`);
    await sh(['ip', 'netns', 'add', netns]);
    const ipn = (...args: string[]) => sh(['ip', '-n', netns, ...args]);
    await ipn('link', 'set', 'lo', 'up');
    await ipn('link', 'add', 'cni0', 'type', 'bridge');
    await ipn('addr', 'add', `${NODE_IP}/24`, 'dev', 'cni0');
    await ipn('link', 'set', 'cni0', 'up');
    // The host's uplink addresses (10.250.<slot>.0/30) are routed over the veth only while a
    // cluster runs. A client still aimed at a torn-down cluster (a kept KUBECONFIG, a late
    // poll) would otherwise follow the default route off this machine. This catch-all is
    // less specific than the veth's /30, so it never hides a live cluster, and it is left in
    // place on purpose after cleanup: such a connection then fails here, locally.
    await sh(['ip', 'route', 'replace', 'unreachable', UPLINK_RANGE, 'metric', '4242']);
    await sh(['ip', 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nodeVeth]);
    await sh(['ip', 'link', 'set', nodeVeth, 'netns', netns]);
    await sh(['ip', 'addr', 'add', `${hostIp}/30`, 'dev', hostVeth]);
    await sh(['ip', 'link', 'set', hostVeth, 'up']);
    await ipn('addr', 'add', `${uplinkIp}/30`, 'dev', nodeVeth);
    await ipn('link', 'set', nodeVeth, 'up');
    // Services: the API server, kubelet and the host-side tools reach ClusterIPs without a
    // default route (the socket needs a route before kube-proxy's OUTPUT DNAT).
    await ipn('route', 'add', SERVICE_CIDR, 'dev', 'cni0', 'src', NODE_IP);
    // Pods never leave the node: not to the host, not beyond.
    await sh(
      inNode([
        'iptables',
        '-I',
        'FORWARD',
        '1',
        '-i',
        'cni0',
        '!',
        '-o',
        'cni0',
        '-m',
        'comment',
        '--comment',
        'warden: pods may not leave the node',
        '-j',
        'DROP',
      ]),
    );

    // --- cgroups: one subtree per cluster, removed by cleanup.sh -----------------------
    for (const h of readdirSync('/sys/fs/cgroup')) {
      const base = join('/sys/fs/cgroup', h);
      if (!existsSync(join(base, 'cgroup.procs'))) continue;
      const cg = join(base, cgroupRoot);
      mkdirSync(cg, { recursive: true });
      if (h === 'cpuset') {
        for (const f of ['cpuset.cpus', 'cpuset.mems'])
          writeFileSync(join(cg, f), readFileSync(join(base, f)));
      }
    }

    // --- PKI -----------------------------------------------------------------------------
    const days = 7 * 24 * 3600_000;
    const ca = await createCertificateAuthority(`warden-node-${slot}-ca`, days);
    const pki = (name: string, content: string) => {
      const p = join(dir, 'pki', name);
      writeFileSync(p, content, { mode: 0o600 });
      return p;
    };
    const caFile = pki('ca.crt', ca.certPem);
    const caKeyFile = pki('ca.key', ca.keyPem);
    const serving = await ca.issue({
      commonName: 'kube-apiserver',
      dnsNames: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
      ipAddresses: ['127.0.0.1', '10.0.0.1', NODE_IP, uplinkIp],
      validityMs: days,
      usage: 'server',
    });
    const kubeletServing = await ca.issue({
      commonName: NODE_NAME,
      dnsNames: [NODE_NAME],
      ipAddresses: [NODE_IP, '127.0.0.1'],
      validityMs: days,
      usage: 'server',
    });
    const client = (commonName: string, organization: string[] = []) =>
      ca.issue({ commonName, organization, validityMs: days, usage: 'client' });
    const sa = await generateKeyPair();
    const inner = `https://127.0.0.1:${API_PORT}`;
    const server = `https://${uplinkIp}:${API_PORT}`;
    const identities: [string, string, string[]][] = [
      ['admin', 'admin', ['system:masters']],
      ['kubelet', `system:node:${NODE_NAME}`, ['system:nodes']],
      ['controller-manager', 'system:kube-controller-manager', []],
      ['scheduler', 'system:kube-scheduler', []],
      ['kube-proxy', 'system:kube-proxy', []],
      ['coredns', 'warden-node-coredns', ['system:masters']],
    ];
    const kc: Record<string, string> = {};
    let adminCert = { certPem: '', keyPem: '' };
    for (const [file, cn, org] of identities) {
      const c = await client(cn, org);
      if (file === 'admin') adminCert = c;
      kc[file] = pki(`${file}.kubeconfig`, kubeconfig(inner, ca.certPem, c.certPem, c.keyPem, file));
    }
    const kubeletClient = await client('kube-apiserver-kubelet-client', ['system:masters']);
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfigPath,
      kubeconfig(server, ca.certPem, adminCert.certPem, adminCert.keyPem, 'admin'),
      { mode: 0o600 },
    );

    // --- containerd, etcd, registry --------------------------------------------------------
    const cniConf = {
      cniVersion: '1.0.0',
      name: cniNetwork,
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: join(dir, 'cni', 'ipam'),
            ranges: [[{ subnet: POD_CIDR, gateway: NODE_IP }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    };
    writeFileSync(join(dir, 'cni', 'net.d', '10-warden-node.conflist'), JSON.stringify(cniConf, null, 2));
    writeFileSync(
      join(dir, 'certs.d', '127.0.0.1:5000', 'hosts.toml'),
      'server = "http://127.0.0.1:5000"\n\n[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n',
    );
    const containerdToml = `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
[grpc]
  address = "${socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${REGISTRY_IN_NODE}/pause:warden"
  enable_cdi = false
  # No CAP_SYS_RESOURCE on some VMs: a negative oom_score_adj makes runc init fail.
  restrict_oom_score_adj = true
  # Pod network namespaces under the work dir, so cleanup finds exactly this cluster's.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "${dir}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${dir}/certs.d"
`;
    writeFileSync(join(dir, 'containerd.toml'), containerdToml);
    log('starting containerd, etcd and the registry');
    startInNode('containerd', ['containerd', '--config', join(dir, 'containerd.toml')]);
    startInNode('etcd', [
      bins.etcd,
      `--data-dir=${join(dir, 'etcd')}`,
      '--listen-client-urls=http://127.0.0.1:2379',
      '--advertise-client-urls=http://127.0.0.1:2379',
      '--listen-peer-urls=http://127.0.0.1:2380',
      '--initial-advertise-peer-urls=http://127.0.0.1:2380',
      '--initial-cluster=default=http://127.0.0.1:2380',
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    writeFileSync(
      join(dir, 'registry.yaml'),
      `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'registry')}
  delete:
    enabled: true
http:
  addr: 0.0.0.0:5000
`,
    );
    startInNode('registry', [bins.registry, 'serve', join(dir, 'registry.yaml')], {
      ...process.env,
      OTEL_TRACES_EXPORTER: 'none',
    });

    // --- kube-apiserver --------------------------------------------------------------------
    const saKey = pki('sa.key', sa.keyPem);
    const saPub = pki('sa.pub', sa.publicKeyPem);
    log(`starting kube-apiserver (${server} from the host)`);
    startInNode('kube-apiserver', [
      bins.kubeApiserver,
      '--etcd-servers=http://127.0.0.1:2379',
      `--secure-port=${API_PORT}`,
      '--bind-address=0.0.0.0',
      `--advertise-address=${NODE_IP}`,
      `--tls-cert-file=${pki('apiserver.crt', serving.certPem)}`,
      `--tls-private-key-file=${pki('apiserver.key', serving.keyPem)}`,
      `--client-ca-file=${caFile}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--allow-privileged=true',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      `--kubelet-client-certificate=${pki('apiserver-kubelet-client.crt', kubeletClient.certPem)}`,
      `--kubelet-client-key=${pki('apiserver-kubelet-client.key', kubeletClient.keyPem)}`,
      `--kubelet-certificate-authority=${caFile}`,
      '--kubelet-preferred-address-types=InternalIP',
      '--v=0',
    ]);
    const tls = { ca: ca.certPem, cert: adminCert.certPem, key: adminCert.keyPem };
    await waitFor(
      'registry',
      async () => (await fetch(`http://${uplinkIp}:5000/v2/`)).status === 200,
      60_000,
      'registry',
    );
    // The sandbox image, pushed like any other: the kubelet's first pull.
    const pauseRoot = join(dir, 'images', 'pause');
    mkdirSync(pauseRoot, { recursive: true });
    copyFileSync(bins.pause, join(pauseRoot, 'pause'));
    await buildAndPush(`${REGISTRY_IN_NODE}/pause:warden`, `${uplinkIp}:5000`, [pauseRoot], {
      entrypoint: ['/pause'],
      user: '65535:65535',
      workingDir: '/',
      env: {},
    });
    await waitFor(
      'kube-apiserver',
      async () => (await httpsGet(`${server}/readyz`, tls)).status === 200,
      120_000,
      'kube-apiserver',
    );
    log(`kube-apiserver ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // --- controller-manager, scheduler (after /readyz: RBAC bootstrap done) --------------
    startInNode('kube-controller-manager', [
      bins.kubeControllerManager,
      `--kubeconfig=${kc['controller-manager']}`,
      `--authentication-kubeconfig=${kc['controller-manager']}`,
      `--authorization-kubeconfig=${kc['controller-manager']}`,
      '--bind-address=127.0.0.1',
      '--secure-port=10257',
      '--leader-elect=false',
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${caFile}`,
      '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${caFile}`,
      `--cluster-signing-key-file=${caKeyFile}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--allocate-node-cidrs=false',
      // A node whose kubelet stopped renewing its Lease is NotReady after 24 s (default 50 s),
      // so the kubelet-restart test sees NotReady → Ready without waiting a minute.
      '--node-monitor-grace-period=24s',
      '--node-monitor-period=2s',
    ]);
    startInNode('kube-scheduler', [
      bins.kubeScheduler,
      `--kubeconfig=${kc.scheduler}`,
      `--authentication-kubeconfig=${kc.scheduler}`,
      `--authorization-kubeconfig=${kc.scheduler}`,
      '--bind-address=127.0.0.1',
      '--secure-port=10259',
      '--leader-elect=false',
    ]);

    // --- kubelet, kube-proxy, CoreDNS ----------------------------------------------------------
    writeFileSync(join(dir, 'resolv.conf'), '');
    const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /${cgroupRoot}
containerRuntimeEndpoint: unix://${socket}
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: ${pki('kubelet-serving.crt', kubeletServing.certPem)}
tlsPrivateKeyFile: ${pki('kubelet-serving.key', kubeletServing.keyPem)}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${caFile}}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [${NODE_IP}]
resolvConf: ${join(dir, 'resolv.conf')}
podLogsDir: ${join(dir, 'pod-logs')}
maxPods: 40
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
rotateCertificates: false
serverTLSBootstrap: false
# Renew the node Lease every 5 s (a quarter of its duration; default 10 s of 40 s): well
# within the controller-manager's 24 s grace period above.
nodeLeaseDurationSeconds: 20
nodeStatusUpdateFrequency: 5s
`;
    writeFileSync(join(dir, 'kubelet.yaml'), kubeletConfig);
    startInNode('kubelet', [
      bins.kubelet,
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${kc.kubelet}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${NODE_IP}`,
    ]);
    writeFileSync(
      join(dir, 'kube-proxy.yaml'),
      `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${kc['kube-proxy']}}
mode: iptables
hostnameOverride: ${NODE_NAME}
clusterCIDR: ${POD_CIDR}
bindAddress: ${NODE_IP}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["${NODE_IP}/32"]
conntrack: {maxPerCore: 0}
iptables: {localhostNodePorts: false}
`,
    );
    startInNode('kube-proxy', [bins.kubeProxy, `--config=${join(dir, 'kube-proxy.yaml')}`]);
    writeFileSync(
      join(dir, 'Corefile'),
      `cluster.local:53 {
    bind ${NODE_IP}
    errors
    kubernetes cluster.local {
        kubeconfig ${kc.coredns} warden-node
        pods insecure
    }
    cache 5
}
.:53 {
    bind ${NODE_IP}
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`,
    );
    startInNode('coredns', [bins.coredns, '-conf', join(dir, 'Corefile')]);

    // --- node Ready, then what pods need from the controller-manager ----------------------
    const kubectl = (...args: string[]) => sh([bins.kubectl, `--kubeconfig=${kubeconfigPath}`, ...args]);
    await waitFor(
      'node Ready',
      async () =>
        (
          await kubectl(
            'get',
            'node',
            NODE_NAME,
            '-o',
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
          )
        ).trim() === 'True',
      120_000,
      'kubelet',
    );
    const readyMs = Date.now() - started;
    log(`node ${NODE_NAME} Ready after ${(readyMs / 1000).toFixed(1)} s`);
    await waitFor(
      'default ServiceAccount and kube-root-ca.crt',
      async () => {
        await kubectl('get', 'serviceaccount', 'default', '-n', 'default');
        await kubectl('get', 'configmap', 'kube-root-ca.crt', '-n', 'default');
        return true;
      },
      60_000,
      'kube-controller-manager',
    );

    const cluster: Cluster = {
      kubeconfigPath,
      server,
      caPem: ca.certPem,
      registryPush: `${uplinkIp}:5000`,
      uplinkIp,
      slot,
      netns,
      dir,
      binaries: bins,
      readyMs,
      push: (nameTag, layerDirs, config) =>
        buildAndPush(`${REGISTRY_IN_NODE}/${nameTag}`, `${uplinkIp}:5000`, layerDirs, config),
      startInNode,
      execInNode: (argv) => sh(inNode(argv)),
      podsMemory: () => {
        const hierarchy = ['memory', 'pids', '']
          .map((h) => join('/sys/fs/cgroup', h, cgroupRoot))
          .find((d) => existsSync(join(d, 'cgroup.procs')));
        let bytes = 0;
        const walk = (d: string) => {
          for (const e of readdirSync(d, { withFileTypes: true })) {
            if (e.isDirectory()) walk(join(d, e.name));
          }
          for (const pid of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
            try {
              const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
              bytes += Number(kb ?? 0) * 1024;
            } catch {
              // exited meanwhile
            }
          }
        };
        if (hierarchy) walk(hierarchy);
        return bytes;
      },
      stopComponent: async (name) => {
        const child = procs.get(name);
        if (!child) throw new Error(`no component ${name}: one of ${[...procs.keys()].join(', ')}`);
        if (died(name)) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
        log(`${name} stopped`);
      },
      startComponent: (name) => {
        const command = commands.get(name);
        if (!command) throw new Error(`no component ${name}: one of ${[...commands.keys()].join(', ')}`);
        if (!died(name)) throw new Error(`${name} is running; stopComponent('${name}') first`);
        startInNode(name, command.argv, command.env);
        log(`${name} started again`);
      },
      memory: () => {
        const out: Record<string, number> = {};
        for (const [name, child] of procs) {
          try {
            const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
            const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
            out[name] = kb * 1024;
          } catch {
            // exited
          }
        }
        return out;
      },
      stop: async () => {
        // Nothing may recreate what is deleted; then pods, while the kubelet runs: it tears
        // down their network and volumes.
        for (const name of ['kube-controller-manager', 'kube-scheduler']) procs.get(name)?.kill('SIGTERM');
        await kubectl(
          'delete',
          'pods',
          '--all',
          '-A',
          '--grace-period=1',
          '--wait=true',
          '--timeout=30s',
        ).catch(() => {});
        await cleanup();
      },
    };
    return cluster;
  } catch (err) {
    await cleanup();
    throw err;
  }
}
