/**
 * `kubectl warden audit --verify` against the real control plane, run as users run it: a child
 * process with a kubeconfig of a read-only auditor (get/list on AuditRecords and AgentIdentities,
 * plus the chart's read access to the published audit keys). The trail is written by the real
 * AuditWriter with keys kept in a real Secret and published in the real ConfigMap; the attacks
 * are made with an admin client, as anyone allowed to create or delete AuditRecords could.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AUDIT_KEY_ROTATION, PublishedAuditKeys } from '../../audit/keyset.js';
import { AuditWriter } from '../../audit/writer.js';
import { SecretKeyStore } from '../../authority/keystore.js';
import type { AuditEntry, AuditRecord, AuditRecordSpec } from '../../core/api/index.js';
import { recordName, sealRecord } from '../../core/audit/chain.js';
import { signRecord } from '../../core/audit/signature.js';
import {
  API_VERSION,
  AUDIT_KEYS_CONFIGMAP,
  AUDIT_KEYS_CONFIGMAP_KEY,
  AUDIT_SIGNING_KEYS_SECRET,
  LABEL_AGENT,
  PLURAL,
} from '../../core/constants.js';
import { freshNamespace, kubeConfig, kubectl } from '../../e2e/harness/index.js';
import { KubeConfigApi, type ObjectList } from '../../kube/kube.js';

const run = promisify(execFile);
const log = pino({ level: 'silent' });
const admin = () => new KubeConfigApi(kubeConfig());
const records = (ns: string) => `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`;

async function cli(args: string[], kubeconfig: string) {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', 'cli/kubectl-warden.ts', ...args],
      { env: { ...process.env, KUBECONFIG: kubeconfig } },
    );
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

const entry = (i: number): AuditEntry => ({
  time: new Date(Date.UTC(2026, 11, 4, 12, 0, i)).toISOString(),
  kind: 'Decision',
  decision: 'Allow',
  tool: 'jira.get_issue',
  requestId: `req-${i}`,
});

/** Warden's namespace with the reader Role of config/rbac/ (what the chart installs). */
async function wardenNamespace(): Promise<string> {
  const wns = await freshNamespace('warden');
  for (const f of ['audit_keys_reader_role.yaml', 'audit_keys_reader_binding.yaml']) {
    const manifest = readFileSync(join('config', 'rbac', f), 'utf8').replace(
      'namespace: warden-system',
      `namespace: ${wns}`,
    );
    const r = await kubectl(['apply', '-f', '-'], { input: manifest });
    expect(r.stderr).toBe('');
  }
  return wns;
}

/** An agents namespace with AgentIdentity bot and a read-only auditor; returns its kubeconfig path. */
async function agentsNamespace(): Promise<{ ns: string; auditor: string }> {
  const ns = await freshNamespace('cli-audit');
  const api = admin();
  await api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'AgentIdentity',
      metadata: { name: 'bot' },
      spec: { serviceAccountName: 'bot' },
    },
  });
  const manifest = `
apiVersion: v1
kind: ServiceAccount
metadata: {name: auditor, namespace: ${ns}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: auditor, namespace: ${ns}}
rules:
  - apiGroups: [warden.dev]
    resources: [auditrecords, agentidentities]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: auditor, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: auditor}
subjects: [{kind: ServiceAccount, name: auditor, namespace: ${ns}}]
`;
  const applied = await kubectl(['apply', '-f', '-'], { input: manifest });
  expect(applied.stderr).toBe('');
  const token = await kubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccountToken({
      name: 'auditor',
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
  const cluster = kubeConfig().getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'auditor', token: token.status?.token ?? '' }],
    contexts: [{ name: 'auditor', cluster: cluster.name, user: 'auditor', namespace: ns }],
    currentContext: 'auditor',
  });
  const path = join(mkdtempSync(join(tmpdir(), 'warden-auditor-')), 'kubeconfig');
  writeFileSync(path, kc.exportConfig());
  return { ns, auditor: path };
}

