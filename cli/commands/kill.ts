import { Command } from 'commander';
import { revocationDone } from '../../operator/reconcilers/revocation.js';
import type { CliIO, CommandFactory } from '../command.js';
import { AgentClient, killProgress, parseTimeout, waitFor } from '../killswitch.js';
import { loadKubeContext } from '../kube.js';

interface KillOptions {
  namespace?: string;
  reason?: string;
  wait: boolean;
  timeout: string;
}

const createKillCommand: CommandFactory = (io: CliIO) =>
  new Command('kill')
    .description(
      'Suspend an agent (spec.suspended: true): its brokers deny every call within a second, and its outstanding credentials are revoked',
    )
    .argument('<agent>', 'AgentIdentity name')
    .option('-n, --namespace <ns>', 'namespace (default: the current kubeconfig context namespace)')
    .option('--reason <text>', 'why; recorded in spec.suspendReason, status, Events and the audit trail')
    .option('--no-wait', 'return once the spec is patched, without waiting for revocation to complete')
    .option('--timeout <duration>', 'how long to wait for revocation to complete', '60s')
    .addHelpText(
      'after',
      '\nExit status: 0 once revocation completed (or at once with --no-wait), 1 on errors or timeout.\nUndo with: kubectl warden revive <agent>',
    )
    .action(async (agent: string, opts: KillOptions) => {
      const timeoutMs = parseTimeout(opts.timeout);
      const ctx = loadKubeContext();
      const ns = opts.namespace ?? ctx.namespace;
      const client = new AgentClient(ctx.config);
      const before = await client.get(ns, agent);
      const reason = (opts.reason ?? 'killed with kubectl warden kill').slice(0, 1024);
      await client.patchSpec(ns, agent, { suspended: true, suspendReason: reason });
      io.out(`agentidentity ${ns}/${agent} suspended (reason: ${reason})`);
      if (!opts.wait) return;
      const wasRevoked = before.spec?.suspended === true && revocationDone(before);
      if (wasRevoked) {
        io.out(`  already suspended; revocation completed at ${before.status?.revocation?.completedAt}`);
        return;
      }
      const previous = before.status?.revocation?.requestedAt;
      await waitFor(
        () => client.get(ns, agent),
        (obj) => killProgress(obj, previous),
        io.out,
        timeoutMs,
        `the revocation of ${ns}/${agent} to complete`,
      );
    });

export default createKillCommand;
