import { Command } from 'commander';
import { revocationDone } from '../../operator/reconcilers/revocation.js';
import type { CliIO, CommandFactory } from '../command.js';
import { globalsOf, oneNamespace, printStructured } from '../globals.js';
import { AgentClient, killProgress, parseTimeout, waitFor } from '../killswitch.js';
import { connect } from '../kube.js';

interface KillOptions {
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
    .option('--reason <text>', 'why; recorded in spec.suspendReason, status, Events and the audit trail')
    .option('--no-wait', 'return once the spec is patched, without waiting for revocation to complete')
    .option('--timeout <duration>', 'how long to wait for revocation to complete', '60s')
    .addHelpText(
      'after',
      '\nExit status: 0 once revocation completed (or at once with --no-wait), 1 on errors or timeout.\nUndo with: kubectl warden revive <agent>',
    )
    .action(async (agent: string, opts: KillOptions, cmd: Command) => {
      const g = globalsOf(cmd);
      oneNamespace(g, 'kill');
      // -o json|yaml prints the AgentIdentity at the end; progress lines go to stderr then.
      const say = g.output === 'json' || g.output === 'yaml' ? io.err : io.out;
      const timeoutMs = parseTimeout(opts.timeout);
      const kube = connect(g);
      const ns = kube.namespace;
      const client = new AgentClient(kube);
      const before = await client.get(ns, agent);
      const reason = (opts.reason ?? 'killed with kubectl warden kill').slice(0, 1024);
      const patched = await client.patchSpec(ns, agent, { suspended: true, suspendReason: reason });
      say(`agentidentity ${ns}/${agent} suspended (reason: ${reason})`);
      if (!opts.wait) {
        printStructured(io, g.output, patched);
        return;
      }
      const wasRevoked = before.spec?.suspended === true && revocationDone(before);
      if (wasRevoked) {
        say(`  already suspended; revocation completed at ${before.status?.revocation?.completedAt}`);
        printStructured(io, g.output, patched);
        return;
      }
      const previous = before.status?.revocation?.requestedAt;
      const done = await waitFor(
        () => client.get(ns, agent),
        (obj) => killProgress(obj, previous),
        say,
        timeoutMs,
        `the revocation of ${ns}/${agent} to complete`,
      );
      printStructured(io, g.output, done);
    });

export default createKillCommand;