/** The controller's audit keys (a Secret and the published ConfigMap) on a clock the test moves. */
async function controllerKeys(wns: string) {
  const clock = { now: Date.now() };
  const store = new SecretKeyStore({
    api: new KubeConfigApi(kubeConfig()),
    namespace: wns,
    secretName: AUDIT_SIGNING_KEYS_SECRET,
    policy: AUDIT_KEY_ROTATION,
    now: () => new Date(clock.now),
  });
  await store.sync();
  const keys = new PublishedAuditKeys({
    api: admin(),
    namespace: wns,
    source: store,
    now: () => new Date(clock.now),
  });
  await keys.sync();
  return { clock, store, keys };
}

async function write(keys: PublishedAuditKeys, ns: string, from: number, n: number): Promise<void> {
  const w = new AuditWriter({
    api: admin(),
    keys,
    log,
    limits: { maxEntries: 1, maxBytes: 1 << 20, maxAgeMs: 0 },
  });
  for (let i = from; i < from + n; i++) w.record(ns, 'bot', entry(i));
  await w.stop();
}

async function list(ns: string): Promise<AuditRecord[]> {
  return (await admin().request<ObjectList<AuditRecord>>('GET', records(ns))).items.sort(
    (a, b) => a.spec.sequence - b.spec.sequence,
  );
}

/** An admin creates a record with the name, labels and link the writer would use. */
function create(ns: string, spec: AuditRecordSpec) {
  return admin().request('POST', records(ns), {
    body: {
      apiVersion: API_VERSION,
      kind: 'AuditRecord',
      metadata: { name: recordName(spec.agent, spec.sequence), labels: { [LABEL_AGENT]: spec.agent } },
      spec,
    },
  });
}

/** A trail of `n` signed records of agent bot, written by the real writer. */
async function trail(n: number) {
  const wns = await wardenNamespace();
  const { ns, auditor } = await agentsNamespace();
  const controller = await controllerKeys(wns);
  await write(controller.keys, ns, 0, n);
  const verify = (...extra: string[]) =>
    cli(['audit', '--verify', '-n', ns, '--warden-namespace', wns, ...extra], auditor);
  return { wns, ns, auditor, verify, ...controller };
}

const lines = (out: string, label: string) => out.split('\n').filter((l) => l.startsWith(`  ${label} `));

