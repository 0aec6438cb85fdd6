import { describe, expect, it } from 'vitest';
import type { WardenKind } from './schemas.js';
import {
  agentSpec,
  apiKeyProviderSpec,
  auditSpec,
  awsProviderSpec,
  DIGEST,
  jwtProviderSpec,
  object,
  policySpec,
  postgresProviderSpec,
  rule,
} from './testing/builders.js';
import {
  describeIssues,
  type FieldIssue,
  formatPath,
  validateObject,
  validateSpec,
  validateStatus,
} from './validate.js';

function errorsOf(kind: WardenKind, spec: unknown): FieldIssue[] {
  const r = validateSpec(kind, spec);
  if (r.ok) throw new Error(`expected ${kind} spec to be rejected: ${JSON.stringify(spec)}`);
  return r.errors;
}

describe('formatPath', () => {
  it.each([
    {
      name: 'nested lists',
      path: ['rules', 2, 'when', 0, 'expression'],
      want: 'spec.rules[2].when[0].expression',
    },
    { name: 'the object itself', path: [], want: 'spec' },
    {
      name: 'a map key with dots and slash',
      path: ['matchLabels', 'app.kubernetes.io/name'],
      want: 'spec.matchLabels["app.kubernetes.io/name"]',
    },
    { name: 'a plain map key', path: ['claims', 'department'], want: 'spec.claims.department' },
  ])('$name', ({ path, want }) => {
    expect(formatPath(path, 'spec')).toBe(want);
  });

  it('works without a prefix', () => {
    expect(formatPath(['metadata', 'name'])).toBe('metadata.name');
  });
});

