import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AUDIT_LINE_SCHEMA, type AuditLine, JsonLineExporter, parseOtlpEndpoint, toLine } from './export.js';

/** A line with every field set: what the schema pins. */
const FULL: AuditLine = toLine(
  'broker',
  {
    time: '2026-12-04T12:00:00.123Z',
    id: '0123456789abcdef-42',
    kind: 'Decision',
    decision: 'Deny',
    pod: 'bot-0',
    user: 'alice',
    userIssuer: 'https://idp.example',
    chain: [
      { name: 'planner', namespace: 'agents' },
      { name: 'bot', namespace: 'agents' },
    ],
    // Never both in one entry (verified or claimed); set here so the schema pins each.
    claimedChain: [{ name: 'bot', namespace: 'agents' }],
    target: 'jira',
    tool: 'jira.delete_issue',
    method: 'POST',
    path: '/rest/api/2/issue',
    policy: 'support-read',
    reasons: [{ policy: 'support-read', rule: 2, condition: 'business-hours', message: 'outside hours' }],
    credentialId: 'jti-9',
    requestId: 'req-1',
    message: 'ConditionFailed: outside hours',
    replay: { kind: 'mcp', policyDecision: 'Deny', policyReason: 'ConditionFailed', args: '{"key":"ABC-1"}' },
  },
  { namespace: 'agents', agent: 'bot', podUID: 'uid-1', session: 'jti-1' },
  {
    endpoint: '/v1/credentials',
    remoteAddress: '10.0.0.7',
    detail: 'denied by the API server',
    reason: 'ConditionFailed',
    stripped: ['x-api-key'],
    trail: true,
  },
);

describe('audit line schema warden.audit/v1', () => {
  it('is pinned: the exact JSON text of a line with every field', () => {
    const out: string[] = [];
    new JsonLineExporter((t) => out.push(t)).export(FULL);
    expect(out).toEqual([
      '{"schema":"warden.audit/v1","time":"2026-12-04T12:00:00.123Z","id":"0123456789abcdef-42","source":"broker","kind":"Decision","decision":"Deny",' +
        '"namespace":"agents","agent":"bot","pod":"bot-0","podUID":"uid-1","session":"jti-1","user":"alice","userIssuer":"https://idp.example",' +
        '"chain":[{"name":"planner","namespace":"agents"},{"name":"bot","namespace":"agents"}],' +
        '"claimedChain":[{"name":"bot","namespace":"agents"}],' +
        '"target":"jira","tool":"jira.delete_issue","method":"POST","path":"/rest/api/2/issue","policy":"support-read",' +
        '"reasons":[{"policy":"support-read","rule":2,"condition":"business-hours","message":"outside hours"}],' +
        '"credentialId":"jti-9","requestId":"req-1","message":"ConditionFailed: outside hours",' +
        '"replay":{"kind":"mcp","policyDecision":"Deny","policyReason":"ConditionFailed","args":"{\\"key\\":\\"ABC-1\\"}"},"endpoint":"/v1/credentials",' +
        '"remoteAddress":"10.0.0.7","detail":"denied by the API server","reason":"ConditionFailed","stripped":["x-api-key"],"trail":true}\n',
    ]);
    expect(AUDIT_LINE_SCHEMA).toBe('warden.audit/v1');
  });

  it('matches the schema table in docs/audit-export.md, field for field and in order', () => {
    const doc = readFileSync(new URL('../docs/audit-export.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Schema'), doc.indexOf('## OTLP logs'));
    const documented = [...section.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual(Object.keys(FULL));
    const always = [...section.matchAll(/^\| `([A-Za-z]+)` \|(?:[^|\\]|\\\|)+\| yes \|/gm)].map((m) => m[1]);
    const minimal = toLine(
      'controller',
      { time: '2026-12-04T12:00:00Z', kind: 'Suspension' },
      {},
      { trail: false },
    );
    expect(always).toEqual(Object.keys(minimal));
  });

  it('leaves out fields without a value, never null or empty', () => {
    const line = toLine(
      'authority',
      { time: '2026-12-04T12:00:00Z', kind: 'Session', decision: 'Allow', user: '', reasons: [] },
      { namespace: undefined, agent: undefined },
      { endpoint: '/v1/token', stripped: [], trail: false },
    );
    expect(line).toEqual({
      schema: 'warden.audit/v1',
      time: '2026-12-04T12:00:00Z',
      source: 'authority',
      kind: 'Session',
      decision: 'Allow',
      endpoint: '/v1/token',
      trail: false,
    });
  });

  it('a write that throws (closed stdout) is swallowed: the trail still has the entry', () => {
    const x = new JsonLineExporter(() => {
      throw new Error('EPIPE');
    });
    expect(() => x.export(FULL)).not.toThrow();
  });
});

describe('parseOtlpEndpoint', () => {
  it('accepts an http(s) URL', () => {
    expect(parseOtlpEndpoint('http://otel-collector.observability:4318/v1/logs')).toBe(
      'http://otel-collector.observability:4318/v1/logs',
    );
    expect(parseOtlpEndpoint('https://otel.example/v1/logs')).toBe('https://otel.example/v1/logs');
  });

  it.each([
    ['not a url', /"not a url" is not a URL/],
    ['grpc://otel:4317', /grpc: is not supported; use an http:\/\/ or https:\/\/ URL/],
    ['https://user:secret@otel.example/v1/logs', /credentials in the URL would be logged/],
  ])('refuses %j, naming the flag', (text, message) => {
    expect(() => parseOtlpEndpoint(text)).toThrow(/^--audit-otlp-endpoint: /);
    expect(() => parseOtlpEndpoint(text)).toThrow(message);
  });
});
