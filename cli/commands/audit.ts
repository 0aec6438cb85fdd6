import { Command, Option } from 'commander';
import type { AgentIdentity, AuditRecord } from '../../core/api/index.js';
import { type PrunedThrough, parsePrunedThrough } from '../../core/audit/chain.js';
import { agentLabelValue } from '../../core/audit/labels.js';
import { GROUP, LABEL_AGENT, PLURAL, VERSION } from '../../core/constants.js';
import { ApiError, KubeConfigApi, type ObjectList, resourcePath } from '../../kube/kube.js';
import { prunedThroughOf } from '../../operator/reconcilers/audit-retention.js';
import {
  filterEntries,
  formatTable,
  formatVerify,
  parseDecision,
  parseSince,
  verifyRecords,
} from '../audit-view.js';
import { CliError, type CliIO, type CommandFactory } from '../command.js';
import { loadKubeContext } from '../kube.js';

interface AuditOptions {
  namespace?: string;
  agent?: string;
  user?: string;
  tool?: string;
  decision?: string;
  since?: string;
  output: 'table' | 'json';
  verify?: boolean;
}

const ref = (plural: string) => ({ group: GROUP, version: VERSION, plural });

async function list<T>(
  api: KubeConfigApi,
  path: string,
  query: Record<string, string>,
  what: string,
): Promise<T[]> {
  const items: T[] = [];
  let cont: string | undefined;
  try {
    do {
      const page = await api.request<ObjectList<T>>('GET', path, {
        query: { ...query, limit: '500', continue: cont },
      });
      items.push(...page.items);
      cont = page.metadata?.continue || undefined;
    } while (cont);
  } catch (err) {
    if (err instanceof ApiError && err.code === 403) {
      throw new CliError(
        `${what}: forbidden — your kubeconfig user needs list on ${what.split(' ')[0]?.toLowerCase()}.${GROUP}`,
      );
    }
    throw new CliError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return items;
}

const createAuditCommand: CommandFactory = (io: CliIO) =>
  new Command('audit')
    .description(
      'Show the audit trail (AuditRecords): who did what, for whom, and why it was allowed or denied',
    )
    .option('-n, --namespace <ns>', 'namespace (default: the current kubeconfig context namespace)')
    .option('--agent <name>', 'only this AgentIdentity')
    .option('--user <subject>', 'only this user ("agent acting alone" for none; * globs)')
    .option('--tool <name>', 'only this tool or target (* globs, e.g. "jira.*")')
    .option('--decision <Allow|Deny>', 'only allowed or denied')
    .option('--since <when>', 'only entries newer than a duration (30m, 1h, 2d) or an RFC 3339 time')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .option('--verify', 'check the hash chain of every record in scope and report gaps and altered records')
    .addHelpText(
      'after',
      '\nExit status: 0 on success; 1 when --verify finds a problem or on errors; 2 on usage errors.',
    )
    .action(async (opts: AuditOptions) => {
      const now = Date.now();
      const filter = {
        ...(opts.agent ? { agent: opts.agent } : {}),
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.tool ? { tool: opts.tool } : {}),
        ...(opts.decision ? { decision: parseDecision(opts.decision) } : {}),
        ...(opts.since ? { sinceMs: parseSince(opts.since, now) } : {}),
      };
      const ctx = loadKubeContext();
      const ns = opts.namespace ?? ctx.namespace;
      const api = new KubeConfigApi(ctx.config);
      const records = await list<AuditRecord>(
        api,
        resourcePath(ref(PLURAL.AuditRecord), ns),
        opts.agent ? { labelSelector: `${LABEL_AGENT}=${agentLabelValue(opts.agent)}` } : {},
        `AuditRecords in namespace ${ns}`,
      );
      if (opts.verify) {
        const agents = await list<AgentIdentity>(
          api,
          resourcePath(ref(PLURAL.AgentIdentity), ns),
          {},
          `AgentIdentities in namespace ${ns}`,
        );
        const pruned: Record<string, PrunedThrough> = {};
        for (const a of agents) {
          const cut = parsePrunedThrough(prunedThroughOf(a));
          if (cut && a.metadata?.name) pruned[a.metadata.name] = cut;
        }
        const inScope = records.filter((r) => !opts.agent || r.spec.agent === opts.agent);
        const result = verifyRecords(inScope, pruned);
        if (opts.output === 'json') io.out(JSON.stringify(result, null, 2));
        else io.out(formatVerify(ns, result));
        if (!result.ok) process.exitCode = 1;
        return;
      }
      const rows = filterEntries(records, filter);
      io.out(opts.output === 'json' ? JSON.stringify(rows, null, 2) : formatTable(rows));
    });

export default createAuditCommand;
