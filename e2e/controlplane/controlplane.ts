/**
 * A real local Kubernetes control plane: etcd + kube-apiserver built from their Go
 * modules (build.sh), started as child processes on free loopback ports.
 *
 * Used by the test globalSetup, the demo, benchmarks and `make controlplane`.
 * Children are supervised by a small watchdog shell that kills them (and removes
 * the temp dir) when this Node process goes away, even on SIGKILL, so an
 * interrupted test run leaves no orphaned processes or ports behind.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createCertificateAuthority, generateKeyPair } from '../../core/x509.js';

const here = dirname(fileURLToPath(import.meta.url));
const execFileP = promisify(execFile);

export interface Binaries {
  kubeApiserver: string;
  etcd: string;
  /** kubectl of the same version as kube-apiserver. */
  kubectl: string;
}

export interface ControlPlane {
  /** Path of an admin kubeconfig (CN admin, O system:masters). */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Service-account token issuer (an https URL, so /openid/v1/jwks is served). */
  issuer: string;
  /** PEM of the CA that signed the serving and admin certificates. */
  caPem: string;
  /** Admin client certificate and key, PEM. */
  adminCertPem: string;
  adminKeyPem: string;
  /** The binaries it runs (kubectl included). */
  binaries: Binaries;
  /** etcd's client URL (plain http on loopback; /metrics for the benchmarks' database size). */
  etcdUrl: string;
  /** Temp dir holding certs, keys, etcd data and logs; removed by stop(). */
  dir: string;
  /** Stops kube-apiserver and starts it again on the same port (etcd keeps the data). */
  restartApiServer(): Promise<void>;
  /** Stops kube-apiserver only (fault tests); startApiServer() brings it back. */
  stopApiServer(): Promise<void>;
  /** SIGKILLs kube-apiserver (a crash: no graceful shutdown); startApiServer() brings it back. */
  killApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  binaries?: Binaries;
  /** Progress lines ("starting etcd"); defaults to silence. */
  log?: (line: string) => void;
  /** Keep the temp dir after stop (debugging). */
  keepDir?: boolean;
}

type Log = (line: string) => void;

