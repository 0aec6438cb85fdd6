/**
 * kubectl's standard flags, shared by every `kubectl warden` command: the program declares them
 * once, commander accepts them before or after the command name (as kubectl does), and a command
 * reads them with `globalsOf(cmd)`.
 */
import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { CliError, type CliIO } from './command.js';

/** csv: only commands that print rows of counts (usage); the others refuse it (printStructured). */
export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output: OutputFormat;
  /** kubectl's --request-timeout: "0" (none), "30s", "1m", "2h", or plain seconds. */
  requestTimeout: string;
}

/** Adds kubectl's standard flags to the program. */
export function addGlobalOptions(program: Command): Command {
  return program
    .option('--kubeconfig <path>', 'path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-n, --namespace <ns>', 'namespace (default: the namespace of the kubeconfig context)')
    .option('-A, --all-namespaces', 'across all namespaces (audit, status)')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices([...OUTPUT_FORMATS]).default('table'),
    )
    .option(
      '--request-timeout <duration>',
      'how long to wait for one API request before giving up ("0" = no limit; e.g. 30s, 1m)',
      '0',
    );
}

export function globalsOf(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

/** kubectl's --request-timeout: 0 means no limit; a bare number is seconds. Returns ms or undefined. */
export function parseRequestTimeout(value: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) {
    throw new CliError(
      `--request-timeout: "${value}" is not a duration; use e.g. 30s, 1m or 0 for no limit`,
      2,
    );
  }
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  const ms = n * unit;
  return ms === 0 ? undefined : ms;
}

/** Refuses -A for a command that works on one namespace (as kubectl does for a named object). */
export function oneNamespace(g: GlobalOptions, command: string): void {
  if (g.allNamespaces) {
    throw new CliError(`${command}: --all-namespaces is not supported; name the namespace with -n`, 2);
  }
}

/**
 * Prints structured data for -o json|yaml; returns false for table/wide (the caller prints text).
 * A command with a CSV view handles -o csv before calling this; for the others it is refused.
 */
export function printStructured(io: CliIO, format: OutputFormat, data: unknown): boolean {
  if (format === 'csv') {
    throw new CliError('-o csv: only kubectl warden usage prints CSV; use -o json or yaml here', 2);
  }
  if (format === 'json') {
    io.out(JSON.stringify(data, null, 2));
    return true;
  }
  if (format === 'yaml') {
    io.out(stringify(data, { lineWidth: 0 }));
    return true;
  }
  return false;
}

/** Left-aligned columns separated by three spaces, as kubectl prints tables. */
export function formatColumns(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cols: readonly string[]) =>
    cols
      .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The connection flags in an unparsed argument list (for completion, which runs before parsing). */
export function globalsFromArgs(args: readonly string[]): GlobalOptions {
  const g: GlobalOptions = { output: 'table', requestTimeout: '5s' };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = (args[i] ?? '').split(/=(.*)/s, 2);
    const value = () => inline ?? args[++i];
    if (flag === '-n' || flag === '--namespace') g.namespace = value();
    else if (flag === '--kubeconfig') g.kubeconfig = value();
    else if (flag === '--context') g.context = value();
  }
  return g;
}
