import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { complete } from './completion.js';
import { addGlobalOptions, globalsFromArgs, parseRequestTimeout } from './globals.js';

describe('parseRequestTimeout', () => {
  it.each([
    ['0', undefined],
    ['30', 30_000],
    ['30s', 30_000],
    ['1m', 60_000],
    ['2h', 7_200_000],
    ['500ms', 500],
  ])('%s → %s ms', (v, ms) => expect(parseRequestTimeout(v)).toBe(ms));

  it.each(['soon', '-1s', '1d', ''])('refuses %j with exit 2', (v) => {
    expect(() => parseRequestTimeout(v)).toThrow(/--request-timeout/);
  });
});

describe('globalsFromArgs', () => {
  it('reads -n, --namespace=, --kubeconfig and --context', () => {
    expect(globalsFromArgs(['kill', '-n', 'a', '--kubeconfig=/k', '--context', 'c'])).toMatchObject({
      namespace: 'a',
      kubeconfig: '/k',
      context: 'c',
    });
  });
});

describe('complete', () => {
  const program = addGlobalOptions(new Command('kubectl-warden'));
  program.addCommand(new Command('kill').argument('<agent>').option('--reason <text>'));
  program.addCommand(new Command('status').argument('[agent]'));
  const lister = async (kind: string) => (kind === 'agent' ? ['ops-bot', 'support-bot'] : ['agents']);

  it('completes commands, flags, -o choices, namespaces and agent names', async () => {
    expect((await complete(program, [], 'k', lister)).candidates).toEqual(['kill']);
    expect((await complete(program, ['kill'], '--re', lister)).candidates).toEqual([
      '--reason',
      '--request-timeout',
    ]);
    expect((await complete(program, ['status', '-o'], '', lister)).candidates).toEqual([
      'csv',
      'json',
      'table',
      'wide',
      'yaml',
    ]);
    expect((await complete(program, ['status', '-n'], '', lister)).candidates).toEqual(['agents']);
    expect((await complete(program, ['kill', '-n', 'agents'], 's', lister)).candidates).toEqual([
      'support-bot',
    ]);
  });

  it('offers nothing (and file completion) for free text such as --reason', async () => {
    expect(await complete(program, ['kill', 'x', '--reason'], '', lister)).toEqual({
      candidates: [],
      directive: 0,
    });
  });
});