describe('good specs', () => {
  it.each([
    { name: 'minimal AgentIdentity', kind: 'AgentIdentity' as const, spec: agentSpec() },
    {
      name: 'AgentIdentity with a trusted issuer',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({
        userContext: {
          mode: 'Required',
          trustedIssuers: [{ issuer: 'https://idp.example.com', audiences: ['bot'] }],
        },
      }),
    },
    { name: 'AccessPolicy like DESIGN.md', kind: 'AccessPolicy' as const, spec: policySpec() },
    {
      name: 'AccessPolicy with neither tools nor http (PostgreSQL)',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [{ targets: ['orders-db'] }] }),
    },
    { name: 'JWT provider', kind: 'CredentialProvider' as const, spec: jwtProviderSpec() },
    { name: 'PostgreSQL provider', kind: 'CredentialProvider' as const, spec: postgresProviderSpec() },
    { name: 'APIKey provider', kind: 'CredentialProvider' as const, spec: apiKeyProviderSpec() },
    { name: 'AuditRecord at sequence 0', kind: 'AuditRecord' as const, spec: auditSpec() },
    {
      name: 'AuditRecord later in the chain',
      kind: 'AuditRecord' as const,
      spec: auditSpec({ sequence: 7, previousDigest: 'b'.repeat(64) }),
    },
  ])('$name is accepted without warnings', ({ kind, spec }) => {
    const r = validateSpec(kind, spec);
    expect(r.ok ? [] : r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it('fills in the defaults the CRD declares', () => {
    const r = validateSpec('AgentIdentity', agentSpec());
    expect(r.ok && r.value).toEqual({
      serviceAccountName: 'support-bot',
      suspended: false,
      attestation: { audience: 'warden.dev/broker', tokenExpirationSeconds: 3600 },
      userContext: { mode: 'Optional' },
      maxCredentialTTL: '1h',
      audit: { mode: 'BestEffort' },
    });
    const p = validateSpec('CredentialProvider', postgresProviderSpec());
    expect(p.ok && p.value.postgresql).toMatchObject({
      port: 5432,
      roleTTL: '15m',
      adminSecretRef: { usernameKey: 'username', passwordKey: 'password' },
    });
    expect(p.ok && p.value.inject).toEqual({ header: 'Authorization', format: 'Bearer {token}' });
    const a = validateSpec('AccessPolicy', { rules: [{ targets: ['*'], tools: ['*'] }] });
    expect(a.ok && a.value.effect).toBe('Allow');
  });

  it('does not change its input', () => {
    const spec = agentSpec();
    validateSpec('AgentIdentity', spec);
    expect(spec).toEqual({ serviceAccountName: 'support-bot' });
  });
});

describe('bad input: each class is rejected with its field path', () => {
  it.each([
    // missing and wrong types
    {
      name: 'missing required field',
      kind: 'AgentIdentity' as const,
      spec: {},
      path: 'spec.serviceAccountName',
      msg: 'is required',
    },
    {
      name: 'spec is not an object',
      kind: 'AgentIdentity' as const,
      spec: 'support-bot',
      path: 'spec',
      msg: 'must be an object, not a string',
    },
    {
      name: 'wrong type',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ suspended: 'yes' }),
      path: 'spec.suspended',
      msg: 'must be a boolean, not a string',
    },
    {
      name: 'float where an integer is needed',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ attestation: { tokenExpirationSeconds: 900.5 } }),
      path: 'spec.attestation.tokenExpirationSeconds',
      msg: 'must be an integer',
    },
    // unknown fields
    {
      name: 'unknown top-level field',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ serviceAcountName: 'x' }),
      path: 'spec.serviceAcountName',
      msg: 'unknown field',
    },
    {
      name: 'unknown nested field',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [rule({ tool: ['x'] })] }),
      path: 'spec.rules[0].tool',
      msg: 'unknown field',
    },
    // enums
    {
      name: 'enum value',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ effect: 'allow' }),
      path: 'spec.effect',
      msg: 'must be one of "Allow", "Deny"',
    },
    {
      name: 'HTTP method',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [rule({ tools: undefined, http: { methods: ['get'] } })] }),
      path: 'spec.rules[0].http.methods[0]',
      msg: 'must be one of "GET"',
    },
    // bounds
    {
      name: 'string too long',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ suspendReason: 'x'.repeat(1025) }),
      path: 'spec.suspendReason',
      msg: 'must be at most 1024 characters long',
    },
    {
      name: 'empty string',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [rule({ when: [{ name: '', expression: 'true' }] })] }),
      path: 'spec.rules[0].when[0].name',
      msg: 'must not be empty',
    },
    {
      name: 'too many items',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [rule({ targets: Array.from({ length: 33 }, (_, i) => `p${i}`) })] }),
      path: 'spec.rules[0].targets',
      msg: 'must have at most 32 items',
    },
    {
      name: 'too few items',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [] }),
      path: 'spec.rules',
      msg: 'must have at least 1 item',
    },
    {
      name: 'number below minimum',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ attestation: { tokenExpirationSeconds: 60 } }),
      path: 'spec.attestation.tokenExpirationSeconds',
      msg: 'must be at least 600',
    },
    {
      name: 'number above maximum',
      kind: 'CredentialProvider' as const,
      spec: postgresProviderSpec({ postgresql: { ...postgresProviderSpec().postgresql, port: 70000 } }),
      path: 'spec.postgresql.port',
      msg: 'must be at most 65535',
    },
    {
      name: 'map with too many entries',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({
        attestation: {
          requiredPodLabels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v'])),
        },
      }),
      path: 'spec.attestation.requiredPodLabels',
      msg: 'must have at most 32 entries',
    },
    // patterns
    {
      name: 'not a DNS name',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ serviceAccountName: 'Support_Bot' }),
      path: 'spec.serviceAccountName',
      msg: 'lowercase RFC 1123',
    },
    {
      name: 'bad duration',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ maxCredentialTTL: '1 hour' }),
      path: 'spec.maxCredentialTTL',
      msg: 'must be a duration such as',
    },
    {
      name: 'issuer is not https',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ userContext: { trustedIssuers: [{ issuer: 'http://idp', audiences: ['a'] }] } }),
      path: 'spec.userContext.trustedIssuers[0].issuer',
      msg: 'https://',
    },
    {
      name: 'bad date-time',
      kind: 'AuditRecord' as const,
      spec: auditSpec({ startTime: 'yesterday' }),
      path: 'spec.startTime',
      msg: 'RFC 3339',
    },
    {
      name: 'bad digest',
      kind: 'AuditRecord' as const,
      spec: auditSpec({ digest: 'XYZ' }),
      path: 'spec.digest',
      msg: 'sha256',
    },
    // uniqueness
    {
      name: 'duplicate in a set',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [rule({ tools: ['a', 'b', 'a'] })] }),
      path: 'spec.rules[0].tools[2]',
      msg: 'duplicate value "a"',
    },
    {
      name: 'duplicate condition name',
      kind: 'AccessPolicy' as const,
      spec: policySpec({
        rules: [
          rule({
            when: [
              { name: 'x', expression: 'true' },
              { name: 'x', expression: 'false' },
            ],
          }),
        ],
      }),
      path: 'spec.rules[0].when[1].name',
      msg: 'duplicate name "x"',
    },
    // cross-field rules (CEL in the CRDs)
    {
      name: 'two type blocks',
      kind: 'CredentialProvider' as const,
      spec: jwtProviderSpec({ apiKey: { secretRef: { name: 's', key: 'k' } } }),
      path: 'spec.apiKey',
      msg: 'must not be set when spec.type is JWT',
    },
    {
      name: 'type block missing',
      kind: 'CredentialProvider' as const,
      spec: jwtProviderSpec({ jwt: undefined }),
      path: 'spec.jwt',
      msg: 'is required because spec.type is JWT',
    },
    {
      name: 'type block of another type',
      kind: 'CredentialProvider' as const,
      spec: jwtProviderSpec({ jwt: undefined, apiKey: { secretRef: { name: 's', key: 'k' } } }),
      path: 'spec.jwt',
      msg: 'is required',
    },
    {
      name: 'PostgreSQL type over MCP',
      kind: 'CredentialProvider' as const,
      spec: postgresProviderSpec({ target: { url: 'postgres://db/x' } }),
      path: 'spec.target.protocol',
      msg: 'must be PostgreSQL because spec.type is PostgreSQL',
    },
    {
      name: 'URL scheme does not fit the protocol',
      kind: 'CredentialProvider' as const,
      spec: jwtProviderSpec({ target: { url: 'postgres://db/x', protocol: 'HTTP' } }),
      path: 'spec.target.url',
      msg: 'must be an http(s):// URL for protocol HTTP',
    },
    {
      name: 'inject format without placeholder',
      kind: 'CredentialProvider' as const,
      spec: jwtProviderSpec({ inject: { format: 'Bearer token' } }),
      path: 'spec.inject.format',
      msg: 'must contain the {token} placeholder',
    },
    {
      name: 'AWS without roleArn',
      kind: 'CredentialProvider' as const,
      spec: awsProviderSpec({ aws: { region: 'eu-west-1' } }),
      path: 'spec.aws.roleArn',
      msg: 'is required',
    },
    {
      name: 'AWS roleArn of a user',
      kind: 'CredentialProvider' as const,
      spec: awsProviderSpec({}, { roleArn: 'arn:aws:iam::123456789012:user/alice' }),
      path: 'spec.aws.roleArn',
      msg: 'must be an IAM role ARN',
    },
    {
      name: 'AWS region that is not one',
      kind: 'CredentialProvider' as const,
      spec: awsProviderSpec({}, { region: 'Europe (Ireland)' }),
      path: 'spec.aws.region',
      msg: 'must be an AWS region such as "eu-west-1"',
    },
    {
      name: 'AWS STS endpoint without a scheme',
      kind: 'CredentialProvider' as const,
      spec: awsProviderSpec({}, { stsUrl: 'sts.eu-west-1.amazonaws.com' }),
      path: 'spec.aws.stsUrl',
      msg: 'must be an http:// or https:// URL',
    },
    {
      name: 'AWS target URL that is not http(s)',
      kind: 'CredentialProvider' as const,
      spec: awsProviderSpec({ target: { url: 'postgres://s3', protocol: 'HTTP' } }),
      path: 'spec.target.url',
      msg: 'must be an http(s):// URL for protocol HTTP',
    },
    {
      name: 'AWS over MCP',
      kind: 'CredentialProvider' as const,
      spec: awsProviderSpec({ target: { url: 'https://s3.amazonaws.com', protocol: 'MCP' } }),
      path: 'spec.target.protocol',
      msg: 'must be HTTP because spec.type is AWS',
    },
    {
      name: 'AWS session shorter than STS allows',
      kind: 'CredentialProvider' as const,
      spec: awsProviderSpec({}, { sessionDuration: '5m' }),
      path: 'spec.aws.sessionDuration',
      msg: 'must be between 15m and 12h',
    },
    {
      name: 'mode Required without issuers',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ userContext: { mode: 'Required' } }),
      path: 'spec.userContext.trustedIssuers',
      msg: 'needs at least one issuer',
    },
    {
      name: '"*" with other targets',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [rule({ targets: ['*', 'jira'] })] }),
      path: 'spec.rules[0].targets',
      msg: 'list it alone',
    },
    {
      name: 'previousDigest at sequence 0',
      kind: 'AuditRecord' as const,
      spec: auditSpec({ previousDigest: DIGEST }),
      path: 'spec.previousDigest',
      msg: 'must be empty for sequence 0',
    },
    {
      name: 'no previousDigest later in the chain',
      kind: 'AuditRecord' as const,
      spec: auditSpec({ sequence: 3 }),
      path: 'spec.previousDigest',
      msg: "previous record's digest",
    },
    {
      name: 'endTime before startTime',
      kind: 'AuditRecord' as const,
      spec: auditSpec({ endTime: '2026-01-02T15:04:00Z' }),
      path: 'spec.endTime',
      msg: 'must not be before startTime',
    },
  ])('$name', ({ kind, spec, path, msg }) => {
    const errors = errorsOf(kind, spec);
    expect(errors).toContainEqual({ path, message: expect.stringContaining(msg) });
  });

  it('reports every problem at once', () => {
    const errors = errorsOf(
      'AccessPolicy',
      policySpec({
        effect: 'Maybe',
        rules: [
          rule(),
          rule({ targets: [] }),
          rule({
            when: [
              { name: 'ok', expression: 'true' },
              { name: 'ticket', expression: '' },
            ],
            credential: { ttl: '5 min' },
          }),
        ],
      }),
    );
    expect(errors.map((e) => e.path)).toEqual([
      'spec.effect',
      'spec.rules[1].targets',
      'spec.rules[2].when[1].expression',
      'spec.rules[2].credential.ttl',
    ]);
  });

  it('reports a missing or empty field once, not every check the empty value fails', () => {
    const errors = errorsOf('AgentIdentity', agentSpec({ serviceAccountName: '' }));
    expect(errors).toEqual([{ path: 'spec.serviceAccountName', message: 'must not be empty' }]);
  });

  it('never echoes the offending value (it may be long or sensitive)', () => {
    const secretish = 'sk-live-ABCDEF0123456789';
    const errors = errorsOf(
      'CredentialProvider',
      apiKeyProviderSpec({ apiKey: { secretRef: { name: secretish, key: secretish } } }),
    );
    expect(JSON.stringify(errors)).not.toContain(secretish);
  });
});

