import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parsePublishedKeys } from '../../audit/keyset.js';
import type { AgentIdentity, AuditRecord } from '../../core/api/index.js';
import { type NamedRecord, parsePrunedThrough, type VerifyResult } from '../../core/audit/chain.js';
import { agentLabelValue, labelMismatches } from '../../core/audit/labels.js';
import { AuditKeySet } from '../../core/audit/signature.js';
import { examineRecord, type TrailAgent, verifyExamined } from '../../core/audit/verify.js';
import {
  AUDIT_KEYS_CONFIGMAP,
  AUDIT_KEYS_CONFIGMAP_KEY,
  DEFAULT_WARDEN_NAMESPACE,
  LABEL_AGENT,
  PLURAL,
} from '../../core/constants.js';
import { ApiError, resourcePath } from '../../kube/kube.js';
import { prunedThroughOf } from '../../operator/reconcilers/audit-retention.js';
import {
  type AuditFilter,
  type AuditRow,
  auditSelectors,
  formatTable,
  formatVerify,
  matchingRows,
  parseDecision,
  parseSince,
  sortRows,
  VERIFY_EXIT_HELP,
  verifyExitCode,
} from '../audit-view.js';
import { CliError, type CliIO, type CommandFactory } from '../command.js';
import { globalsOf, printStructured } from '../globals.js';
import { type CliKube, connect, WARDEN_REF } from '../kube.js';

interface AuditOptions {
  agent?: string;
  user?: string;
  tool?: string;
  decision?: string;
  since?: string;
  until?: string;
  verify?: boolean;
  wardenNamespace: string;
  keys?: string;
}

/**
 * The published audit keys: a saved copy (--keys, for an auditor who pins them out of band) or
 * the ConfigMap in Warden's namespace, which every authenticated user may read.
 */
