import { describe, expect, it } from 'vitest';
import { route } from './server.js';

describe('route', () => {
  it.each([
    ['/mcp/jira', 'combined', { kind: 'mcp', provider: 'jira' }],
    ['/mcp/jira/', 'combined', { kind: 'mcp', provider: 'jira' }],
    ['/http/api/v1/x?y=1', 'combined', { kind: 'http', provider: 'api', rest: '/v1/x?y=1' }],
    ['/jira', 'mcp', { kind: 'mcp', provider: 'jira' }],
    // Clients that want a URL ending in /mcp (MCP Inspector CLI) reach the provider the user typed.
    ['/jira/mcp', 'mcp', { kind: 'mcp', provider: 'jira' }],
    ['/jira/mcp/', 'mcp', { kind: 'mcp', provider: 'jira' }],
    ['/jira/mcp?x=1', 'mcp', { kind: 'mcp', provider: 'jira' }],
    ['/mcp/jira', 'mcp', { kind: 'mcp', provider: 'jira' }],
    ['/mcp/jira/mcp', 'mcp', { kind: 'mcp', provider: 'jira' }],
    ['/mcp/jira/mcp', 'combined', { kind: 'mcp', provider: 'jira' }],
    // A provider named mcp stays reachable in every form.
    ['/mcp', 'mcp', { kind: 'mcp', provider: 'mcp' }],
    ['/mcp/mcp', 'mcp', { kind: 'mcp', provider: 'mcp' }],
    ['/mcp/mcp', 'combined', { kind: 'mcp', provider: 'mcp' }],
    ['/api/v1/x', 'http', { kind: 'http', provider: 'api', rest: '/v1/x' }],
    ['/http/api/v1', 'http', { kind: 'http', provider: 'api', rest: '/v1' }],
    // On a dedicated HTTP listener the first segment is always the provider.
    ['/mcp/jira', 'http', { kind: 'http', provider: 'mcp', rest: '/jira' }],
  ] as const)('%s on a %s listener', (url, mode, expected) => {
    expect(route(url, mode)).toEqual(expected);
  });

  it.each([
    ['/jira', 'combined', false],
    ['/mcp/jira/extra', 'combined', true],
    ['/mcp/jira/mcp/mcp', 'combined', true],
    ['/mcp', 'combined', true],
    ['/http/api', 'mcp', true],
    ['/jira/sse', 'mcp', true],
    ['/jira/mcp/extra', 'mcp', true],
    ['/', 'mcp', true],
    ['/', 'combined', false],
  ] as const)('%s on a %s listener is not routed (answered in JSON-RPC: %s)', (url, mode, mcp) => {
    const r = route(url, mode);
    expect(r).toMatchObject({ kind: 'none', mcp });
    if (r.kind === 'none' && mcp)
      expect(r.message).toMatch(/no MCP endpoint at this path: use \/(mcp\/)?<provider>/);
  });
});
