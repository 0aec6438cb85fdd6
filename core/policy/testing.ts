/**
 * Builders for tests of the policy engine and of its users (broker, authority,
 * CLI). Pure helpers; no test framework dependency.
 */
import { compileAccessPolicy } from './compile.js';
import type { CompiledPolicy } from './compiled.js';
import type { AccessPolicySpecLike, PolicyInput, PolicyRuleLike, UserInput } from './types.js';

export const TEST_NAMESPACE = 'agents';

/** Compile or throw with every error, for fixtures that must be valid. */
export function compiled(
  name: string,
  spec: AccessPolicySpecLike,
  namespace = TEST_NAMESPACE,
): CompiledPolicy {
  const result = compileAccessPolicy({ namespace, name, spec });
  if (!result.ok)
    throw new Error(
      `fixture ${namespace}/${name} does not compile:\n${result.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`,
    );
  return result.compiled;
}

export function allowPolicy(name: string, ...rules: PolicyRuleLike[]): CompiledPolicy {
  return compiled(name, { effect: 'Allow', rules });
}

export function denyPolicy(name: string, ...rules: PolicyRuleLike[]): CompiledPolicy {
  return compiled(name, { effect: 'Deny', rules });
}

/** `when` list from name → expression pairs. */
export function when(conditions: Record<string, string>): { name: string; expression: string }[] {
  return Object.entries(conditions).map(([name, expression]) => ({ name, expression }));
}

/** Monday 2026-01-05 10:00 UTC (11:00 in Berlin, 05:00 in New York). */
export const MONDAY_10_UTC = new Date('2026-01-05T10:00:00Z');

export const ALICE: UserInput = {
  sub: 'alice',
  issuer: 'https://idp.example',
  groups: ['support'],
  department: 'customer-care',
};

export function mcpCall(
  tool: string,
  extra: Partial<Omit<PolicyInput, 'request'>> & { target?: string; args?: unknown; time?: Date } = {},
): PolicyInput {
  const { target = 'jira', args, time = MONDAY_10_UTC, ...rest } = extra;
  return { ...rest, request: { kind: 'mcp', target, tool, args, time } };
}

export function httpCall(
  method: string,
  path: string,
  extra: Partial<Omit<PolicyInput, 'request'>> & { target?: string; time?: Date } = {},
): PolicyInput {
  const { target = 'api', time = MONDAY_10_UTC, ...rest } = extra;
  return { ...rest, request: { kind: 'http', target, method, path, time } };
}
