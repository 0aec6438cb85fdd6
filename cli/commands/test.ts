import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Command } from 'commander';
import { CliError, type CliIO, type CommandFactory } from '../command.js';
import { globalsOf, printStructured } from '../globals.js';
import { formatReport, runPolicyTests, type SourceFile } from '../policy-test.js';

/** Every *.yaml / *.yml file under `path` (or `path` itself), sorted, skipping dot-directories. */
async function yamlFiles(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new CliError(`${path}: no such file or directory`, 2);
  if (info.isFile()) return [path];
  const out: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (entry.name.startsWith('.')) continue;
    const full = join(path, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlFiles(full)));
    else if (/\.ya?ml$/.test(entry.name)) out.push(full);
  }
  return out;
}

const createTestCommand: CommandFactory = (io: CliIO) =>
  new Command('test')
    .description(
      'Run policy test cases (kind: PolicyTest) against AccessPolicy files, offline — for CI of policy repositories',
    )
    .argument(
      '<path...>',
      'directories or YAML files with AccessPolicy, AgentIdentity and PolicyTest documents',
    )
    .option('--now <time>', 'default request time for cases without request.time (RFC 3339)')
    .addHelpText(
      'after',
      '\nExit status: 0 when every case passes, 1 on a failed case or an invalid policy/test, 2 on usage errors.\nSee docs/policy.md for the PolicyTest format.',
    )
    .action(async (paths: string[], opts: { now?: string }, cmd: Command) => {
      const g = globalsOf(cmd);
      const now = opts.now ? new Date(opts.now) : new Date();
      if (Number.isNaN(now.getTime()))
        throw new CliError(`--now: '${opts.now}' is not an RFC 3339 time, e.g. 2026-01-05T10:00:00Z`, 2);
      const files: SourceFile[] = [];
      for (const p of paths) {
        for (const f of await yamlFiles(p))
          files.push({ path: relative(process.cwd(), f) || f, text: await readFile(f, 'utf8') });
      }
      if (files.length === 0) throw new CliError(`no .yaml/.yml files under ${paths.join(', ')}`, 2);
      const report = runPolicyTests(files, now);
      const { text, passed } = formatReport(report);
      if (!printStructured(io, g.output, { passed, ...report })) io.out(text);
      if (!passed) process.exitCode = 1;
    });

export default createTestCommand;