async function auditKeys(
  kube: CliKube,
  opts: AuditOptions,
): Promise<{ keys: AuditKeySet; signingSince?: number }> {
  let text: string;
  let where: string;
  if (opts.keys) {
    where = `--keys ${opts.keys}`;
    try {
      text = readFileSync(opts.keys, 'utf8');
    } catch (err) {
      throw new CliError(`${where}: cannot read the file (${(err as Error).message})`);
    }
  } else {
    const ns = opts.wardenNamespace;
    where = `ConfigMap ${ns}/${AUDIT_KEYS_CONFIGMAP}`;
    let cm: { data?: Record<string, string> };
    try {
      cm = await kube.api.request('GET', `/api/v1/namespaces/${ns}/configmaps/${AUDIT_KEYS_CONFIGMAP}`);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) {
        throw new CliError(
          `${where} not found: the audit keys are published there by warden controller; pass --warden-namespace if Warden runs elsewhere, or --keys FILE with a saved copy`,
        );
      }
      if (err instanceof ApiError && err.code === 403) {
        throw new CliError(
          `${where}: forbidden — the chart lets every authenticated user get it (Role ${AUDIT_KEYS_CONFIGMAP}-reader); or pass --keys FILE with a saved copy`,
        );
      }
      throw new CliError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const data = cm.data?.[AUDIT_KEYS_CONFIGMAP_KEY];
    if (!data) throw new CliError(`${where}: data["${AUDIT_KEYS_CONFIGMAP_KEY}"] is missing`);
    text = data;
    where = `${where} data["${AUDIT_KEYS_CONFIGMAP_KEY}"]`;
  }
  try {
    const parsed = parsePublishedKeys(text, where);
    return {
      keys: new AuditKeySet(parsed.keys),
      ...(parsed.signingSince !== undefined ? { signingSince: parsed.signingSince } : {}),
    };
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

const createAuditCommand: CommandFactory = (io: CliIO) =>
  new Command('audit')
    .description(
      'Show the audit trail (AuditRecords): who did what, for whom, and why it was allowed or denied',
    )
    .option('--agent <name>', 'only this AgentIdentity')
    .option(
      '--user <subject>',
      'only this user: the subject, as broker and authority entries record it ("agent acting alone" for none; "alice (https://idp.example)" for one issuer\'s; * globs)',
    )
    .option('--tool <name>', 'only this tool or target (* globs, e.g. "jira.*")')
    .option('--decision <Allow|Deny>', 'only allowed or denied')
    .option('--since <when>', 'only entries newer than a duration (30m, 1h, 2d) or an RFC 3339 time')
    .option('--until <when>', 'only entries older than a duration (30m, 1h, 2d) or an RFC 3339 time')
    .option(
      '--verify',
      "verify the trail: every record signed by the controller's audit key, chains without gaps or altered records, and reaching the head anchored in the AgentIdentity status",
    )
    .option(
      '--warden-namespace <ns>',
      `namespace of Warden, whose ConfigMap ${AUDIT_KEYS_CONFIGMAP} publishes the audit keys`,
      DEFAULT_WARDEN_NAMESPACE,
    )
    .option(
      '--keys <file>',
      `verify with a saved copy of the published audit keys (the JWKS in ConfigMap ${AUDIT_KEYS_CONFIGMAP}) instead of reading it`,
    )
    .addHelpText('after', `\n${VERIFY_EXIT_HELP}`)
    .action(async (opts: AuditOptions, cmd: Command) => {
      const g = globalsOf(cmd);
      const now = Date.now();
      const filter: AuditFilter = {
        ...(opts.agent ? { agent: opts.agent } : {}),
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.tool ? { tool: opts.tool } : {}),
        ...(opts.decision ? { decision: parseDecision(opts.decision) } : {}),
        ...(opts.since ? { sinceMs: parseSince(opts.since, now) } : {}),
        ...(opts.until ? { untilMs: parseSince(opts.until, now, '--until') } : {}),
      };
      if (filter.sinceMs !== undefined && filter.untilMs !== undefined && filter.untilMs < filter.sinceMs) {
        throw new CliError('--until is before --since: nothing can match; swap them', 2);
      }
      const kube = connect(g);
      const ns = kube.allNamespaces ? undefined : kube.namespace;
      const where = ns ? `in namespace ${ns}` : 'in all namespaces';
      const path = resourcePath(WARDEN_REF(PLURAL.AuditRecord), ns);
      const what = `AuditRecords ${where}`;
      const relabelled = new Set<string>();
      if (opts.verify) {
        const agents = await kube.list<AgentIdentity>(
          resourcePath(WARDEN_REF(PLURAL.AgentIdentity), ns),
          {},
          `AgentIdentities ${where}`,
        );
        const { keys, signingSince } = await auditKeys(kube, opts);
        // Streamed: each page of records is checked as it arrives and only ~300 bytes per record
        // are kept (the chain checks need sequences and digests, not entries).
        const examined = new Map<string, NamedRecord[]>();
        const createdAt = (r: AuditRecord) =>
          r.metadata?.creationTimestamp ? { createdAt: String(r.metadata.creationTimestamp) } : {};
        for await (const page of kube.pages<AuditRecord>(path, agentQuery(opts.agent), what, VERIFY_PAGE)) {
          warnRelabelled(io, page, relabelled);
          for (const r of page) {
            const rns = r.metadata?.namespace ?? '';
            if (opts.agent && r.spec.agent !== opts.agent) continue;
            const record = {
              ...(r.metadata?.name ? { name: r.metadata.name } : {}),
              spec: r.spec,
              ...createdAt(r),
            };
            const list = examined.get(rns) ?? [];
            list.push(await examineRecord(rns, record, keys, signingSince));
            examined.set(rns, list);
          }
        }
        const result = await verifyByNamespace(examined, agents, opts.agent, keys, signingSince, !ns);
        const exitCode = verifyExitCode(result);
        if (!printStructured(io, g.output, { ...result, exitCode })) {
          io.out(formatVerify(ns ?? 'all namespaces', result));
        }
        if (exitCode !== 0) process.exitCode = exitCode;
        return;
      }
      // Label selectors narrow what the API server sends (agent, denied, end hour); the filter
      // then reads each page and keeps only matching rows. Labels are not signed: each listed
      // record's labels are re-derived from its signed spec and a relabelled one is named.
      const rows: AuditRow[] = [];
      for (const labelSelector of auditSelectors(filter, now)) {
        const query: Record<string, string> = labelSelector ? { labelSelector } : {};
        // From the API server's watch cache: a consistent paginated list of large records goes to
        // etcd and decodes every one (kube/kube.ts CACHED_LIST_QUERY); a query may miss the last
        // moments' entries, --verify (below) reads consistently.
        for await (const page of kube.pages<AuditRecord>(path, query, what, QUERY_PAGE, true)) {
          warnRelabelled(io, page, relabelled);
          rows.push(...matchingRows(page, filter));
        }
      }
      sortRows(rows);
      if (printStructured(io, g.output, rows)) return;
      io.out(formatTable(rows, { namespaces: kube.allNamespaces, wide: g.output === 'wide' }));
    });

/**
 * Names (on stderr, once per record) each listed record whose labels disagree with its signed
 * spec: relabelled after it was written, so label-filtered queries may skip it. The rows and the
 * exit status are unchanged — the signed content is intact; the labels are what lied.
 */
function warnRelabelled(io: CliIO, page: readonly AuditRecord[], seen: Set<string>): void {
  for (const r of page) {
    const bad = labelMismatches(r);
    if (bad.length === 0) continue;
    const name = `${r.metadata?.namespace ?? ''}/${r.metadata?.name ?? ''}`;
    if (seen.has(name)) continue;
    seen.add(name);
    const what = bad.map((m) => `${m.label}=${m.found} (its signed spec says ${m.derived})`).join(', ');
    io.err(
      `warning: auditrecord ${name} was relabelled: ${what}; label-filtered queries (--agent, --decision Deny, --since) can skip it and records relabelled like it — run kubectl warden audit --verify without --agent, which reads every record, and find who patched it`,
    );
  }
}

/**
 * Records per page when verifying (~65 KiB each at 200 entries): memory of one page (a few MiB of
 * JSON), not the trail.
 */
const VERIFY_PAGE = 25;
/** Records per page when querying. */
const QUERY_PAGE = 100;

const agentQuery = (agent: string | undefined): Record<string, string> =>
  agent ? { labelSelector: `${LABEL_AGENT}=${agentLabelValue(agent)}` } : {};

/**
 * Chains are per agent and signatures name the namespace; with -A two namespaces may hold agents
 * of the same name, so verify per namespace (and name each object with its namespace).
 */
async function verifyByNamespace(
  examined: ReadonlyMap<string, NamedRecord[]>,
  identities: readonly AgentIdentity[],
  agent: string | undefined,
  keys: AuditKeySet,
  signingSince: number | undefined,
  qualify: boolean,
): Promise<VerifyResult> {
  const namespaces = new Set([...examined.keys(), ...identities.map((o) => o.metadata?.namespace ?? '')]);
  const results: VerifyResult[] = [];
  for (const ns of [...namespaces].sort()) {
    const agents: Record<string, TrailAgent> = {};
    for (const a of identities) {
      const name = a.metadata?.name;
      if ((a.metadata?.namespace ?? '') !== ns || !name || (agent && name !== agent)) continue;
      const cut = parsePrunedThrough(prunedThroughOf(a));
      const head = a.status?.audit?.head;
      const prunedBy = a.status?.audit?.pruned;
      agents[name] = {
        ...(cut ? { pruned: cut } : {}),
        ...(cut && prunedBy ? { prunedBy } : {}),
        ...(head ? { head } : {}),
      };
    }
    const result = await verifyExamined({
      namespace: ns,
      records: examined.get(ns) ?? [],
      agents,
      keys,
      ...(signingSince !== undefined ? { signingSince } : {}),
    });
    if (qualify) {
      for (const p of result.problems) if (p.name) p.name = `${ns}/${p.name}`;
      for (const n of result.notes) n.agent = `${ns}/${n.agent}`;
    }
    results.push(result);
  }
  return {
    ok: results.every((r) => r.ok),
    records: results.reduce((n, r) => n + r.records, 0),
    entries: results.reduce((n, r) => n + r.entries, 0),
    problems: results.flatMap((r) => r.problems),
    notes: results.flatMap((r) => r.notes),
  };
}

export default createAuditCommand;
