/**
 * Docs that run: every `kubectl warden …` command in README.md and docs/ must be accepted by the
 * CLI (parsed with the real program, actions replaced, no API call), and every `make <target>`
 * the docs name must exist in the Makefile.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, discoverCommands } from './program.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return markdownFiles(p);
    return f.endsWith('.md') ? [p] : [];
  });
}

const FILES = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))];

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
  let fence: string | undefined;
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

  it.each(commands.map((c) => [c.where, c.text, c] as const))('%s: %s', async (_where, _text, c) => {
    const words = shellWords(c.text).slice(2);
    if (words.some((w) => /^<.*>$|^<|>$/.test(w))) {
      if (/^</.test(words[0] ?? '')) return; // `kubectl warden <TAB>`
      // A synopsis with placeholders (`kubectl warden test <dir or files>`): the command must exist.
      expect(program.commands.map((x) => x.name())).toContain(words[0]);
      return;
    }
    if (!c.block && words.length === 1) {
      // Prose naming a command (`kubectl warden kill`): it must exist.
      expect(program.commands.map((x) => x.name())).toContain(words[0]);
      return;
    }
    expect(await parse(words, !c.block)).toBeUndefined();
  });
});

describe('make targets in README.md and docs/', () => {
  const makefile = readFileSync(join(ROOT, 'Makefile'), 'utf8');
  const targets = new Set([...makefile.matchAll(/^([a-zA-Z0-9_-]+):/gm)].map((m) => m[1]));
  const named = FILES.flatMap((f) =>
    [...readFileSync(f, 'utf8').matchAll(/`make ([a-z0-9][a-z0-9 _-]*?)`/g)].map(
      (m) => [relative(ROOT, f), m[1] ?? ''] as const,
    ),
  );

  it('finds the documented targets', () => {
    expect(named.length).toBeGreaterThan(5);
  });

  it.each(named)('%s: make %s', (_file, words) => {
    for (const t of words.split(' ').filter((w) => w && !w.includes('='))) expect(targets).toContain(t);
  });
});

describe('docs describe only what exists', () => {
  it.each(FILES.map((f) => [relative(ROOT, f), f] as const))(
    '%s does not describe a shared-gateway mode',
    (_name, file) => {
      // The broker runs only as a sidecar; a shared gateway may be mentioned as not built, never as a mode.
      expect(readFileSync(file, 'utf8')).not.toMatch(
        /shared[- ]gateway (mode|deployment)|\(or a shared gateway\)/i,
      );
    },
  );
});
