/**
 * The plugin as kubectl runs it: `scripts/finish-build.sh` lays out <dist>/bin the way `make build`
 * does (here around a shim that loads the TypeScript sources, so the test needs no 1-minute tsc
 * build), <dist>/bin goes on PATH, and every case is a real `kubectl warden …` invocation of the
 * project's kubectl against the shared control plane.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { API_VERSION, GROUP, PLURAL, VERSION } from '../core/constants.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../e2e/harness/index.js';
import { KubeConfigApi, resourcePath } from '../kube/kube.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

let dist = '';
let env: NodeJS.ProcessEnv = {};

/** `kubectl <args>` with the plugin on PATH and no KUBECONFIG: every case names its kubeconfig. */
async function kubectl(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run('kubectl', args, { env, timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

const warden = (...args: string[]) => kubectl(['warden', ...args]);

/** A kubeconfig whose current context points nowhere, plus a `good` context with a namespace. */
function writeKubeconfig(dir: string, namespace: string, badServer: string): string {
  const kc = parseYaml(readFileSync(kubeconfigPath(), 'utf8')) as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
    contexts: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
    'current-context': string;
  };
  const base = kc.contexts[0];
  if (!base) throw new Error('harness kubeconfig has no context');
  const cluster = kc.clusters.find((c) => c.name === base.context.cluster);
  kc.clusters.push({ name: 'nowhere', cluster: { ...cluster?.cluster, server: badServer } });
  kc.contexts = [
    { name: 'good', context: { ...base.context, namespace } },
    { name: 'nowhere', context: { ...base.context, cluster: 'nowhere' } },
  ];
  kc['current-context'] = 'nowhere';
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, stringify(kc), { mode: 0o600 });
  return path;
}

describe('kubectl warden, through kubectl', () => {
  let ns = '';
  let ns2 = '';
  let kubeconfig = '';
  let silent: Server;

  beforeAll(async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'warden-plugin-'));
    dist = join(tmp, 'dist');
    mkdirSync(join(dist, 'cli'), { recursive: true });
    const tsx = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
    const src = pathToFileURL(join(ROOT, 'cli/kubectl-warden.ts')).href;
    writeFileSync(
      join(dist, 'cli/kubectl-warden.js'),
      `#!/usr/bin/env node\nimport '${tsx}';\nawait import('${src}');\n`,
    );
    writeFileSync(join(dist, 'cli/warden.js'), '#!/usr/bin/env node\n');
    chmodSync(join(dist, 'cli/kubectl-warden.js'), 0o644); // as tsc leaves it
    await run(join(ROOT, 'scripts/finish-build.sh'), [dist]);
    const { KUBECONFIG: _ignored, ...rest } = process.env;
    env = { ...rest, PATH: `${join(dist, 'bin')}:${dirname(process.execPath)}:${process.env.PATH}` };

    // A server that accepts connections and never answers: --request-timeout must end the wait.
    silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;

    ns = await freshNamespace('plugin');
    ns2 = await freshNamespace('plugin-b');
    kubeconfig = writeKubeconfig(tmp, ns, `https://127.0.0.1:${port}`);
    const api = new KubeConfigApi(kubeConfig());
    const ref = { group: GROUP, version: VERSION, plural: PLURAL.AgentIdentity };
    for (const [namespace, name, suspended] of [
      [ns, 'support-bot', false],
      [ns, 'ops-bot', true],
      [ns2, 'billing-bot', false],
    ] as const) {
      await api.request('POST', resourcePath(ref, namespace), {
        body: {
          apiVersion: API_VERSION,
          kind: 'AgentIdentity',
          metadata: { name, namespace },
          spec: { serviceAccountName: name, suspended, ...(suspended ? { suspendReason: 'INC-7' } : {}) },
        },
      });
    }
    await api.request('PATCH', resourcePath(ref, ns, 'support-bot', 'status'), {
      body: {
        status: {
          decisions: { allowed: 7, denied: 2, lastDenialReason: 'ConditionFailed: no ticket' },
          lastSeen: new Date().toISOString(),
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'Ready',
              message: 'ok',
              lastTransitionTime: new Date().toISOString(),
            },
          ],
        },
      },
      contentType: 'application/merge-patch+json',
    });
  }, 120_000);

  afterAll(() => {
    silent?.close();
  });

  it('is listed by `kubectl plugin list` without a warning (executable, on PATH as kubectl-warden)', async () => {
    const r = await kubectl(['plugin', 'list', '--name-only']);
    expect(r.stdout).toContain('kubectl-warden');
    expect(r.stderr).not.toMatch(/warning.*kubectl-warden|not executable/i);
  });

  it('prints its version with --version and `version -o json`', async () => {
    const v = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
    expect((await warden('--version')).stdout.trim()).toBe(v);
    const r = await warden('version', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).clientVersion.version).toBe(v);
  });

  it('uses --kubeconfig and --context, and the context namespace when -n is absent', async () => {
    const r = await warden('status', '--kubeconfig', kubeconfig, '--context', 'good', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { agents: { namespace: string; name: string }[] };
    expect(out.agents.map((a) => `${a.namespace}/${a.name}`)).toEqual([`${ns}/ops-bot`, `${ns}/support-bot`]);
  });

  it('refuses an unknown --context, naming the known ones', async () => {
    const r = await warden('status', '--kubeconfig', kubeconfig, '--context', 'typo');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      '--context: context "typo" not found in the kubeconfig (known: good, nowhere)',
    );
  });

  it('gives up after --request-timeout when the API server does not answer', async () => {
    const r = await warden('status', '--kubeconfig', kubeconfig, '--request-timeout', '1s');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no answer within --request-timeout');
  });

  it('refuses a malformed --request-timeout with exit 2', async () => {
    const r = await warden(
      'status',
      '--kubeconfig',
      kubeconfig,
      '--context',
      'good',
      '--request-timeout',
      'soon',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--request-timeout: "soon" is not a duration');
  });

  it('-n picks another namespace, flags before or after the command', async () => {
    const r = await warden(
      '-n',
      ns2,
      'status',
      '--kubeconfig',
      kubeconfig,
      '--context',
      'good',
      '-o',
      'yaml',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = parseYaml(r.stdout) as { agents: { name: string }[] };
    expect(out.agents.map((a) => a.name)).toEqual(['billing-bot']);
  });

  it('-A / --all-namespaces spans namespaces with a NAMESPACE column and an overview', async () => {
    const r = await warden('status', '--kubeconfig', kubeconfig, '--context', 'good', '-A');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^NAMESPACE\s+AGENT\s+READY\s+SUSPENDED\s+ALLOWED\s+DENIED\s+LAST SEEN\s+CREDENTIALS\s+REVOCATION\s+AUDIT$/,
    );
    expect(r.stdout).toMatch(
      new RegExp(`${ns}\\s+support-bot\\s+True\\s+no\\s+7\\s+2\\s+\\d+s\\s+0\\s+-\\s+ok \\(0 entries\\)`),
    );
    expect(r.stdout).toMatch(new RegExp(`${ns2}\\s+billing-bot\\s+Unknown\\s+no`));
    expect(r.stdout).toMatch(new RegExp(`^${ns}\\s+2\\s+1\\s+1\\s+0/0 ready`, 'm'));
    const all = await warden(
      'status',
      '--kubeconfig',
      kubeconfig,
      '--context',
      'good',
      '--all-namespaces',
      '-o',
      'json',
    );
    const names = (JSON.parse(all.stdout) as { agents: { name: string }[] }).agents.map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(['support-bot', 'ops-bot', 'billing-bot']));
  });

  it('-o wide adds the suspension time, reason and last denial', async () => {
    const r = await warden('status', '--kubeconfig', kubeconfig, '--context', 'good', '-o', 'wide');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/AUDIT\s+SUSPENDED AT\s+REASON\s+LAST DENIAL$/);
    expect(r.stdout).toMatch(/ops-bot\s.*\sINC-7\s/);
    expect(r.stdout).toContain('ConditionFailed: no ticket');
  });

  it('status <agent> shows one agent; an unknown one exits 1', async () => {
    const one = await warden(
      'status',
      'support-bot',
      '--kubeconfig',
      kubeconfig,
      '--context',
      'good',
      '-o',
      'json',
    );
    expect((JSON.parse(one.stdout) as { agents: unknown[] }).agents).toHaveLength(1);
    const none = await warden('status', 'nobody', '--kubeconfig', kubeconfig, '--context', 'good');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`AgentIdentity ${ns}/nobody not found`);
  });

  it('refuses an unknown -o format with exit 2, naming the choices', async () => {
    const r = await warden('status', '-o', 'xml', '--kubeconfig', kubeconfig);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Allowed choices are table, wide, json, yaml, csv.');
  });

  it('refuses -A for commands that work in one namespace', async () => {
    const r = await warden('kill', 'support-bot', '-A', '--kubeconfig', kubeconfig, '--context', 'good');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('kill: --all-namespaces is not supported; name the namespace with -n');
  });

  it('audit takes the same flags (-A, -o yaml)', async () => {
    const r = await warden('audit', '-A', '-o', 'yaml', '--kubeconfig', kubeconfig, '--context', 'good');
    expect(r.code, r.stderr).toBe(0);
    expect(Array.isArray(parseYaml(r.stdout))).toBe(true);
  });

  it('completes through kubectl (kubectl_complete-warden) and prints bash and zsh scripts', async () => {
    const sub = await kubectl(['__complete', 'warden', 'ki']);
    expect(sub.stdout.split('\n')).toContain('kill');
    const agents = await kubectl([
      '__complete',
      'warden',
      'kill',
      '--kubeconfig',
      kubeconfig,
      '--context',
      'good',
      '',
    ]);
    expect(agents.stdout.split('\n')).toEqual(expect.arrayContaining(['ops-bot', 'support-bot']));
    const out = await kubectl(['__complete', 'warden', 'status', '-o', '']);
    expect(out.stdout.split('\n')).toEqual(expect.arrayContaining(['table', 'wide', 'json', 'yaml']));
    expect((await warden('completion', 'bash')).stdout).toContain(
      'complete -F _kubectl_warden kubectl-warden',
    );
    expect((await warden('completion', 'zsh')).stdout).toContain('compdef _kubectl_warden kubectl-warden');
    const bad = await warden('completion', 'fish');
    expect(bad.code).toBe(2);
    // Six plugin start-ups through the tsx shim: about 10 s on an idle machine, over 60 s at a
    // load average of 30 on 2 cores, hence its own timeout.
  }, 240_000);
});
