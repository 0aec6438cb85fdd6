/**
 * Docs that run: every `kubectl warden …` command in the docs — README.md, docs/, the SDK READMEs
 * and the chart's install notes (every Markdown file outside node_modules, dist and generated
 * results, plus charts/warden/templates/NOTES.txt) — must be accepted by the CLI (parsed with the
 * real program, actions replaced, no API call; placeholders such as `<agent>` stand for a value),
 * and every `make …` they show (inline or in a code block) must name existing targets, flags
 * GNU make knows and variables the Makefile reads.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, discoverCommands } from './program.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Directories that hold no documentation a person follows. */
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', '.git', 'results']);

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return SKIP_DIRS.has(f) || f.startsWith('.') ? [] : markdownFiles(p);
    return f.endsWith('.md') ? [p] : [];
  });
}

/** Helm prints NOTES.txt after every install: its commands are documentation too. */
const FILES = [...markdownFiles(ROOT), join(ROOT, 'charts/warden/templates/NOTES.txt')];

interface DocCommand {
  where: string;
  text: string;
  /** From a code block (a command to run) rather than prose naming a command. */
  block: boolean;
}

/** Every `kubectl warden …` in code blocks (continuations joined, comments cut) and inline code. */
function extractCommands(file: string, markdown: string, tool: RegExp): DocCommand[] {
  const out: DocCommand[] = [];
  const lines = markdown.split('\n');
  // A plain-text file (the chart's notes) is all command lines, like one code block.
  let fence: string | undefined = file.endsWith('.txt') ? 'text' : undefined;
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] ?? '';
    const f = /^\s*```(\w*)/.exec(line);
    if (f) {
      fence = fence === undefined ? (f[1] ?? '') : undefined;
      continue;
    }
    const where = `${file}:${i + 1}`;
    if (fence !== undefined) {
      const at = line.search(tool);
      if (at < 0) continue;
      let text = line.slice(at);
      while (text.trimEnd().endsWith('\\') && i + 1 < lines.length) {
        text = `${text.trimEnd().slice(0, -1)} ${(lines[++i] ?? '').trim()}`;
      }
      text = text.split('<br/>')[0] ?? text; // mermaid diagrams
      // Quoted in a YAML string or a comment (`kubectl warden audit` for …): prose, not a command.
      const quoted = line[at - 1] === '`';
      if (quoted) text = text.split('`')[0] ?? text;
      out.push({ where, text: stripComment(text).trim(), block: !quoted });
      continue;
    }
    for (const m of line.matchAll(/`([^`]+)`/g)) {
      const inner = m[1] ?? '';
      if (inner.search(tool) === 0) out.push({ where, text: stripComment(inner).trim(), block: false });
    }
    line = '';
  }
  return out;
}

/** Drops a trailing `# comment` outside quotes. */
function stripComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1] ?? ''))) return text.slice(0, i);
  }
  return text;
}

/** POSIX-shell-like word splitting with single and double quotes (enough for documented commands). */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let any = false;
  for (const c of text) {
    if (quote) {
      if (c === quote) quote = undefined;
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      any = true;
    } else if (/\s/.test(c)) {
      if (cur || any) words.push(cur);
      cur = '';
      any = false;
    } else if (c === '>' || c === '|') {
      break; // redirections and pipes end the command
    } else cur += c;
  }
  if (cur || any) words.push(cur);
  return words;
}

const program: Command = buildProgram(await discoverCommands(), { out: () => {}, err: () => {} });
for (const cmd of [program, ...program.commands]) {
  cmd.exitOverride();
  cmd.configureOutput({ writeOut: () => {}, writeErr: () => {} });
  if (cmd !== program) cmd.action(() => {});
}

/** Parses the words after `kubectl warden`; returns the commander error message, or undefined. */
async function parse(words: string[], prose: boolean): Promise<string | undefined> {
  try {
    await program.parseAsync(words, { from: 'user' });
    return undefined;
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    // Prose may name a command or flag without its value (`kubectl warden kill --reason`).
    const incomplete = ['commander.missingArgument', 'commander.optionMissingArgument'].includes(err.code);
    return err.exitCode === 0 || (prose && incomplete) ? undefined : err.message;
  }
}

const commands = FILES.flatMap((f) =>
  extractCommands(relative(ROOT, f), readFileSync(f, 'utf8'), /kubectl warden\b/),
);

