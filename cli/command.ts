import type { Command } from 'commander';

/**
 * What every `kubectl-warden` subcommand module provides. A command is one file,
 * `cli/commands/<name>.ts`, whose default export is a CommandFactory; the
 * program discovers the files at startup, so adding a command touches nothing else.
 */
export type CommandFactory = (io: CliIO) => Command;

/** Output streams, injected so commands can be run and checked in tests. */
export interface CliIO {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export const processIO: CliIO = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/** An error a person reads; the entry point prints the message (no stack) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Parse a JSON option value, saying which flag was wrong. */
export function parseJsonOption(flag: string, value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new CliError(
      `${flag}: not valid JSON (${(err as Error).message}); example: ${flag} '{"key":"value"}'`,
      2,
    );
  }
}

/** Parse a JSON option that must be an object. */
export function parseJsonObjectOption(
  flag: string,
  value: string | undefined,
): Record<string, unknown> | undefined {
  const parsed = parseJsonOption(flag, value);
  if (parsed === undefined) return undefined;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CliError(`${flag}: must be a JSON object, e.g. ${flag} '{"key":"value"}'`, 2);
  }
  return parsed as Record<string, unknown>;
}