describe('unknown fields', () => {
  it('are errors by default (fail closed on fields this code does not understand)', () => {
    expect(validateSpec('AgentIdentity', agentSpec({ extra: true })).ok).toBe(false);
  });

  it('become warnings with unknownFields: warn, and are dropped from the value', () => {
    const r = validateSpec('AccessPolicy', policySpec({ futureField: 1, rules: [rule({ priority: 3 })] }), {
      unknownFields: 'warn',
    });
    expect(r.ok).toBe(true);
    expect([...r.warnings].sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: 'spec.futureField', message: 'unknown field, ignored' },
      { path: 'spec.rules[0].priority', message: 'unknown field, ignored' },
    ]);
    expect(r.ok && 'futureField' in r.value).toBe(false);
  });

  it('in warn mode still reject other errors', () => {
    const r = validateSpec('AgentIdentity', agentSpec({ extra: 1, suspended: 'no' }), {
      unknownFields: 'warn',
    });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors).toEqual([
      { path: 'spec.suspended', message: 'must be a boolean, not a string' },
    ]);
  });
});

describe('warnings: valid but probably not meant', () => {
  it.each([
    {
      name: 'issuers with mode Forbidden',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({
        userContext: { mode: 'Forbidden', trustedIssuers: [{ issuer: 'https://idp', audiences: ['a'] }] },
      }),
      path: 'spec.userContext.trustedIssuers',
    },
    {
      name: 'a required pod label no pod can carry',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ attestation: { requiredPodLabels: { 'not a key': 'x' } } }),
      path: 'spec.attestation.requiredPodLabels["not a key"]',
    },
    {
      name: 'credentials living for days',
      kind: 'AgentIdentity' as const,
      spec: agentSpec({ maxCredentialTTL: '72h' }),
      path: 'spec.maxCredentialTTL',
    },
    {
      name: 'a credential block in a Deny policy',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ effect: 'Deny', rules: [rule({ credential: { ttl: '5m' } })] }),
      path: 'spec.rules[0].credential',
    },
    {
      name: '"*" among tools',
      kind: 'AccessPolicy' as const,
      spec: policySpec({ rules: [rule({ tools: ['*', 'jira.get_issue'] })] }),
      path: 'spec.rules[0].tools',
    },
    {
      name: 'an unconditional allow of everything',
      kind: 'AccessPolicy' as const,
      spec: { rules: [{ targets: ['*'] }] },
      path: 'spec.rules[0]',
    },
    {
      name: 'a standing secret over http://',
      kind: 'CredentialProvider' as const,
      spec: apiKeyProviderSpec({ target: { url: 'http://tickets', protocol: 'HTTP' } }),
      path: 'spec.target.url',
    },
  ])('$name', ({ kind, spec, path }) => {
    const r = validateSpec(kind, spec);
    expect(r.ok).toBe(true);
    expect(r.warnings.map((w) => w.path)).toEqual([path]);
  });
});

