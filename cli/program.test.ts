import { describe, expect, it } from 'vitest';
import { buildProgram, discoverCommands, isCommandFile } from './program.js';

describe('command discovery', () => {
  it.each([
    ['explain.ts', true],
    ['kill.js', true],
    ['explain.test.ts', false],
    ['explain.int.test.ts', false],
    ['explain.d.ts', false],
    ['_helpers.ts', false],
  ])('%s is a command file: %s', (file, expected) => {
    expect(isCommandFile(file)).toBe(expected);
  });

  it('finds the commands in cli/commands and builds the program', async () => {
    const out: string[] = [];
    const program = buildProgram(await discoverCommands(), {
      out: (t) => out.push(t),
      err: (t) => out.push(t),
    });
    const names = program.commands.map((c) => c.name());
    expect(names).toEqual(expect.arrayContaining(['explain', 'test']));
  }, 60_000); // imports every command module (and @kubernetes/client-node) on a possibly busy machine
});
