import { Command } from 'commander';
import type { CliIO, CommandFactory } from '../command.js';
import { globalsOf, oneNamespace, printStructured } from '../globals.js';
import { AgentClient, breakerResetNote, parseTimeout, reviveProgress, waitFor } from '../killswitch.js';
import { connect } from '../kube.js';

interface ReviveOptions {
  wait: boolean;
  timeout: string;
}

const createReviveCommand: CommandFactory = (io: CliIO) =>
  new Command('revive')
    .description(
      'Lift a suspension (spec.suspended: false), also one by the circuit breaker, which then counts afresh. Credentials issued before the kill stay revoked; the agent gets new ones',
    )
    .argument('<agent>', 'AgentIdentity name')
    .option('--no-wait', 'return once the spec is patched')
    .option('--timeout <duration>', 'how long to wait for Suspended=False', '60s')
    .action(async (agent: string, opts: ReviveOptions, cmd: Command) => {
      const g = globalsOf(cmd);
      oneNamespace(g, 'revive');
      // -o json|yaml prints the AgentIdentity at the end; progress lines go to stderr then.
      const say = g.output === 'json' || g.output === 'yaml' ? io.err : io.out;
      const timeoutMs = parseTimeout(opts.timeout);
      const kube = connect(g);
      const ns = kube.namespace;
      const client = new AgentClient(kube);
      const before = await client.get(ns, agent);
      const patched = await client.patchSpec(ns, agent, { suspended: false, suspendReason: null });
      say(`agentidentity ${ns}/${agent} revived`);
      const breaker = breakerResetNote(before);
      if (breaker) say(`  ${breaker}`);
      if (!opts.wait) {
        printStructured(io, g.output, patched);
        return;
      }
      const done = await waitFor(
        () => client.get(ns, agent),
        reviveProgress,
        say,
        timeoutMs,
        `${ns}/${agent} to be active`,
      );
      printStructured(io, g.output, done);
    });

export default createReviveCommand;
