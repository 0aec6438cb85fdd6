import { Command } from 'commander';
import type { CliIO, CommandFactory } from '../command.js';
import { AgentClient, parseTimeout, reviveProgress, waitFor } from '../killswitch.js';
import { loadKubeContext } from '../kube.js';

interface ReviveOptions {
  namespace?: string;
  wait: boolean;
  timeout: string;
}

const createReviveCommand: CommandFactory = (io: CliIO) =>
  new Command('revive')
    .description(
      'Lift a suspension (spec.suspended: false). Credentials issued before the kill stay revoked; the agent gets new ones',
    )
    .argument('<agent>', 'AgentIdentity name')
    .option('-n, --namespace <ns>', 'namespace (default: the current kubeconfig context namespace)')
    .option('--no-wait', 'return once the spec is patched')
    .option('--timeout <duration>', 'how long to wait for Suspended=False', '60s')
    .action(async (agent: string, opts: ReviveOptions) => {
      const timeoutMs = parseTimeout(opts.timeout);
      const ctx = loadKubeContext();
      const ns = opts.namespace ?? ctx.namespace;
      const client = new AgentClient(ctx.config);
      await client.patchSpec(ns, agent, { suspended: false, suspendReason: null });
      io.out(`agentidentity ${ns}/${agent} revived`);
      if (!opts.wait) return;
      await waitFor(
        () => client.get(ns, agent),
        reviveProgress,
        io.out,
        timeoutMs,
        `${ns}/${agent} to be active`,
      );
    });

export default createReviveCommand;
