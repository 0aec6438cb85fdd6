/**
 * Specs every validator of Warden objects must agree on — zod (schemas.ts), the
 * CRD schemas as checked offline (crd-schema.ts) and the real API server
 * (crds/crds.int.test.ts) — each named for what it exercises.
 */
import type { KindWithStatus, WardenKind } from '../schemas.js';
import {
  agentSpec,
  apiKeyProviderSpec,
  auditSpec,
  awsProviderSpec,
  DIGEST,
  jwtProviderSpec,
  policySpec,
  postgresProviderSpec,
  rule,
} from './builders.js';

export interface CorpusCase {
  name: string;
  kind: WardenKind;
  spec: unknown;
  /** true: every validator accepts it; false: every validator rejects it. */
  ok: boolean;
}

/** An ECDSA P-256 public key in PEM (its private half was discarded). */
const SIGNING_KEY_PEM =
  '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaOo1uP3trOsnksqtdMH+kM93PEdQ\nEBrK5iXDyg3BC2aLKzZjZ9tjrXFgg5/L9fgHFmxANy3dJyjaVVqCTmFVxA==\n-----END PUBLIC KEY-----\n';

/** Objects both validators must accept (ok) or reject, named for what they exercise. */
export const CORPUS: CorpusCase[] = [
  { name: 'minimal agent', kind: 'AgentIdentity', spec: agentSpec(), ok: true },
  { name: 'agent: unknown field', kind: 'AgentIdentity', spec: agentSpec({ suspend: true }), ok: false },
  {
    name: 'agent: circuit breaker with every threshold',
    kind: 'AgentIdentity',
    spec: agentSpec({
      circuitBreaker: {
        maxDenialsPerMinute: 20,
        maxCallsPerMinute: 600,
        maxDistinctToolsPerMinute: 30,
        action: 'Alert',
      },
    }),
    ok: true,
  },
  {
    name: 'agent: circuit breaker with one threshold (action defaults to Suspend)',
    kind: 'AgentIdentity',
    spec: agentSpec({ circuitBreaker: { maxDenialsPerMinute: 1 } }),
    ok: true,
  },
  {
    name: 'agent: circuit breaker without a threshold',
    kind: 'AgentIdentity',
    spec: agentSpec({ circuitBreaker: { action: 'Suspend' } }),
    ok: false,
  },
  {
    name: 'agent: circuit breaker threshold zero',
    kind: 'AgentIdentity',
    spec: agentSpec({ circuitBreaker: { maxCallsPerMinute: 0 } }),
    ok: false,
  },
  {
    name: 'agent: circuit breaker unknown action',
    kind: 'AgentIdentity',
    spec: agentSpec({ circuitBreaker: { maxCallsPerMinute: 10, action: 'Kill' } }),
    ok: false,
  },
  {
    name: 'agent: circuit breaker denials above calls',
    kind: 'AgentIdentity',
    spec: agentSpec({ circuitBreaker: { maxCallsPerMinute: 10, maxDenialsPerMinute: 11 } }),
    ok: false,
  },
  {
    name: 'agent: circuit breaker unknown field',
    kind: 'AgentIdentity',
    spec: agentSpec({ circuitBreaker: { maxCallsPerMinute: 10, maxErrors: 3 } }),
    ok: false,
  },
  {
    name: 'agent: image signing keys (ECDSA P-256 PEM) next to digests',
    kind: 'AgentIdentity',
    spec: agentSpec({
      attestation: {
        images: {
          digests: [`sha256:${'a'.repeat(64)}`],
          signatures: { keys: [{ name: 'release-2026', publicKey: SIGNING_KEY_PEM }] },
        },
      },
    }),
    ok: true,
  },
  {
    name: 'agent: image signing key that is not PEM',
    kind: 'AgentIdentity',
    spec: agentSpec({
      attestation: { images: { signatures: { keys: [{ name: 'k', publicKey: 'ssh-ed25519 AAAAC3Nza' }] } } },
    }),
    ok: false,
  },
  {
    name: 'agent: image signing keys with the same name',
    kind: 'AgentIdentity',
    spec: agentSpec({
      attestation: {
        images: {
          signatures: {
            keys: [
              { name: 'k', publicKey: SIGNING_KEY_PEM },
              { name: 'k', publicKey: SIGNING_KEY_PEM },
            ],
          },
        },
      },
    }),
    ok: false,
  },
  {
    name: 'agent: image signing key without a name',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { images: { signatures: { keys: [{ publicKey: SIGNING_KEY_PEM }] } } } }),
    ok: false,
  },
  {
    name: 'agent: image signing key with an unknown field',
    kind: 'AgentIdentity',
    spec: agentSpec({
      attestation: {
        images: { signatures: { keys: [{ name: 'k', publicKey: SIGNING_KEY_PEM, keyless: true }] } },
      },
    }),
    ok: false,
  },
  {
    name: 'agent: bad SA name',
    kind: 'AgentIdentity',
    spec: agentSpec({ serviceAccountName: 'Bot' }),
    ok: false,
  },
  {
    name: 'agent: SA name too long',
    kind: 'AgentIdentity',
    spec: agentSpec({ serviceAccountName: 'a'.repeat(254) }),
    ok: false,
  },
  {
    name: 'agent: token lifetime at the minimum',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { tokenExpirationSeconds: 600 } }),
    ok: true,
  },
  {
    name: 'agent: token lifetime below the minimum',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { tokenExpirationSeconds: 599 } }),
    ok: false,
  },
  {
    name: 'agent: token lifetime above the maximum',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { tokenExpirationSeconds: 86401 } }),
    ok: false,
  },
  {
    name: 'agent: 33 allowed images',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { allowedImages: Array.from({ length: 33 }, (_, i) => `img${i}`) } }),
    ok: false,
  },
  {
    name: 'agent: 33 pod labels',
    kind: 'AgentIdentity',
    spec: agentSpec({
      attestation: {
        requiredPodLabels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
      },
    }),
    ok: false,
  },
  {
    name: 'agent: mode Required with an issuer',
    kind: 'AgentIdentity',
    spec: agentSpec({
      userContext: { mode: 'Required', trustedIssuers: [{ issuer: 'https://idp', audiences: ['a'] }] },
    }),
    ok: true,
  },
  {
    name: 'agent: mode Required without issuers',
    kind: 'AgentIdentity',
    spec: agentSpec({ userContext: { mode: 'Required' } }),
    ok: false,
  },
  {
    name: 'agent: mode lowercase',
    kind: 'AgentIdentity',
    spec: agentSpec({ userContext: { mode: 'required' } }),
    ok: false,
  },
  {
    name: 'agent: issuer without audiences',
    kind: 'AgentIdentity',
    spec: agentSpec({ userContext: { trustedIssuers: [{ issuer: 'https://idp', audiences: [] }] } }),
    ok: false,
  },
  {
    name: 'agent: duplicate issuer',
    kind: 'AgentIdentity',
    spec: agentSpec({
      userContext: {
        trustedIssuers: [
          { issuer: 'https://idp', audiences: ['a'] },
          { issuer: 'https://idp', audiences: ['b'] },
        ],
      },
    }),
    ok: false,
  },
  {
    name: 'agent: duration with days',
    kind: 'AgentIdentity',
    spec: agentSpec({ maxCredentialTTL: '1d' }),
    ok: false,
  },
  {
    name: 'agent: compound duration',
    kind: 'AgentIdentity',
    spec: agentSpec({ maxCredentialTTL: '1h30m' }),
    ok: true,
  },
  { name: 'policy: DESIGN.md example', kind: 'AccessPolicy', spec: policySpec(), ok: true },
  { name: 'policy: no rules', kind: 'AccessPolicy', spec: policySpec({ rules: [] }), ok: false },
  {
    name: 'policy: rule limits per agent, user and agent+user',
    kind: 'AccessPolicy',
    spec: policySpec({
      rules: [
        rule({
          limits: [
            { per: 'agent', calls: 600, window: '1m' },
            { per: 'user', calls: 1, window: '24h' },
            { per: 'agent+user', calls: 1_000_000_000, window: '99999s' },
          ],
        }),
      ],
    }),
    ok: true,
  },
  {
    name: 'policy: limit per something unknown',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ limits: [{ per: 'pod', calls: 10, window: '1m' }] })] }),
    ok: false,
  },
  {
    name: 'policy: limit of zero calls',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ limits: [{ per: 'agent', calls: 0, window: '1m' }] })] }),
    ok: false,
  },
  {
    name: 'policy: limit window of two units',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ limits: [{ per: 'agent', calls: 5, window: '1h30m' }] })] }),
    ok: false,
  },
  {
    name: 'policy: limit window above 24h',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ limits: [{ per: 'agent', calls: 5, window: '25h' }] })] }),
    ok: false,
  },
  {
    name: 'policy: limit without a window',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ limits: [{ per: 'agent', calls: 5 }] })] }),
    ok: false,
  },
  {
    name: 'policy: limits on a Deny rule',
    kind: 'AccessPolicy',
    spec: policySpec({
      effect: 'Deny',
      rules: [rule({ limits: [{ per: 'agent', calls: 5, window: '1m' }] })],
    }),
    ok: false,
  },
  {
    name: 'policy: 65 rules',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: Array.from({ length: 65 }, () => rule()) }),
    ok: false,
  },
  {
    name: 'policy: rule without targets',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [{ tools: ['x'] }] }),
    ok: false,
  },
  {
    name: 'policy: * with another target',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ targets: ['*', 'jira'] })] }),
    ok: false,
  },
  {
    name: 'policy: uppercase target',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ targets: ['Jira'] })] }),
    ok: false,
  },
  {
    name: 'policy: http rule',
    kind: 'AccessPolicy',
    spec: policySpec({
      rules: [rule({ tools: undefined, http: { methods: ['GET', '*'], paths: ['/api/**', '**'] } })],
    }),
    ok: true,
  },
  {
    name: 'policy: lowercase method',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ http: { methods: ['get'] } })] }),
    ok: false,
  },
  {
    name: 'policy: relative path',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ http: { paths: ['api/*'] } })] }),
    ok: false,
  },
  {
    name: 'policy: duplicate condition name',
    kind: 'AccessPolicy',
    spec: policySpec({
      rules: [
        rule({
          when: [
            { name: 'a', expression: 'true' },
            { name: 'a', expression: 'true' },
          ],
        }),
      ],
    }),
    ok: false,
  },
  {
    name: 'policy: condition without expression',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ when: [{ name: 'a' }] })] }),
    ok: false,
  },
  {
    name: 'policy: expression too long',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ when: [{ name: 'a', expression: 'x'.repeat(4097) }] })] }),
    ok: false,
  },
  {
    name: 'policy: 17 conditions',
    kind: 'AccessPolicy',
    spec: policySpec({
      rules: [rule({ when: Array.from({ length: 17 }, (_, i) => ({ name: `c${i}`, expression: 'true' })) })],
    }),
    ok: false,
  },
  {
    name: 'policy: bad credential ttl',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ credential: { ttl: '5' } })] }),
    ok: false,
  },
  { name: 'policy: effect Deny', kind: 'AccessPolicy', spec: policySpec({ effect: 'Deny' }), ok: true },
  { name: 'policy: effect lowercase', kind: 'AccessPolicy', spec: policySpec({ effect: 'deny' }), ok: false },
  {
    name: 'policy: 101 selected names',
    kind: 'AccessPolicy',
    spec: policySpec({ agentSelector: { names: Array.from({ length: 101 }, (_, i) => `a${i}`) } }),
    ok: false,
  },
  { name: 'provider: JWT', kind: 'CredentialProvider', spec: jwtProviderSpec(), ok: true },
  {
    name: 'provider: JWT without block',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: undefined }),
    ok: false,
  },
  {
    name: 'provider: JWT plus apiKey block',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ apiKey: { secretRef: { name: 'a', key: 'b' } } }),
    ok: false,
  },
  {
    name: 'provider: only the wrong block',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: undefined, basicAuth: { secretRef: { name: 'a' } } }),
    ok: false,
  },
  {
    name: 'provider: unknown type',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ type: 'Kerberos' }),
    ok: false,
  },
  {
    name: 'provider: JWT sender-constrained with DPoP',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: { senderConstraint: 'DPoP' } }),
    ok: true,
  },
  {
    name: 'provider: JWT with DPoP and inject format DPoP {token}',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({
      jwt: { senderConstraint: 'DPoP' },
      inject: { header: 'Authorization', format: 'DPoP {token}' },
    }),
    ok: true,
  },
  {
    name: 'provider: JWT with DPoP in another header',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: { senderConstraint: 'DPoP' }, inject: { header: 'X-Token' } }),
    ok: false,
  },
  {
    name: 'provider: JWT with DPoP and a Token format',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: { senderConstraint: 'DPoP' }, inject: { format: 'Token {token}' } }),
    ok: false,
  },
  {
    name: 'provider: JWT with an unknown senderConstraint',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: { senderConstraint: 'mTLS' } }),
    ok: false,
  },
  {
    name: 'provider: JWT bearer with a custom inject header',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: { senderConstraint: 'None' }, inject: { header: 'X-Token' } }),
    ok: true,
  },
  { name: 'provider: AWS', kind: 'CredentialProvider', spec: awsProviderSpec(), ok: true },
  {
    name: 'provider: AWS against MinIO with every field',
    kind: 'CredentialProvider',
    spec: awsProviderSpec(
      { target: { url: 'http://127.0.0.1:9000', protocol: 'HTTP' } },
      {
        roleArn: 'arn:minio:iam:us-east-1::role/dRO6-m_zGKs3pMUxb4wEp5pH1qc',
        region: 'us-east-1',
        service: 's3',
        stsUrl: 'http://127.0.0.1:9000',
        audience: 'warden-minio',
        sessionDuration: '15m',
        sessionPolicy: "{'Version': '2012-10-17', 'Statement': []}",
        sessionTags: { team: "agent.labels['team']" },
      },
    ),
    ok: true,
  },
  {
    name: 'provider: AWS without block',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({ aws: undefined }),
    ok: false,
  },
  {
    name: 'provider: AWS without roleArn',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({ aws: { region: 'eu-west-1' } }),
    ok: false,
  },
  {
    name: 'provider: AWS with a roleArn that is no role',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({}, { roleArn: 'arn:aws:iam::123456789012:user/alice' }),
    ok: false,
  },
  {
    name: 'provider: AWS with a bad region',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({}, { region: 'Europe (Ireland)' }),
    ok: false,
  },
  {
    name: 'provider: AWS with a bad stsUrl',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({}, { stsUrl: 'sts.eu-west-1.amazonaws.com' }),
    ok: false,
  },
  {
    name: 'provider: AWS with a bad target URL',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({ target: { url: 'postgres://s3', protocol: 'HTTP' } }),
    ok: false,
  },
  {
    name: 'provider: AWS over MCP',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({ target: { url: 'https://s3.eu-west-1.amazonaws.com', protocol: 'MCP' } }),
    ok: false,
  },
  {
    name: 'provider: AWS session of 5m',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({}, { sessionDuration: '5m' }),
    ok: false,
  },
  {
    name: 'provider: AWS session of 13h',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({}, { sessionDuration: '13h' }),
    ok: false,
  },
  {
    name: 'provider: AWS plus jwt block',
    kind: 'CredentialProvider',
    spec: awsProviderSpec({ jwt: { audience: 'x' } }),
    ok: false,
  },
  { name: 'provider: PostgreSQL', kind: 'CredentialProvider', spec: postgresProviderSpec(), ok: true },
  {
    name: 'provider: PostgreSQL over default protocol',
    kind: 'CredentialProvider',
    spec: postgresProviderSpec({ target: { url: 'postgres://db/x' } }),
    ok: false,
  },
  {
    name: 'provider: PostgreSQL protocol for JWT',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ target: { url: 'postgres://db/x', protocol: 'PostgreSQL' } }),
    ok: false,
  },
  {
    name: 'provider: http URL for PostgreSQL',
    kind: 'CredentialProvider',
    spec: postgresProviderSpec({ target: { url: 'https://db', protocol: 'PostgreSQL' } }),
    ok: false,
  },
  {
    name: 'provider: no grant roles',
    kind: 'CredentialProvider',
    spec: postgresProviderSpec({ postgresql: { ...postgresProviderSpec().postgresql, grantRoles: [] } }),
    ok: false,
  },
  {
    name: 'provider: port 0',
    kind: 'CredentialProvider',
    spec: postgresProviderSpec({ postgresql: { ...postgresProviderSpec().postgresql, port: 0 } }),
    ok: false,
  },
  { name: 'provider: APIKey', kind: 'CredentialProvider', spec: apiKeyProviderSpec(), ok: true },
  {
    name: 'provider: APIKey without key',
    kind: 'CredentialProvider',
    spec: apiKeyProviderSpec({ apiKey: { secretRef: { name: 'a' } } }),
    ok: false,
  },
  {
    name: 'provider: inject without {token}',
    kind: 'CredentialProvider',
    spec: apiKeyProviderSpec({ inject: { format: 'Token abc' } }),
    ok: false,
  },
  {
    name: 'provider: inject bare {token}',
    kind: 'CredentialProvider',
    spec: apiKeyProviderSpec({ inject: { header: 'X-API-Key', format: '{token}' } }),
    ok: true,
  },
  {
    name: 'provider: header with a space',
    kind: 'CredentialProvider',
    spec: apiKeyProviderSpec({ inject: { header: 'X API Key' } }),
    ok: false,
  },
  {
    name: 'provider: OAuth2 token exchange',
    kind: 'CredentialProvider',
    spec: {
      target: { url: 'https://api', protocol: 'HTTP' },
      type: 'OAuth2TokenExchange',
      oauth2TokenExchange: {
        tokenUrl: 'https://idp/token',
        clientId: 'warden',
        clientSecretRef: { name: 's', key: 'k' },
        scopes: ['read'],
      },
    },
    ok: true,
  },
  {
    name: 'provider: OAuth2 client credentials without secret',
    kind: 'CredentialProvider',
    spec: {
      target: { url: 'https://api' },
      type: 'OAuth2ClientCredentials',
      oauth2ClientCredentials: { tokenUrl: 'https://idp/token', clientId: 'warden' },
    },
    ok: false,
  },
  {
    name: 'provider: BasicAuth',
    kind: 'CredentialProvider',
    spec: {
      target: { url: 'https://api', protocol: 'HTTP' },
      type: 'BasicAuth',
      basicAuth: { secretRef: { name: 's' } },
    },
    ok: true,
  },
  { name: 'audit: first record', kind: 'AuditRecord', spec: auditSpec(), ok: true },
  {
    name: 'audit: later record',
    kind: 'AuditRecord',
    spec: auditSpec({ sequence: 1, previousDigest: DIGEST }),
    ok: true,
  },
  {
    name: 'audit: first record with previous digest',
    kind: 'AuditRecord',
    spec: auditSpec({ previousDigest: DIGEST }),
    ok: false,
  },
  {
    name: 'audit: later record without previous digest',
    kind: 'AuditRecord',
    spec: auditSpec({ sequence: 1 }),
    ok: false,
  },
  { name: 'audit: negative sequence', kind: 'AuditRecord', spec: auditSpec({ sequence: -1 }), ok: false },
  { name: 'audit: no entries', kind: 'AuditRecord', spec: auditSpec({ entries: [] }), ok: false },
  {
    name: 'audit: 501 entries',
    kind: 'AuditRecord',
    spec: auditSpec({ entries: Array.from({ length: 501 }, () => auditSpec().entries[0]) }),
    ok: false,
  },
  {
    name: 'audit: 500 entries',
    kind: 'AuditRecord',
    spec: auditSpec({ entries: Array.from({ length: 500 }, () => auditSpec().entries[0]) }),
    ok: true,
  },
  {
    name: 'audit: end before start',
    kind: 'AuditRecord',
    spec: auditSpec({ endTime: '2026-01-01T00:00:00Z' }),
    ok: false,
  },
  {
    name: 'audit: unknown entry kind',
    kind: 'AuditRecord',
    spec: auditSpec({ entries: [{ time: '2026-01-02T15:04:05Z', kind: 'Login' }] }),
    ok: false,
  },
  {
    name: 'audit: uppercase digest',
    kind: 'AuditRecord',
    spec: auditSpec({ digest: 'A'.repeat(64) }),
    ok: false,
  },
  {
    name: 'audit: rule index out of range',
    kind: 'AuditRecord',
    spec: auditSpec({
      entries: [{ time: '2026-01-02T15:04:05Z', kind: 'Decision', reasons: [{ rule: 64 }] }],
    }),
    ok: false,
  },
];