describe('validateObject', () => {
  it('accepts a whole object and returns the defaulted spec', () => {
    const r = validateObject(object('AgentIdentity', agentSpec()));
    expect(r.ok && r.value.spec).toMatchObject({ suspended: false, maxCredentialTTL: '1h' });
  });

  it('reports envelope and spec errors together', () => {
    const r = validateObject({
      apiVersion: 'warden.dev/v1',
      kind: 'AccessPolicy',
      metadata: {},
      spec: { rules: [] },
    });
    expect(!r.ok && r.errors.map((e) => e.path)).toEqual(['apiVersion', 'metadata.name', 'spec.rules']);
  });

  it('limits AgentIdentity names to 63 characters (they become a label value)', () => {
    const long = validateObject(object('AgentIdentity', agentSpec(), 'a'.repeat(64)));
    expect(!long.ok && long.errors).toEqual([
      {
        path: 'metadata.name',
        message: 'must be at most 63 characters: agent pods carry it as a label value',
      },
    ]);
    expect(validateObject(object('AgentIdentity', agentSpec(), 'a'.repeat(63))).ok).toBe(true);
    expect(validateObject(object('AccessPolicy', policySpec(), 'a'.repeat(64))).ok).toBe(true);
  });

  it('rejects an unknown kind and a kind other than expected', () => {
    const unknown = validateObject(object('Agent', {}));
    expect(!unknown.ok && unknown.errors).toEqual([
      {
        path: 'kind',
        message: 'must be one of AgentIdentity, AccessPolicy, CredentialProvider, AuditRecord',
      },
    ]);
    const other = validateObject(object('AgentIdentity', agentSpec()), { expectedKind: 'AccessPolicy' });
    expect(!other.ok && other.errors).toEqual([
      { path: 'kind', message: 'must be AccessPolicy, not AgentIdentity' },
    ]);
  });

  it.each([
    { name: 'null', input: null },
    { name: 'a string', input: 'x' },
    { name: 'a list', input: [] },
  ])('rejects $name as not an object', ({ input }) => {
    const r = validateObject(input);
    expect(!r.ok && r.errors).toEqual([{ path: '', message: expect.stringContaining('must be an object') }]);
  });
});

