import { Command } from 'commander';
import type { AccessPolicy, AgentIdentity, AuditRecord, CredentialProvider } from '../../core/api/index.js';
import { PLURAL } from '../../core/constants.js';
import { resourcePath } from '../../kube/kube.js';
import { CliError, type CliIO, type CommandFactory } from '../command.js';
import { globalsOf, printStructured } from '../globals.js';
import { connect, WARDEN_REF } from '../kube.js';
import { agentStatuses, formatAgents, formatOverview, namespaceOverviews } from '../status-view.js';

const createStatusCommand: CommandFactory = (io: CliIO) =>
  new Command('status')
    .description(
      'Show how agents are doing: Ready, suspended (and by whom), decisions, last seen, credentials that may be live, revocation and audit health; with -A an overview of every namespace',
    )
    .argument('[agent]', 'only this AgentIdentity (default: every agent in the namespace)')
    .addHelpText(
      'after',
      "\nCREDENTIALS counts credentials issued (per the audit trail) within the agent's maxCredentialTTL and after its last revocation: no credential issued earlier can still be valid.\nExit status: 0 on success, 1 on errors or when the named agent does not exist.",
    )
    .action(async (agent: string | undefined, _opts: unknown, cmd: Command) => {
      const g = globalsOf(cmd);
      const kube = connect(g);
      const ns = kube.allNamespaces ? undefined : kube.namespace;
      const where = ns ? `in namespace ${ns}` : 'in all namespaces';
      const list = <T>(plural: string, kind: string) =>
        kube.list<T>(resourcePath(WARDEN_REF(plural), ns), {}, `${kind} ${where}`);
      const [agents, policies, providers, records] = await Promise.all([
        list<AgentIdentity>(PLURAL.AgentIdentity, 'AgentIdentities'),
        list<AccessPolicy>(PLURAL.AccessPolicy, 'AccessPolicies'),
        list<CredentialProvider>(PLURAL.CredentialProvider, 'CredentialProviders'),
        list<AuditRecord>(PLURAL.AuditRecord, 'AuditRecords'),
      ]);
      const input = {
        agents: agent ? agents.filter((a) => a.metadata?.name === agent) : agents,
        policies,
        providers,
        records,
      };
      if (agent && input.agents.length === 0) {
        throw new CliError(
          `AgentIdentity ${ns ?? '*'}/${agent} not found; list agents with: kubectl get agentidentities -A`,
        );
      }
      const now = Date.now();
      const statuses = agentStatuses(input, now);
      const overview = agent ? [] : namespaceOverviews(input, statuses);
      if (printStructured(io, g.output, { agents: statuses, namespaces: overview })) return;
      const parts = [
        formatAgents(statuses, { namespaces: kube.allNamespaces, wide: g.output === 'wide' }, now),
      ];
      if (!agent) parts.push('', formatOverview(overview));
      io.out(parts.join('\n'));
    });

export default createStatusCommand;
