#!/usr/bin/env node
/**
 * kubectl-warden — the kubectl plugin (`kubectl warden <command>`).
 * Subcommands live one per file in cli/commands/ and are discovered at startup; kubectl's
 * standard flags (cli/globals.ts) are the program's and work before or after the command.
 */
import { CommanderError } from 'commander';
import { enableLinearRegexFallback } from '../core/policy/index.js';
import { CliError, processIO } from './command.js';
import { complete, type ValueLister } from './completion.js';
import { globalsFromArgs } from './globals.js';
import { buildProgram, discoverCommands } from './program.js';

/** Names for completion, read from the cluster; any failure completes nothing. */
const lister: ValueLister = async (kind, args) => {
  try {
    const { connect, listNames } = await import('./kube.js');
    const g = globalsFromArgs(args);
    if (kind === 'context')
      return connect({ ...g, context: undefined })
        .config.getContexts()
        .map((c) => c.name);
    return await listNames(connect(g), kind);
  } catch {
    return [];
  }
};

async function main(): Promise<void> {
  enableLinearRegexFallback();
  const program = buildProgram(await discoverCommands(), processIO);
  if (process.argv[2] === '__complete') {
    const args = process.argv.slice(3);
    const { candidates, directive } = await complete(program, args.slice(0, -1), args.at(-1) ?? '', lister);
    processIO.out([...candidates, `:${directive}`].join('\n'));
    return;
  }
  program.exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0; every usage error (unknown option, bad choice) exits 2.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof CliError) {
      processIO.err(`error: ${err.message}`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

await main();
