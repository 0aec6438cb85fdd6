/**
 * Shell completion. `kubectl-warden __complete <args…> <word>` prints the candidates for `word`,
 * one per line, then `:<directive>` — the protocol of cobra's `__complete`, which kubectl (1.26+)
 * speaks with a `kubectl_complete-warden` executable on PATH, so `kubectl warden <TAB>` completes
 * too. `kubectl-warden completion bash|zsh` prints a script that completes `kubectl-warden` itself.
 */
import type { Command, Option } from 'commander';

/** cobra's ShellCompDirective values used here. */
export const DIRECTIVE = { Default: 0, NoFileComp: 4 } as const;

/** Options whose value is one of a fixed list, or a name read from the cluster. */
export type ValueLister = (
  kind: 'agent' | 'namespace' | 'context',
  args: readonly string[],
) => Promise<string[]>;

function longNames(options: readonly Option[]): string[] {
  return options.flatMap((o) => (o.long ? [o.long] : []));
}

function findOption(cmds: readonly Command[], flag: string): Option | undefined {
  for (const c of cmds) {
    const o = c.options.find((x) => x.long === flag || x.short === flag);
    if (o) return o;
  }
  return undefined;
}

/** Pure except for `lister`: the candidates for the last word. */
export async function complete(
  program: Command,
  args: readonly string[],
  word: string,
  lister: ValueLister,
): Promise<{ candidates: string[]; directive: number }> {
  let command: Command | undefined;
  const chain: Command[] = [program];
  let positional = 0;
  let pendingOption: Option | undefined;
  for (const a of args) {
    if (pendingOption) {
      pendingOption = undefined;
      continue;
    }
    if (a.startsWith('-')) {
      const o = findOption(chain, a.split('=')[0] ?? a);
      if (o && (o.required || o.optional) && !a.includes('=')) pendingOption = o;
      continue;
    }
    if (!command) {
      command = program.commands.find((c) => c.name() === a || c.aliases().includes(a));
      if (command) chain.unshift(command);
      continue;
    }
    positional++;
  }
  const filter = (xs: readonly string[]) => ({
    candidates: [...new Set(xs)].filter((x) => x.startsWith(word)).sort(),
    directive: DIRECTIVE.NoFileComp,
  });
  if (pendingOption) {
    if (pendingOption.argChoices) return filter(pendingOption.argChoices);
    if (pendingOption.long === '--namespace') return filter(await lister('namespace', args));
    if (pendingOption.long === '--context') return filter(await lister('context', args));
    if (pendingOption.long === '--agent') return filter(await lister('agent', args));
    return { candidates: [], directive: DIRECTIVE.Default };
  }
  if (word.startsWith('-')) return filter(chain.flatMap((c) => longNames(c.options)));
  if (!command) {
    return filter(
      program.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden).map((c) => c.name()),
    );
  }
  const arg = command.registeredArguments[positional];
  if (arg && /agent/i.test(arg.name())) return filter(await lister('agent', args));
  return { candidates: [], directive: DIRECTIVE.Default };
}

export function bashScript(): string {
  return `# bash completion for kubectl-warden; load with: source <(kubectl-warden completion bash)
_kubectl_warden() {
  local IFS=$'\\n' out
  out=$(kubectl-warden __complete "\${COMP_WORDS[@]:1:COMP_CWORD-1}" "\${COMP_WORDS[COMP_CWORD]}" 2>/dev/null) || return
  COMPREPLY=($(printf '%s\\n' "$out" | grep -v '^:'))
  [[ "\${out##*$'\\n'}" == ":0" && \${#COMPREPLY[@]} -eq 0 ]] && compopt -o default
  return 0
}
complete -F _kubectl_warden kubectl-warden
`;
}

export function zshScript(): string {
  return `#compdef kubectl-warden
# zsh completion for kubectl-warden; load with: source <(kubectl-warden completion zsh)
_kubectl_warden() {
  local -a lines candidates
  lines=("\${(@f)$(kubectl-warden __complete "\${(@)words[2,CURRENT-1]}" "\${words[CURRENT]}" 2>/dev/null)}")
  candidates=("\${(@)lines:#:*}")
  if (( \${#candidates} )); then compadd -- "\${candidates[@]}"; else _files; fi
}
compdef _kubectl_warden kubectl-warden
`;
}