const condition = {
  type: 'Ready',
  status: 'True',
  reason: 'Ready',
  message: 'ok',
  lastTransitionTime: '2026-01-02T15:04:05Z',
};

/** Statuses every validator must accept (ok) or reject. */
export const STATUS_CORPUS: { name: string; kind: KindWithStatus; status: unknown; ok: boolean }[] = [
  { name: 'empty', kind: 'AgentIdentity', status: {}, ok: true },
  {
    name: 'Ready condition',
    kind: 'AgentIdentity',
    status: { observedGeneration: 1, conditions: [condition] },
    ok: true,
  },
  {
    name: 'condition without message',
    kind: 'AgentIdentity',
    status: { conditions: [{ ...condition, message: undefined }] },
    ok: false,
  },
  {
    name: 'condition status yes',
    kind: 'AgentIdentity',
    status: { conditions: [{ ...condition, status: 'yes' }] },
    ok: false,
  },
  {
    name: 'condition reason with a space',
    kind: 'AccessPolicy',
    status: { conditions: [{ ...condition, reason: 'Bad Reason' }] },
    ok: false,
  },
  {
    name: 'condition type prefixed',
    kind: 'AccessPolicy',
    status: { conditions: [{ ...condition, type: 'warden.dev/Compiled' }] },
    ok: true,
  },
  {
    name: 'duplicate condition type',
    kind: 'CredentialProvider',
    status: { conditions: [condition, condition] },
    ok: false,
  },
  {
    name: 'bad transition time',
    kind: 'CredentialProvider',
    status: { conditions: [{ ...condition, lastTransitionTime: 'now' }] },
    ok: false,
  },
  {
    name: 'decision counters',
    kind: 'AgentIdentity',
    status: { decisions: { allowed: 1, denied: 0, lastDecision: 'Allow' } },
    ok: true,
  },
  {
    name: 'lastDecision lowercase',
    kind: 'AgentIdentity',
    status: { decisions: { lastDecision: 'allow' } },
    ok: false,
  },
  { name: 'negative pending', kind: 'AgentIdentity', status: { revocation: { pending: -1 } }, ok: false },
  { name: 'matched agents', kind: 'AccessPolicy', status: { matchedAgents: ['support-bot'] }, ok: true },
  {
    name: 'standing secret',
    kind: 'CredentialProvider',
    status: { standingSecret: true, issuedCount: 3 },
    ok: true,
  },
  { name: 'unknown status field', kind: 'CredentialProvider', status: { ready: true }, ok: false },
];
