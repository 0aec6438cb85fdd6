import { Command, Option } from 'commander';
import type { AuditRecord } from '../../core/api/index.js';
import { agentLabelValue } from '../../core/audit/labels.js';
import { LABEL_AGENT, PLURAL } from '../../core/constants.js';
import { resourcePath } from '../../kube/kube.js';
import { parseSince } from '../audit-view.js';
import type { CliIO, CommandFactory } from '../command.js';
import { globalsOf, printStructured } from '../globals.js';
import { connect, WARDEN_REF } from '../kube.js';
import { formatUsage, USAGE_BY, type UsageBy, usageCsv, usageOf } from '../usage.js';

interface UsageOptions {
  agent: string[];
  by: UsageBy;
  since: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

const createUsageCommand: CommandFactory = (io: CliIO) =>
  new Command('usage')
    .description(
      'How agents use their tools, from the audit trail: calls, denials, credentials issued, distinct users, busiest hours',
    )
    .option(
      '--agent <name>',
      'only this AgentIdentity (repeatable; default: every agent with records)',
      collect,
      [],
    )
    .addOption(
      new Option('--by <what>', 'one row per tool, user, target, day or agent')
        .choices([...USAGE_BY])
        .default('tool'),
    )
    .option('--since <when>', 'entries newer than a duration (30m, 24h, 7d) or an RFC 3339 time', '7d')
    .addHelpText(
      'after',
      '\n-o table (default: totals, a bar per row, calls per hour of the day), -o json (the whole report), -o csv (the rows).\nCounts are exact over the AuditRecords kept (retention may have pruned older ones); status.usage on the AgentIdentity is the live top-10 view.',
    )
    .action(async (opts: UsageOptions, cmd: Command) => {
      const g = globalsOf(cmd);
      const now = new Date();
      const sinceMs = parseSince(opts.since, now.getTime());
      const kube = connect(g);
      const ns = kube.allNamespaces ? undefined : kube.namespace;
      const selector: Record<string, string> =
        opts.agent.length === 1
          ? { labelSelector: `${LABEL_AGENT}=${agentLabelValue(opts.agent[0] ?? '')}` }
          : {};
      const records = await kube.list<AuditRecord>(
        resourcePath(WARDEN_REF(PLURAL.AuditRecord), ns),
        selector,
        `AuditRecords ${ns ? `in namespace ${ns}` : 'in all namespaces'}`,
      );
      const report = usageOf({
        records,
        agentNames: opts.agent,
        sinceMs,
        now,
        by: opts.by,
        qualify: kube.allNamespaces,
      });
      if (g.output === 'csv') {
        io.out(usageCsv(report));
        return;
      }
      if (printStructured(io, g.output, report)) return;
      io.out(formatUsage(report));
    });

export default createUsageCommand;
