import { Command } from 'commander';
import { CliError, type CliIO, type CommandFactory } from '../command.js';
import { bashScript, zshScript } from '../completion.js';

const createCompletionCommand: CommandFactory = (io: CliIO) =>
  new Command('completion')
    .description('Print a shell completion script (bash or zsh) for kubectl-warden')
    .argument('<shell>', 'bash or zsh')
    .addHelpText(
      'after',
      '\nbash: source <(kubectl-warden completion bash)\nzsh:  source <(kubectl-warden completion zsh)\n`kubectl warden <TAB>` completes through kubectl_complete-warden (next to kubectl-warden after make build).',
    )
    .action((shell: string) => {
      if (shell === 'bash') io.out(bashScript());
      else if (shell === 'zsh') io.out(zshScript());
      else throw new CliError(`completion: unsupported shell "${shell}"; use bash or zsh`, 2);
    });

export default createCompletionCommand;
