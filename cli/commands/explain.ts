import { Command } from 'commander';
import type { AccessPolicy, AgentIdentity } from '../../core/api/index.js';
import { PLURAL } from '../../core/constants.js';
import {
  type AccessPolicySpecLike,
  buildPolicySet,
  type CompiledPolicy,
  compileAccessPolicy,
  explain,
  formatCompileError,
} from '../../core/policy/index.js';
import { resourcePath } from '../../kube/kube.js';
import { type CliIO, type CommandFactory, parseJsonObjectOption } from '../command.js';
import { explainInput, formatExplainTable, type InvalidPolicy } from '../explain-view.js';
import { globalsOf, oneNamespace, printStructured } from '../globals.js';
import { connect, WARDEN_REF } from '../kube.js';

interface ExplainOptions {
  agent: string;
  tool?: string;
  target?: string;
  method?: string;
  path?: string;
  args?: string;
  userClaims?: string;
  requestContext?: string;
  time?: string;
}

const createExplainCommand: CommandFactory = (io: CliIO) =>
  new Command('explain')
    .description(
      'Dry-run a request against the live AccessPolicies of an agent and show the decision and why',
    )
    .requiredOption('--agent <name>', 'AgentIdentity name')
    .option('--tool <name>', 'MCP tool name (e.g. jira.create_issue)')
    .option('--target <name>', 'CredentialProvider name (default: the tool prefix before the first ".")')
    .option('--method <method>', 'HTTP method (HTTP requests)')
    .option('--path <path>', 'HTTP path (HTTP requests)')
    .option('--args <json>', 'tool arguments as a JSON object')
    .option(
      '--user-claims <json>',
      'claims of the human the agent acts for, e.g. \'{"sub":"alice","groups":["support"]}\'; omit for the agent acting alone',
    )
    .option(
      '--request-context <json>',
      'request context (what the agent sends in x-warden-context), e.g. \'{"ticketId":"SUP-1"}\'',
    )
    .option('--time <rfc3339>', 'request time (default: now)')
    .action(async (opts: ExplainOptions, cmd: Command) => {
      const g = globalsOf(cmd);
      oneNamespace(g, 'explain');
      const input = explainInput(
        {
          agent: opts.agent,
          tool: opts.tool,
          target: opts.target,
          method: opts.method,
          path: opts.path,
          args: parseJsonObjectOption('--args', opts.args),
          userClaims: parseJsonObjectOption('--user-claims', opts.userClaims),
          context: parseJsonObjectOption('--request-context', opts.requestContext),
          time: opts.time,
        },
        new Date(),
      );
      const kube = connect(g);
      const namespace = kube.namespace;
      const [agent, items] = await Promise.all([
        kube.request<AgentIdentity>(
          'GET',
          resourcePath(WARDEN_REF(PLURAL.AgentIdentity), namespace, opts.agent),
          `AgentIdentity ${namespace}/${opts.agent}`,
          'get',
        ),
        kube.list<AccessPolicy>(
          resourcePath(WARDEN_REF(PLURAL.AccessPolicy), namespace),
          {},
          `AccessPolicies in namespace ${namespace}`,
        ),
      ]);
      const compiled: CompiledPolicy[] = [];
      const invalid: InvalidPolicy[] = [];
      for (const item of items) {
        const name = item.metadata?.name ?? '';
        const result = compileAccessPolicy({ namespace, name, spec: item.spec as AccessPolicySpecLike });
        if (result.ok) compiled.push(result.compiled);
        else
          invalid.push({
            policy: `${namespace}/${name}`,
            errors: result.errors.map((e) => formatCompileError({ namespace, name }, e)),
          });
      }
      const spec = (agent.spec ?? {}) as {
        serviceAccountName?: string;
        suspended?: boolean;
        suspendReason?: string;
      };
      const set = buildPolicySet(compiled, {
        name: opts.agent,
        namespace,
        labels: agent.metadata?.labels ?? {},
        serviceAccount: spec.serviceAccountName,
        suspended: spec.suspended === true,
        suspendReason: spec.suspendReason,
      });
      const explanation = explain(set, input);
      if (printStructured(io, g.output, { ...explanation, invalidPolicies: invalid })) return;
      io.out(formatExplainTable(explanation, invalid));
    });

export default createExplainCommand;