describe('describeIssues', () => {
  it('prefixes every issue with the object so a log line stands alone', () => {
    const text = describeIssues({ kind: 'AccessPolicy', namespace: 'agents', name: 'support' }, [
      { path: 'spec.rules[0].when[1].expression', message: 'must not be empty' },
      { path: '', message: 'must be an object, not a string' },
    ]);
    expect(text).toBe(
      'AccessPolicy agents/support: spec.rules[0].when[1].expression: must not be empty\n' +
        'AccessPolicy agents/support: must be an object, not a string',
    );
  });
});

describe('validateStatus', () => {
  const ready = {
    type: 'Ready',
    status: 'False',
    reason: 'ServiceAccountNotFound',
    message: 'ServiceAccount support-bot not found in agents; create it',
    observedGeneration: 2,
    lastTransitionTime: '2026-01-02T15:04:05Z',
  };

  it('accepts a status the controller writes', () => {
    const r = validateStatus('AgentIdentity', {
      observedGeneration: 2,
      conditions: [ready, { ...ready, type: 'Suspended', reason: 'NotSuspended', status: 'False' }],
      decisions: { allowed: 12, denied: 3, lastDecision: 'Deny', lastDecisionTime: '2026-01-02T15:04:05Z' },
      revocation: { requestedAt: '2026-01-02T15:04:05Z', credentialsRevoked: 2, pending: 0 },
      lastAttestation: { pod: 'support-bot-7d9f', podUID: 'c0ffee', time: '2026-01-02T15:04:05Z' },
      lastSeen: '2026-01-02T15:04:05Z',
    });
    expect(r.ok ? [] : r.errors).toEqual([]);
  });

  it.each([
    {
      name: 'condition without reason',
      status: { conditions: [{ ...ready, reason: undefined }] },
      path: 'status.conditions[0].reason',
    },
    {
      name: 'condition status lowercase',
      status: { conditions: [{ ...ready, status: 'false' }] },
      path: 'status.conditions[0].status',
    },
    {
      name: 'reason with spaces',
      status: { conditions: [{ ...ready, reason: 'Not found' }] },
      path: 'status.conditions[0].reason',
    },
    {
      name: 'two Ready conditions',
      status: { conditions: [ready, ready] },
      path: 'status.conditions[1].type',
    },
    { name: 'negative counter', status: { decisions: { allowed: -1 } }, path: 'status.decisions.allowed' },
    { name: 'unknown status field', status: { allowed: 1 }, path: 'status.allowed' },
  ])('rejects $name at $path', ({ status, path }) => {
    const r = validateStatus('AgentIdentity', status);
    expect(!r.ok && r.errors.map((e) => e.path)).toEqual([path]);
  });

  it('covers AccessPolicy and CredentialProvider status', () => {
    expect(validateStatus('AccessPolicy', { conditions: [ready], matchedAgents: ['support-bot'] }).ok).toBe(
      true,
    );
    expect(validateStatus('CredentialProvider', { standingSecret: true, issuedCount: 4 }).ok).toBe(true);
    const bad = validateStatus('CredentialProvider', { standingSecret: 'yes' });
    expect(!bad.ok && bad.errors).toEqual([
      { path: 'status.standingSecret', message: 'must be a boolean, not a string' },
    ]);
  });
});
