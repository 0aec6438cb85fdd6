import { Command } from 'commander';
import type { CliIO, CommandFactory } from '../command.js';
import { globalsOf, printStructured } from '../globals.js';
import { wardenVersion } from '../version.js';

const createVersionCommand: CommandFactory = (io: CliIO) =>
  new Command('version')
    .description('Print the version of the kubectl-warden plugin (no API call)')
    .action((_opts: unknown, cmd: Command) => {
      const version = wardenVersion();
      const data = {
        clientVersion: {
          version,
          nodeVersion: process.version,
          platform: `${process.platform}/${process.arch}`,
        },
      };
      if (!printStructured(io, globalsOf(cmd).output, data)) io.out(`kubectl-warden v${version}`);
    });

export default createVersionCommand;
