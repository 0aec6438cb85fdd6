#!/usr/bin/env node
/**
 * kubectl-warden — the kubectl plugin (`kubectl warden <command>`).
 * Subcommands live one per file in cli/commands/ and are discovered at startup.
 */
import { CommanderError } from 'commander';
import { enableLinearRegexFallback } from '../core/policy/index.js';
import { CliError, processIO } from './command.js';
import { buildProgram, discoverCommands } from './program.js';

async function main(): Promise<void> {
  enableLinearRegexFallback();
  const program = buildProgram(await discoverCommands(), processIO);
  program.exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
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
