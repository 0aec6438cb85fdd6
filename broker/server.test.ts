import { describe, expect, it } from 'vitest';
import { route } from './server.js';

describe('route', () => {
  it.each([
    ['/mcp/jira', 'combined', { kind: 'mcp', provider: 'jira' }],
    ['/mcp/jira/', 'combined', { kind: 'mcp', provider: 'jira' }],
    ['/http/api/v1/x?y=1', 'combined', { kind: 'http', provider: 'api', rest: '/v1/x?y=1' }],
    ['/jira', 'mcp', { kind: 'mcp', provider: 'jira' }],
    ['/api/v1/x', 'http', { kind: 'http', provider: 'api', rest: '/v1/x' }],
    ['/http/api/v1', 'http', { kind: 'http', provider: 'api', rest: '/v1' }],
    // On a dedicated HTTP listener the first segment is always the provider.
    ['/mcp/jira', 'http', { kind: 'http', provider: 'mcp', rest: '/jira' }],
  ] as const)('%s on a %s listener', (url, mode, expected) => {
    expect(route(url, mode)).toEqual(expected);
  });

  it.each([
    ['/jira', 'combined'],
    ['/mcp/jira/extra', 'combined'],
    ['/http/api', 'mcp'],
    ['/', 'combined'],
  ] as const)('%s on a %s listener is not routed', (url, mode) => {
    expect(route(url, mode).kind).toBe('none');
  });
});