describe('kubectl warden commands in README.md and docs/', () => {
  it('finds the documented commands', () => {
    expect(commands.filter((c) => c.block).length).toBeGreaterThan(15);
  });

  it.each([
    ['kubectl warden audit support-bot --verify', /too many arguments/],
    ['kubectl warden status --no-such-flag', /unknown option '--no-such-flag'/],
    ['kubectl warden no-such-command', /unknown command/],
  ])('the check itself refuses %s', async (text, message) => {
    expect(await parse(shellWords(text).slice(2), false)).toMatch(message);
  });

  it('reads the chart notes and the SDK READMEs too', () => {
    const where = new Set(commands.map((c) => c.where.split(':')[0]));
    expect(where).toContain('charts/warden/templates/NOTES.txt');
  });

  it.each(commands.map((c) => [c.where, c.text, c] as const))('%s: %s', async (_where, _text, c) => {
    if (/^kubectl warden\s+</.test(c.text)) return; // `kubectl warden <TAB>`
    // A placeholder (`<agent>`, `<dir or files>`) stands for one value; `{{ … }}` is Helm's.
    const words = shellWords(c.text.replace(/<[^<>]+>|\{\{[^}]*\}\}/g, 'PLACEHOLDER')).slice(2);
    if (!c.block && words.length === 1) {
      // Prose naming a command (`kubectl warden kill`): it must exist.
      expect(program.commands.map((x) => x.name())).toContain(words[0]);
      return;
    }
    expect(await parse(words, !c.block)).toBeUndefined();
  });
});

/** Every `make …` the docs show: inline code, and code-block lines that run make. */
function makeCommands(file: string, text: string): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  let fence = file.endsWith('.txt');
  text.split('\n').forEach((line, i) => {
    if (/^\s*```/.test(line)) {
      fence = !fence;
      return;
    }
    const where = `${file}:${i + 1}`;
    if (fence) {
      const m = /^\s*(?:\$\s+)?(?:sudo\s+(?:-E\s+)?)?make(\s.*)?$/.exec(line);
      if (m) out.push([where, stripComment(`make${m[1] ?? ''}`).trim()]);
      return;
    }
    for (const c of line.matchAll(/`(make(?:\s[^`]*)?)`/g))
      out.push([where, stripComment(c[1] ?? '').trim()]);
  });
  return out;
}

describe('make commands in the docs', () => {
  const makefile = readFileSync(join(ROOT, 'Makefile'), 'utf8');
  const targets = new Set([...makefile.matchAll(/^([a-zA-Z0-9_-]+):/gm)].map((m) => m[1]));
  /** Options GNU make itself documents (`make --help`), e.g. -s, -C, --no-print-directory. */
  const help = execFileSync('make', ['--help'], { encoding: 'utf8' });
  const makeFlags = new Set([...help.matchAll(/(?<=^|[\s,])(--?[A-Za-z][\w-]*)/gm)].map((m) => m[1]));
  const named = FILES.flatMap((f) => makeCommands(relative(ROOT, f), readFileSync(f, 'utf8')));

  it('finds the documented make commands, with flags', () => {
    expect(named.length).toBeGreaterThan(20);
    expect(named.some(([, c]) => c === 'make -s which-node')).toBe(true);
  });

  /** What is wrong with a documented make command: unknown targets, flags and variables. */
  const makeProblems = (command: string): string[] => {
    const words = shellWords(command).slice(1);
    const problems: string[] = [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if (w.startsWith('-')) {
        const flag = w.split('=')[0]!;
        if (!makeFlags.has(flag)) problems.push(`make has no option ${flag}`);
        if (['-C', '-f', '-j', '-o', '-W', '-I'].includes(w)) i++; // the option's value
      } else if (w.includes('=')) {
        const name = w.slice(0, w.indexOf('='));
        if (!new RegExp(`\\$[({]${name}[)}]`).test(makefile))
          problems.push(`the Makefile never reads ${name}`);
      } else if (!targets.has(w)) {
        problems.push(`no make target ${w}`);
      }
    }
    return problems;
  };

  it.each([
    ['make no-such-target', ['no make target no-such-target']],
    ['make --no-such-flag test', ['make has no option --no-such-flag']],
    ['make test NO_SUCH_VARIABLE=1', ['the Makefile never reads NO_SUCH_VARIABLE']],
    ['make -s -C . which-node', []],
  ])('the check itself: %s', (command, problems) => {
    expect(makeProblems(command)).toEqual(problems);
  });

  it.each(named)('%s: %s', (_where, command) => {
    expect(makeProblems(command)).toEqual([]);
  });
});
