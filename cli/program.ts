import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import type { CliIO, CommandFactory } from './command.js';
import { addGlobalOptions } from './globals.js';
import { wardenVersion } from './version.js';

const COMMANDS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'commands');

/** Command module file names: `name.ts` / `name.js`, not tests, declarations or helpers (`_x.ts`). */
export function isCommandFile(file: string): boolean {
  return /^[a-z][a-z0-9-]*\.(ts|js)$/.test(file) && !file.endsWith('.d.ts');
}

/** Load every command factory in cli/commands/, sorted by file name. */
export async function discoverCommands(dir = COMMANDS_DIR): Promise<CommandFactory[]> {
  const files = (await readdir(dir)).filter(isCommandFile).sort();
  const factories: CommandFactory[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default?: unknown };
    if (typeof mod.default !== 'function') {
      throw new Error(`cli/commands/${file} must default-export a CommandFactory ((io) => Command)`);
    }
    factories.push(mod.default as CommandFactory);
  }
  return factories;
}

/** The kubectl-warden program with the given commands. */
export function buildProgram(factories: readonly CommandFactory[], io: CliIO): Command {
  const program = new Command('kubectl-warden')
    .description('Warden: identity and access management for AI agents on Kubernetes (kubectl plugin)')
    .version(wardenVersion(), '--version', 'print the plugin version')
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  addGlobalOptions(program);
  for (const factory of factories) {
    // Words a command does not declare are errors (`audit support-bot` means `--agent support-bot`).
    program.addCommand(factory(io).configureHelp({ showGlobalOptions: true }).allowExcessArguments(false));
  }
  return program;
}
