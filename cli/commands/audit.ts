import { Command } from 'commander';
import type { AgentIdentity, AuditRecord } from '../../core/api/index.js';
import { type PrunedThrough, parsePrunedThrough } from '../../core/audit/chain.js';
import { agentLabelValue } from '../../core/audit/labels.js';
import { LABEL_AGENT, PLURAL } from '../../core/constants.js';
import { resourcePath } from '../../kube/kube.js';
import { prunedThroughOf } from '../../operator/reconcilers/audit-retention.js';
import {
  filterEntries,
  formatTable,
  formatVerify,
  parseDecision,
  parseSince,
  verifyRecords,
} from '../audit-view.js';
import type { CliIO, CommandFactory } from '../command.js';
import { globalsOf, printStructured } from '../globals.js';
import { connect, WARDEN_REF } from '../kube.js';

interface AuditOptions {
  agent?: string;
  user?: string;
  tool?: string;
  decision?: string;
  since?: string;
  verify?: boolean;
}

const createAuditCommand: CommandFactory = (io: CliIO) =>
  new Command('audit')
    .description(
      'Show the audit trail (AuditRecords): who did what, for whom, and why it was allowed or denied',
    )
    .option('--agent <name>', 'only this AgentIdentity')
    .option('--user <subject>', 'only this user ("agent acting alone" for none; * globs)')
    .option('--tool <name>', 'only this tool or target (* globs, e.g. "jira.*")')
    .option('--decision <Allow|Deny>', 'only allowed or denied')
    .option('--since <when>', 'only entries newer than a duration (30m, 1h, 2d) or an RFC 3339 time')
    .option('--verify', 'check the hash chain of every record in scope and report gaps and altered records')
    .addHelpText(
      'after',
      '\nExit status: 0 on success; 1 when --verify finds a problem or on errors; 2 on usage errors.',
    )
    .action(async (opts: AuditOptions, cmd: Command) => {
      const g = globalsOf(cmd);
      const now = Date.now();
      const filter = {
        ...(opts.agent ? { agent: opts.agent } : {}),
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.tool ? { tool: opts.tool } : {}),
        ...(opts.decision ? { decision: parseDecision(opts.decision) } : {}),
        ...(opts.since ? { sinceMs: parseSince(opts.since, now) } : {}),
      };
      const kube = connect(g);
      const ns = kube.allNamespaces ? undefined : kube.namespace;
      const where = ns ? `in namespace ${ns}` : 'in all namespaces';
      const records = await kube.list<AuditRecord>(
        resourcePath(WARDEN_REF(PLURAL.AuditRecord), ns),
        opts.agent ? { labelSelector: `${LABEL_AGENT}=${agentLabelValue(opts.agent)}` } : {},
        `AuditRecords ${where}`,
      );
      if (opts.verify) {
        const agents = await kube.list<AgentIdentity>(
          resourcePath(WARDEN_REF(PLURAL.AgentIdentity), ns),
          {},
          `AgentIdentities ${where}`,
        );
        const result = verifyByNamespace(records, agents, opts.agent);
        if (!printStructured(io, g.output, result)) io.out(formatVerify(ns ?? 'all namespaces', result));
        if (!result.ok) process.exitCode = 1;
        return;
      }
      const rows = filterEntries(records, filter);
      if (printStructured(io, g.output, rows)) return;
      io.out(formatTable(rows, { namespaces: kube.allNamespaces, wide: g.output === 'wide' }));
    });

/** Chains are per agent; with -A two namespaces may hold agents of the same name, so verify per namespace. */
function verifyByNamespace(
  records: readonly AuditRecord[],
  agents: readonly AgentIdentity[],
  agent: string | undefined,
) {
  const namespaces = new Set([...records, ...agents].map((o) => o.metadata?.namespace ?? ''));
  const results = [...namespaces].sort().map((ns) => {
    const pruned: Record<string, PrunedThrough> = {};
    for (const a of agents) {
      if ((a.metadata?.namespace ?? '') !== ns) continue;
      const cut = parsePrunedThrough(prunedThroughOf(a));
      if (cut && a.metadata?.name) pruned[a.metadata.name] = cut;
    }
    const inScope = records.filter(
      (r) => (r.metadata?.namespace ?? '') === ns && (!agent || r.spec.agent === agent),
    );
    return verifyRecords(inScope, pruned);
  });
  return {
    ok: results.every((r) => r.ok),
    records: results.reduce((n, r) => n + r.records, 0),
    entries: results.reduce((n, r) => n + r.entries, 0),
    problems: results.flatMap((r) => r.problems),
  };
}

export default createAuditCommand;