/** Builds the binaries if missing (showing build progress on stderr) and returns their paths. */
export async function ensureBinaries(log: Log = (l) => process.stderr.write(`${l}\n`)): Promise<Binaries> {
  const script = join(here, 'build.sh');
  const out = await new Promise<string>((resolve, reject) => {
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
  const vars = Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  if (!vars.KUBE_APISERVER || !vars.ETCD || !vars.KUBECTL) {
    throw new Error(`${script} did not print the binary paths`);
  }
  return { kubeApiserver: vars.KUBE_APISERVER, etcd: vars.ETCD, kubectl: vars.KUBECTL };
}

/**
 * Puts the built kubectl first on PATH for this process and its children, so tests,
 * the demo and the CLI talk to the API server with a client of the same version.
 */
export function useBuiltKubectl(bins: Binaries): void {
  const dir = dirname(bins.kubectl);
  const path = process.env.PATH ?? '';
  if (!path.split(':').includes(dir)) process.env.PATH = `${dir}:${path}`;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// The watchdog: runs the binary in the background, kills it when the parent (this
// Node process) disappears or when asked to stop, then exits. SIGTERM first, SIGKILL
// after a grace period; SIGUSR1 SIGKILLs the binary at once (a crash). Removing the temp dir on parent death is done by the etcd
// watchdog only (cleanupDir) since etcd is started first and stopped last.
const WATCHDOG = `
parent=$1; cleanup=$2; shift 2
"$@" &
child=$!
stop() { kill -TERM "$child" 2>/dev/null; for i in $(seq 1 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$child" 2>/dev/null; wait "$child" 2>/dev/null; }
trap 'stop; exit 0' TERM INT
trap 'kill -KILL "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 137' USR1
while kill -0 "$child" 2>/dev/null; do
  if ! kill -0 "$parent" 2>/dev/null; then stop; [ -n "$cleanup" ] && rm -rf "$cleanup"; exit 0; fi
  sleep 1 & wait $!
done
wait "$child"; exit $?
`;

export interface Supervised {
  child: ChildProcess;
  exited: Promise<number | null>;
}

export function supervise(name: string, args: string[], logPath: string, cleanupDir = ''): Supervised {
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn('bash', ['-c', WATCHDOG, 'watchdog', String(process.pid), cleanupDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.on('error', (err) => log.write(`[${name}] spawn error: ${err.message}\n`));
  return { child, exited };
}

export async function stopSupervised(s: Supervised | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGTERM');
  await s.exited;
}

async function tail(path: string, lines = 20): Promise<string> {
  try {
    const { stdout } = await execFileP('tail', ['-n', String(lines), path]);
    return stdout;
  } catch {
    return '';
  }
}

export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  died: () => boolean,
  logPath: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (died()) throw new Error(`${what} exited during start-up; last log lines:\n${await tail(logPath)}`);
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000} s; last log lines:\n${await tail(logPath)}`);
}

function httpsGet(url: string, tls: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, timeout: 2000 }, (res) => {
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

/**
 * Paths of the established CRDs the API server does not serve for writes yet. Lists can work
 * seconds before writes do: admission (the chart's MutatingAdmissionPolicy on AgentIdentity)
 * needs the kind's schema and answers 503 "Resource kind … not found" until it has it. So the
 * probe is a server-side dry-run create of an empty object: a validation error (422) means the
 * kind is served; only a 503 or 404 means not yet. Nothing is stored.
 */
export async function unservedCrds(server: string, tls: https.RequestOptions): Promise<string[]> {
  const res = await httpsGet(`${server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, tls);
  if (res.status !== 200) return ['customresourcedefinitions'];
  const crds = (
    JSON.parse(res.body) as {
      items: {
        spec: {
          group: string;
          scope: string;
          names: { plural: string; kind: string };
          versions: { name: string; served: boolean }[];
        };
        status?: { conditions?: { type: string; status: string }[] };
      }[];
    }
  ).items;
  const unserved: string[] = [];
  for (const crd of crds) {
    const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    const version = crd.spec.versions.find((v) => v.served)?.name;
    if (!established || !version) continue;
    const where = crd.spec.scope === 'Namespaced' ? '/namespaces/default' : '';
    const path = `/apis/${crd.spec.group}/${version}${where}/${crd.spec.names.plural}?dryRun=All`;
    const body = JSON.stringify({
      apiVersion: `${crd.spec.group}/${version}`,
      kind: crd.spec.names.kind,
      metadata: { name: 'served-probe' },
    });
    const status = await httpsPost(`${server}${path}`, body, tls);
    if (status === 503 || status === 404) unserved.push(path);
  }
  return unserved;
}

function httpsPost(url: string, body: string, tls: https.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { ...tls, method: 'POST', timeout: 5000, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function httpGetPlain(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return res.status;
}

function kubeconfigYaml(server: string, caPem: string, certPem: string, keyPem: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: warden-local
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(caPem)}
users:
- name: admin
  user:
    client-certificate-data: ${b64(certPem)}
    client-key-data: ${b64(keyPem)}
contexts:
- name: warden-local
  context:
    cluster: warden-local
    user: admin
current-context: warden-local
`;
}

/** Starts etcd and kube-apiserver; resolves once /readyz answers ok. */
export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const log: Log = opts.log ?? (() => {});
  const bins = opts.binaries ?? (await ensureBinaries(log));
  const dir = mkdtempSync(join(tmpdir(), 'warden-cp-'));
  const started = Date.now();
  let etcd: Supervised | undefined;
  let apiserver: Supervised | undefined;
  const stopAll = async () => {
    await stopSupervised(apiserver);
    await stopSupervised(etcd);
    if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const server = `https://127.0.0.1:${apiPort}`;
    const issuer = server;

    // PKI: one CA signs the serving cert and the admin client cert; an ECDSA key pair signs SA tokens.
    const ca = await createCertificateAuthority('warden-local-ca', 7 * 24 * 3600_000);
    const serving = await ca.issue({
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1', '10.0.0.1'],
      validityMs: 7 * 24 * 3600_000,
      usage: 'server',
    });
    const admin = await ca.issue({
      commonName: 'admin',
      organization: ['system:masters'],
      validityMs: 7 * 24 * 3600_000,
      usage: 'client',
    });
    const sa = await generateKeyPair();
    const f = (name: string, content: string) => {
      const p = join(dir, name);
      writeFileSync(p, content, { mode: 0o600 });
      return p;
    };
    const caFile = f('ca.crt', ca.certPem);
    const servingCert = f('apiserver.crt', serving.certPem);
    const servingKey = f('apiserver.key', serving.keyPem);
    const saKey = f('sa.key', sa.keyPem);
    const saPub = f('sa.pub', sa.publicKeyPem);
    const kubeconfigPath = f('kubeconfig', kubeconfigYaml(server, ca.certPem, admin.certPem, admin.keyPem));

    log(`starting etcd on 127.0.0.1:${etcdClient}`);
    const etcdLog = join(dir, 'etcd.log');
    etcd = supervise(
      'etcd',
      [
        bins.etcd,
        `--data-dir=${join(dir, 'etcd-data')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      etcdLog,
      opts.keepDir ? '' : dir,
    );
    const etcdProc = etcd;
    await waitFor(
      'etcd',
      async () => (await httpGetPlain(`http://127.0.0.1:${etcdClient}/health`)) === 200,
      30_000,
      () => etcdProc.child.exitCode !== null,
      etcdLog,
    );

    const apiLog = join(dir, 'kube-apiserver.log');
    const apiArgs = [
      bins.kubeApiserver,
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--secure-port=${apiPort}`,
      '--bind-address=127.0.0.1',
      // No default route on these machines: advertise loopback, and skip the endpoint
      // reconciler that rejects a loopback advertise address.
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--tls-cert-file=${servingCert}`,
      `--tls-private-key-file=${servingKey}`,
      `--client-ca-file=${caFile}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      `--service-account-issuer=${issuer}`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--v=0',
    ];
    const startApi = async () => {
      log(`starting kube-apiserver on ${server}`);
      const proc = supervise('kube-apiserver', apiArgs, apiLog);
      apiserver = proc;
      const tls = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
      await waitFor(
        'kube-apiserver',
        async () => (await httpsGet(`${server}/readyz`, tls)).status === 200,
        120_000,
        () => proc.child.exitCode !== null,
        apiLog,
      );
      // /readyz turns 200 before a (re)started server serves writes of the custom resources it
      // has: until then creates answer 503 "Resource kind … not found". A start is over (for
      // the tests and the demo alike) once every established CRD takes writes again.
      await waitFor(
        'kube-apiserver to serve writes of its custom resources',
        async () => (await unservedCrds(server, tls)).length === 0,
        120_000,
        () => proc.child.exitCode !== null,
        apiLog,
      );
    };
    await startApi();
    log(`control plane ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const cp: ControlPlane = {
      kubeconfigPath,
      server,
      issuer,
      caPem: ca.certPem,
      adminCertPem: admin.certPem,
      adminKeyPem: admin.keyPem,
      binaries: bins,
      etcdUrl: `http://127.0.0.1:${etcdClient}`,
      dir,
      stopApiServer: async () => {
        await stopSupervised(apiserver);
      },
      killApiServer: async () => {
        const s = apiserver;
        if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
        // SIGKILL to the watchdog would kill only the bash wrapper: kube-apiserver would live on,
        // orphaned, serving on the port (a "restart" then found it ready at once). SIGUSR1 makes
        // the watchdog SIGKILL kube-apiserver itself and exit once it is gone.
        s.child.kill('SIGUSR1');
        await s.exited;
      },
      startApiServer: startApi,
      restartApiServer: async () => {
        await stopSupervised(apiserver);
        await startApi();
      },
      stop: stopAll,
    };
    return cp;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
