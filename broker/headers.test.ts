import { describe, expect, it } from 'vitest';
import { ROUTING_HEADERS } from './constants.js';
import {
  agentResponseHeaders,
  type HeaderList,
  redactString,
  routingHeader,
  upstreamRequestHeaders,
} from './headers.js';

const names = (h: HeaderList): string[] => h.map(([n]) => n.toLowerCase());
const value = (h: HeaderList, name: string): string[] =>
  h.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

describe('upstreamRequestHeaders', () => {
  const agent: HeaderList = [
    ['Host', 'localhost:1234'],
    ['Authorization', 'Bearer agent-chosen'],
    ['Cookie', 'session=abc'],
    ['Proxy-Authorization', 'Basic eA=='],
    ['X-Api-Key', 'agent-key'],
    ['x-warden-user-token', 'eyJ.user.token'],
    ['x-warden-context', '{"ticketId":"SUP-1"}'],
    ['X-Forwarded-For', '10.0.0.1'],
    ['Connection', 'keep-alive, X-Hop'],
    ['X-Hop', 'drop me'],
    ['Transfer-Encoding', 'chunked'],
    ['Accept-Encoding', 'gzip'],
    ['Accept', 'application/json'],
    ['X-Custom', 'kept'],
  ];

  it('strips agent credentials, warden headers and hop-by-hop headers, then injects', () => {
    const http = agent.filter(([n]) => n !== 'X-Forwarded-For');
    const r = upstreamRequestHeaders(http, {
      mode: 'http',
      injectHeader: 'X-Api-Key',
      inject: [['X-Api-Key', 'issued-key-123']],
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(names(r.headers)).toEqual(['accept', 'x-custom', 'accept-encoding', 'x-api-key']);
    expect(value(r.headers, 'x-api-key')).toEqual(['issued-key-123']);
    expect(value(r.headers, 'accept-encoding')).toEqual(['identity']);
    expect(r.stripped).toEqual(['authorization', 'cookie', 'proxy-authorization', 'x-api-key']);
  });

  it('MCP mode forwards only the streamable HTTP transport headers', () => {
    const r = upstreamRequestHeaders(
      [
        ...agent,
        ['Mcp-Session-Id', 's1'],
        ['MCP-Protocol-Version', '2025-06-18'],
        ['Last-Event-ID', '7'],
        ['Content-Type', 'application/json'],
      ],
      { mode: 'mcp', injectHeader: 'Authorization', inject: [['Authorization', 'Bearer issued']] },
    );
    expect(r.ok && names(r.headers)).toEqual([
      'accept',
      'mcp-session-id',
      'mcp-protocol-version',
      'last-event-id',
      'content-type',
      'accept-encoding',
      'authorization',
    ]);
    expect(r.ok && value(r.headers, 'authorization')).toEqual(['Bearer issued']);
  });

  it.each(Object.keys(ROUTING_HEADERS))('HTTP mode refuses the routing header %s, naming it', (name) => {
    const r = upstreamRequestHeaders(
      [
        ['Accept', '*/*'],
        [name, name === 'forwarded' ? 'for=10.0.0.1' : 'DELETE'],
      ],
      { mode: 'http', injectHeader: 'Authorization', inject: [] },
    );
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toContain(`header '${name}' is not allowed`);
      expect(r.message).toContain(ROUTING_HEADERS[name]);
    }
  });

  it.each([
    ['upper case', 'X-HTTP-METHOD-OVERRIDE', 'x-http-method-override'],
    ['underscores (CGI/Rack/PHP read them as dashes)', 'X_HTTP_Method_Override', 'x-http-method-override'],
    ['mixed', 'x-Forwarded_Prefix', 'x-forwarded-prefix'],
  ])('recognises a routing header written in %s', (_n, name, key) => {
    expect(routingHeader(name)).toBe(key);
    const r = upstreamRequestHeaders([[name, 'DELETE']], {
      mode: 'http',
      injectHeader: 'Authorization',
      inject: [],
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(`header '${name}' is not allowed`);
  });

  it('refuses a routing header even when Connection lists it (it is not left to a hop to drop)', () => {
    const r = upstreamRequestHeaders(
      [
        ['Connection', 'X-HTTP-Method-Override'],
        ['X-HTTP-Method-Override', 'DELETE'],
      ],
      { mode: 'http', injectHeader: 'Authorization', inject: [] },
    );
    expect(r.ok).toBe(false);
  });

  it('does not take look-alike names for routing headers', () => {
    for (const n of ['x-http-method-overrides', 'x-forwarded', 'method', 'x-original']) {
      expect(routingHeader(n)).toBeUndefined();
    }
  });

  it('MCP mode drops routing headers (its allow-list never forwards them)', () => {
    const r = upstreamRequestHeaders(
      Object.keys(ROUTING_HEADERS).map((n): [string, string] => [n, 'x']),
      { mode: 'mcp', injectHeader: 'Authorization', inject: [] },
    );
    expect(r.ok && names(r.headers)).toEqual(['accept-encoding']);
  });

  it.each([
    ['CRLF in a value', ['X-A', 'x\r\nAuthorization: Bearer evil']],
    ['bare LF in a value', ['X-A', 'x\nevil: 1']],
    ['NUL in a value', ['X-A', 'x\0y']],
    ['CR in a name', ['X-A\r', 'x']],
  ] as const)('refuses %s', (_n, header) => {
    const r = upstreamRequestHeaders([[header[0], header[1]]], {
      mode: 'http',
      injectHeader: 'Authorization',
      inject: [],
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/CR, LF or NUL/);
  });

  it('refuses an issued credential that would split the request, without echoing it', () => {
    const r = upstreamRequestHeaders([], {
      mode: 'http',
      injectHeader: 'Authorization',
      inject: [['Authorization', 'Bearer a\r\nX: b']],
    });
    expect(r).toEqual({ ok: false, message: 'the issued credential cannot be sent as a header' });
  });
});

describe('a DPoP proof the agent sends', () => {
  it('is stripped (and named in stripped) even for a bearer provider', () => {
    const r = upstreamRequestHeaders(
      [
        ['DPoP', 'agent-made-proof'],
        ['Accept', '*/*'],
      ],
      {
        mode: 'http',
        injectHeader: 'Authorization',
        inject: [['Authorization', 'Bearer issued']],
      },
    );
    if (!r.ok) throw new Error(r.message);
    expect(r.headers.map(([n]) => n.toLowerCase())).not.toContain('dpop');
    expect(r.stripped).toEqual(['dpop']);
  });
});

describe('agentResponseHeaders', () => {
  it('drops hop-by-hop and Set-Cookie, drops length when the body is rewritten, redacts secrets', () => {
    const out = agentResponseHeaders(
      [
        ['Content-Type', 'application/json'],
        ['Content-Length', '10'],
        ['Set-Cookie', 'sid=1'],
        ['Connection', 'close'],
        ['X-Echo', 'you sent Bearer sekrit-token-1'],
      ],
      ['sekrit-token-1', 'Bearer sekrit-token-1'],
      { bodyRewritten: true },
    );
    expect(out).toEqual([
      ['Content-Type', 'application/json'],
      ['X-Echo', 'you sent [REDACTED]'],
    ]);
  });
});

describe('redactString', () => {
  it('replaces the longest form first and every occurrence', () => {
    expect(redactString('a Bearer tok12345 b tok12345', ['tok12345', 'Bearer tok12345'])).toBe(
      'a [REDACTED] b [REDACTED]',
    );
  });
  it('leaves text without secrets alone', () => {
    expect(redactString('nothing here', ['tok12345'])).toBe('nothing here');
  });
});
