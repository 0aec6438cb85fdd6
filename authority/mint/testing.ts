/** Builders for minter tests (not used in production code). */
import type { CredentialProviderSpec } from '../../core/api/generated/credential-provider.js';
import type { UserContext } from '../../core/identity/user.js';
import { DEFAULT_BOUNDS } from '../../core/policy/bounds.js';
import { compileExpression } from '../../core/policy/expression.js';
import {
  type MintAgent,
  MintError,
  type MintProvider,
  type MintRequest,
  type PolicyCredentialSettings,
  type SecretsReader,
} from './types.js';

export const NOW = new Date('2026-11-29T12:00:00.000Z');

export function agent(overrides: Partial<MintAgent> = {}): MintAgent {
  return { name: 'support-bot', namespace: 'agents', labels: { role: 'triage' }, ...overrides };
}

export function user(overrides: Partial<UserContext> = {}): UserContext {
  return {
    present: true,
    sub: 'alice',
    issuer: 'https://idp.example.com',
    groups: ['support'],
    department: 'customer-care',
    claims: {},
    ...overrides,
  };
}

export function provider(
  spec: Partial<CredentialProviderSpec> & Pick<CredentialProviderSpec, 'type'>,
  name = 'jira',
): MintProvider {
  return {
    name,
    namespace: 'agents',
    spec: { target: { url: 'https://jira.example.com/mcp', protocol: 'MCP' }, ...spec },
  };
}

/** Compiles claim expressions the way core/policy does for a rule's credential block. */
export function policy(
  settings: { ttl?: string; scopes?: string[]; claims?: Record<string, string> } = {},
): PolicyCredentialSettings {
  return {
    policy: 'agents/support',
    ttl: settings.ttl,
    scopes: settings.scopes,
    claims: Object.entries(settings.claims ?? {}).map(([name, source]) => {
      const r = compileExpression(source, false, DEFAULT_BOUNDS);
      if (!r.ok) throw new Error(`test claim ${name}: ${r.problem.summary}`);
      return { name, expression: r.expression };
    }),
  };
}

/** Secrets from a map keyed `namespace/name` → data; missing entries fail like the real reader. */
export function secrets(data: Record<string, Record<string, string>>): SecretsReader & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async read(namespace, name, key) {
      reads.push(`${namespace}/${name}#${key}`);
      const secret = data[`${namespace}/${name}`];
      if (!secret) throw new MintError('SecretNotFound', `Secret ${namespace}/${name} not found`);
      const value = secret[key];
      if (value === undefined)
        throw new MintError('SecretKeyMissing', `Secret ${namespace}/${name} has no key '${key}'`);
      return value;
    },
  };
}

export function request(overrides: Partial<MintRequest> & Pick<MintRequest, 'provider'>): MintRequest {
  return { agent: agent(), user: user(), policy: policy(), secrets: secrets({}), ...overrides };
}
