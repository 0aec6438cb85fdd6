import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { AccessPolicy, AgentIdentity, AuditRecord } from '../../core/api/index.js';
import { agentLabelValue } from '../../core/audit/labels.js';
import { LABEL_AGENT, PLURAL } from '../../core/constants.js';
import { resourcePath } from '../../kube/kube.js';
import { parseSince } from '../audit-view.js';
import { CliError, type CliIO, type CommandFactory } from '../command.js';
import { globalsOf, printStructured } from '../globals.js';
import { connect, WARDEN_REF } from '../kube.js';
import { formatReplay, parseProposal, replayTrail, type SourceFile } from '../replay.js';

interface ReplayOptions {
  file: string[];
  delete: string[];
  agent: string[];
  since: string;
  failOnNewDenials?: number;
}

/** Every *.yaml / *.yml file under `path` (or `path` itself), sorted. */
async function yamlFiles(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new CliError(`-f ${path}: no such file or directory`, 2);
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

const collect = (value: string, previous: string[]) => [...previous, value];

function count(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError('a whole number, e.g. 0 or 10');
  return Number(value);
}

const EXIT_HELP = `
The proposal is applied to the live AccessPolicies of the namespace: each -f AccessPolicy adds or
replaces the policy of its name (metadata.namespace, else -n); --delete NAME removes one. Every
Decision entry of the chosen agents since --since is decided again, offline, with the engine the
broker uses; entries recorded before replay data existed are counted and skipped (docs/audit.md).

Exit status: 0 when done (and, with --fail-on-new-denials N, at most N calls newly denied),
1 when more than N recorded calls would be denied or the proposal does not compile, 2 on usage errors.`;

const createReplayCommand: CommandFactory = (io: CliIO) =>
  new Command('replay')
    .description(
      'Re-decide recorded decisions against proposed AccessPolicies, offline, and show what would change',
    )
    .option('-f, --filename <path>', 'proposed AccessPolicy file or directory (repeatable)', collect, [])
    .option(
      '--delete <name>',
      'an AccessPolicy the proposal deletes (NAME or NAMESPACE/NAME; repeatable)',
      collect,
      [],
    )
    .option(
      '--agent <name>',
      'only this AgentIdentity (repeatable; default: every agent with records)',
      collect,
      [],
    )
    .option(
      '--since <when>',
      'replay entries newer than a duration (30m, 24h, 7d) or an RFC 3339 time',
      '24h',
    )
    .option(
      '--fail-on-new-denials <n>',
      'exit 1 when more than n recorded calls that were allowed would be denied (for CI)',
      count,
    )
    .addHelpText('after', EXIT_HELP)
    .action(async (raw: Omit<ReplayOptions, 'file'> & { filename: string[] }, cmd: Command) => {
      const opts: ReplayOptions = { ...raw, file: raw.filename };
      const g = globalsOf(cmd);
      if (opts.file.length === 0 && opts.delete.length === 0) {
        throw new CliError('replay: name the proposal with -f FILE (AccessPolicies) and/or --delete NAME', 2);
      }
      const now = new Date();
      const sinceMs = parseSince(opts.since, now.getTime());
      const kube = connect(g);
      const files: SourceFile[] = [];
      for (const p of opts.file) {
        for (const f of await yamlFiles(p))
          files.push({ path: relative(process.cwd(), f) || f, text: await readFile(f, 'utf8') });
      }
      // A directory the pipeline filled with nothing is fine when the proposal only deletes.
      if (files.length === 0 && opts.delete.length === 0)
        throw new CliError(
          `-f ${opts.file.join(', ')}: no .yaml/.yml files and no --delete: nothing to replay`,
          2,
        );
      const { proposal, problems } = parseProposal(files, opts.delete, kube.namespace);
      if (problems.length > 0) {
        throw new CliError(`the proposal is not valid, nothing replayed:\n  ${problems.join('\n  ')}`, 1);
      }
      const ns = kube.allNamespaces ? undefined : kube.namespace;
      const where = ns ? `in namespace ${ns}` : 'in all namespaces';
      const selector: Record<string, string> =
        opts.agent.length === 1
          ? { labelSelector: `${LABEL_AGENT}=${agentLabelValue(opts.agent[0] ?? '')}` }
          : {};
      const [records, agents, policies] = await Promise.all([
        kube.list<AuditRecord>(
          resourcePath(WARDEN_REF(PLURAL.AuditRecord), ns),
          selector,
          `AuditRecords ${where}`,
        ),
        kube.list<AgentIdentity>(
          resourcePath(WARDEN_REF(PLURAL.AgentIdentity), ns),
          {},
          `AgentIdentities ${where}`,
        ),
        kube.list<AccessPolicy>(
          resourcePath(WARDEN_REF(PLURAL.AccessPolicy), ns),
          {},
          `AccessPolicies ${where}`,
        ),
      ]);
      const report = replayTrail({
        records,
        agents,
        policies,
        proposal,
        agentNames: opts.agent,
        sinceMs,
        now,
      });
      const limit = opts.failOnNewDenials;
      const failed = limit !== undefined && report.changes.allowToDeny > limit;
      const out = limit !== undefined ? { ...report, failOnNewDenials: limit, failed } : report;
      if (!printStructured(io, g.output, out)) io.out(formatReplay(report));
      if (failed) {
        io.err(
          `replay: ${report.changes.allowToDeny} recorded calls that were allowed would be denied, more than --fail-on-new-denials ${limit}`,
        );
        process.exitCode = 1;
      }
    });

export default createReplayCommand;