describe('kubectl warden audit --verify (read access only)', () => {
  it('verifies an intact signed trail with exit 0, as a user who cannot write AuditRecords', async () => {
    const t = await trail(3);
    const canCreate = await kubectl(['auth', 'can-i', 'create', 'auditrecords.warden.dev', '-n', t.ns], {
      kubeconfig: t.auditor,
    });
    expect(canCreate.stdout.trim()).toBe('no');
    const r = await t.verify();
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^audit trail OK in namespace cli-audit-[0-9a-f]+: 3 record\(s\), 3 entries; no forged/,
    );
    expect(r.code).toBe(0);
  });

  const forgeries: Array<
    [string, (prev: AuditRecord, spec: AuditRecordSpec, ns: string) => AuditRecordSpec, RegExp]
  > = [
    [
      'no signature',
      (_prev, spec) => spec,
      /it is not signed, and it was created \S+, after audit signing began/,
    ],
    [
      "the previous record's signature",
      (prev, spec) => ({ ...spec, signature: prev.spec.signature }),
      /the signature by key \S+ does not match the record/,
    ],
    [
      "the attacker's own key",
      (_prev, spec, ns) => ({
        ...spec,
        signature: signRecord(ns, spec, {
          kid: 'attacker',
          privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
        }),
      }),
      /key attacker is not among the published audit keys/,
    ],
  ];

  it.each(forgeries)(
    'names a forged record linked to the newest digest (%s) with exit 4; the writer does not chain onto it',
    async (_name, sign, why) => {
      const t = await trail(3);
      const [, , newest] = await list(t.ns);
      if (!newest) throw new Error('no record 2');
      const spec = sealRecord({
        agent: 'bot',
        sequence: 3,
        previousDigest: newest.spec.digest,
        entries: [entry(99)],
      });
      await create(t.ns, sign(newest, spec, t.ns));

      const r = await t.verify();
      expect(r.code).toBe(4);
      expect(lines(r.stdout, 'FORGED')).toEqual([
        expect.stringMatching(
          new RegExp(
            `^ {2}FORGED {5}auditrecord/bot-0000000003: record bot-0000000003 was not written by the Warden controller: ${why.source}`,
          ),
        ),
      ]);
      expect(r.stdout).toContain('exit status 4 (FORGED 4)');

      // The controller writes on: past the forged slot, linked to its own record 2.
      await write(t.keys, t.ns, 3, 1);
      const after = await list(t.ns);
      expect(after.find((x) => x.spec.sequence === 4)?.spec.previousDigest).toBe(newest.spec.digest);
      const again = await t.verify();
      expect(again.code).toBe(4);
      expect(lines(again.stdout, 'FORGED')).toHaveLength(1);
      expect(again.stdout).not.toMatch(/ {2}(GAP|ALTERED|TRUNCATED) /);
    },
  );

  it('names a truncated tail (the newest record deleted) with exit 32', async () => {
    const t = await trail(3);
    await admin().request('DELETE', `${records(t.ns)}/${recordName('bot', 2)}`);
    const r = await t.verify();
    expect(r.code).toBe(32);
    expect(lines(r.stdout, 'TRUNCATED')).toEqual([
      expect.stringMatching(
        /records 2\.\.2 of agent bot are missing: the anchored head is #2 but the newest record is bot-0000000001/,
      ),
    ]);
  });

  it('names an altered entry with exit 16', async () => {
    const t = await trail(3);
    const [, middle] = await list(t.ns);
    if (!middle) throw new Error('no record 1');
    const name = recordName('bot', 1);
    await admin().request('DELETE', `${records(t.ns)}/${name}`);
    const entries = middle.spec.entries.map((e) => ({ ...e, decision: 'Deny' as const }));
    await create(t.ns, { ...middle.spec, entries });
    const r = await t.verify();
    expect(r.code).toBe(16);
    expect(lines(r.stdout, 'ALTERED')).toEqual([
      `  ALTERED    auditrecord/${name}: record ${name} was altered: its digest does not match its content`,
    ]);
  });

  it('names a deleted middle record as a gap with exit 8', async () => {
    const t = await trail(4);
    await admin().request('DELETE', `${records(t.ns)}/${recordName('bot', 1)}`);
    const r = await t.verify();
    expect(r.code).toBe(8);
    expect(lines(r.stdout, 'GAP')).toEqual([
      expect.stringMatching(/auditrecord\/bot-0000000002: records 1\.\.1 of agent bot are missing/),
    ]);
  });

  it('adds up the bits of several problems and says so (--output json too)', async () => {
    const t = await trail(4);
    await admin().request('DELETE', `${records(t.ns)}/${recordName('bot', 1)}`);
    await admin().request('DELETE', `${records(t.ns)}/${recordName('bot', 3)}`);
    const r = await t.verify();
    expect(r.code).toBe(8 + 32);
    expect(r.stdout).toContain('exit status 40 (GAP 8 + TRUNCATED 32)');
    const j = await t.verify('-o', 'json');
    expect(j.code).toBe(40);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, exitCode: 40 });
  });

  it('verifies records signed before and after a key rotation; the old key stays published', async () => {
    const t = await trail(2);
    const firstKid = (await list(t.ns))[0]?.spec.signature?.keyId;
    // Half an hour before the next key signs it is generated and published (prepublish) ...
    t.clock.now += AUDIT_KEY_ROTATION.rotationPeriodMs - 1_800_000;
    await t.store.sync();
    await t.keys.sync();
    expect(t.keys.keySet().keys).toHaveLength(2);
    // ... and once it signs, the next sync drops the old private key.
    t.clock.now += 3_600_000;
    await t.store.sync();
    await t.keys.sync();
    await write(t.keys, t.ns, 2, 2);
    const kids = (await list(t.ns)).map((r) => r.spec.signature?.keyId);
    expect(new Set(kids).size).toBe(2);
    expect(kids.slice(0, 2)).toEqual([firstKid, firstKid]);
    // The retired private key left the Secret; its public key did not leave the ConfigMap.
    const secret = await kubeConfig()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: AUDIT_SIGNING_KEYS_SECRET, namespace: t.wns });
    const ring = JSON.parse(Buffer.from(secret.data?.['keys.json'] ?? '', 'base64').toString()) as {
      keys: Array<{ kid: string }>;
    };
    expect(ring.keys.map((k) => k.kid)).not.toContain(firstKid);
    const r = await t.verify();
    expect(r.stdout).toMatch(/audit trail OK/);
    expect(r.code).toBe(0);
  });

  it('reports an unsigned prefix written before signing began as LEGACY, without failing', async () => {
    const wns = await wardenNamespace();
    const { ns, auditor } = await agentsNamespace();
    let prev = '';
    for (let s = 0; s < 2; s++) {
      const spec = sealRecord({ agent: 'bot', sequence: s, previousDigest: prev, entries: [entry(s)] });
      await create(ns, spec);
      prev = spec.digest;
    }
    // creationTimestamp has whole seconds: begin signing in a later second than the old records.
    await new Promise((r) => setTimeout(r, 1100));
    const { keys } = await controllerKeys(wns);
    await write(keys, ns, 2, 1);
    const r = await cli(['audit', '--verify', '-n', ns, '--warden-namespace', wns], auditor);
    expect(r.code).toBe(0);
    expect(lines(r.stdout, 'LEGACY')).toEqual([
      expect.stringMatching(
        /records 0\.\.1 of agent bot are unsigned: written before audit signing began; the signed record bot-0000000002 chains onto them/,
      ),
    ]);
  });

  it('verifies with a saved copy of the keys (--keys) and names every record forged under foreign keys', async () => {
    const t = await trail(2);
    const cm = await admin().request<{ data: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${t.wns}/configmaps/${AUDIT_KEYS_CONFIGMAP}`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'warden-keys-'));
    const saved = join(dir, 'audit-keys.json');
    writeFileSync(saved, cm.data[AUDIT_KEYS_CONFIGMAP_KEY] ?? '');
    expect((await t.verify('--keys', saved)).code).toBe(0);
    const foreign = join(dir, 'foreign.json');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    writeFileSync(foreign, JSON.stringify({ keys: [{ ...other, kid: 'other' }] }));
    const r = await t.verify('--keys', foreign);
    // Both records and the anchored head are forged under keys the auditor does not trust.
    expect(r.code).toBe(4);
    expect(lines(r.stdout, 'FORGED')).toHaveLength(3);
  });

  it('fails with exit 1 and says where the keys are expected when they cannot be read', async () => {
    const t = await trail(1);
    const r = await cli(['audit', '--verify', '-n', t.ns, '--warden-namespace', t.ns], t.auditor);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`error: ConfigMap ${t.ns}/${AUDIT_KEYS_CONFIGMAP}: forbidden .*or pass --keys FILE`),
    );
  });

  it('documents the exit statuses in --help', async () => {
    const r = await cli(['audit', '--help'], join(tmpdir(), 'no-kubeconfig'));
    expect(r.stdout).toMatch(/ {2}4 {3}FORGED /);
    expect(r.stdout).toMatch(/ {2}8 {3}GAP /);
    expect(r.stdout).toMatch(/ {2}16 {2}ALTERED /);
    expect(r.stdout).toMatch(/ {2}32 {2}TRUNCATED /);
  });
});
