/** Builders for valid Warden specs and objects; tests change one thing at a time. */
import { API_VERSION } from '../../constants.js';

export const agentSpec = (over: Record<string, unknown> = {}) => ({
  serviceAccountName: 'support-bot',
  ...over,
});

export const rule = (over: Record<string, unknown> = {}) => ({
  targets: ['jira'],
  tools: ['jira.get_*'],
  ...over,
});

export const policySpec = (over: Record<string, unknown> = {}) => ({
  agentSelector: { names: ['support-bot'] },
  effect: 'Allow',
  rules: [
    rule({
      when: [
        { name: 'support-staff', expression: "user.present && 'support' in user.groups" },
        {
          name: 'ticket-referenced',
          expression: "has(context.ticketId) && context.ticketId.matches('^SUP-[0-9]+$')",
        },
      ],
      credential: { ttl: '5m' },
    }),
  ],
  ...over,
});

export const jwtProviderSpec = (over: Record<string, unknown> = {}) => ({
  target: { url: 'http://jira-mcp.tools.svc:8080/mcp', protocol: 'MCP' },
  type: 'JWT',
  jwt: { audience: 'jira-mcp' },
  ...over,
});

export const postgresProviderSpec = (over: Record<string, unknown> = {}) => ({
  target: { url: 'postgres://orders-db:5432/orders', protocol: 'PostgreSQL' },
  type: 'PostgreSQL',
  postgresql: {
    host: 'orders-db',
    database: 'orders',
    adminSecretRef: { name: 'orders-db-admin' },
    grantRoles: ['orders_reader'],
  },
  ...over,
});

export const apiKeyProviderSpec = (over: Record<string, unknown> = {}) => ({
  target: { url: 'https://tickets.example.com', protocol: 'HTTP' },
  type: 'APIKey',
  apiKey: { secretRef: { name: 'tickets-api-key', key: 'api-key' } },
  ...over,
});

export const awsProviderSpec = (over: Record<string, unknown> = {}, aws: Record<string, unknown> = {}) => ({
  target: { url: 'https://s3.eu-west-1.amazonaws.com', protocol: 'HTTP' },
  type: 'AWS',
  aws: { roleArn: 'arn:aws:iam::123456789012:role/agent-reports', region: 'eu-west-1', ...aws },
  ...over,
});

export const DIGEST = 'a'.repeat(64);

export const auditSpec = (over: Record<string, unknown> = {}) => ({
  agent: 'support-bot',
  sequence: 0,
  previousDigest: '',
  digest: DIGEST,
  startTime: '2026-01-02T15:04:05Z',
  endTime: '2026-01-02T15:04:06Z',
  entries: [
    {
      time: '2026-01-02T15:04:05Z',
      kind: 'Decision',
      decision: 'Deny',
      user: 'agent acting alone',
      target: 'jira',
      tool: 'jira.delete_issue',
      reasons: [{ policy: 'deny-deletes', rule: 0, message: 'tool matches *.delete_*' }],
      requestId: 'req-1',
    },
  ],
  ...over,
});

export const object = (kind: string, spec: unknown, name = 'example') => ({
  apiVersion: API_VERSION,
  kind,
  metadata: { name, namespace: 'agents' },
  spec,
});
