/**
 * The agent container of the real-node e2e suite: a real MCP client (the SDK's Client over
 * streamable HTTP) and a real PostgreSQL client, run inside the agent container by
 * `kubectl exec` so every call starts where an agent's would — in the pod, on the pod's
 * loopback, with only what the webhook gave the container (WARDEN_* addresses).
 *
 *   agent.js serve                                   idle until SIGTERM (the container's main process)
 *   agent.js call <target> <tool> <json-args> [user-token] [context-json]
 *   agent.js tools <target>
 *   agent.js sql <provider> <query> [pgoptions]
 *   agent.js inspect                                 what the container holds: env, files, tokens
 *
 * An agent without a sidecar (the shared gateway: WARDEN_GATEWAY_URL, WARDEN_GATEWAY_TOKEN_FILE,
 * WARDEN_GATEWAY_PG; the gateway's CA in NODE_EXTRA_CA_CERTS):
 *   agent.js gw-call <target> <tool> <json-args>      MCP through the gateway with the projected token
 *   agent.js gw-anonymous <target>                    an MCP request without a token: the 401 challenge
 *   agent.js gw-sql <provider> <query>                PostgreSQL through the gateway, the token as password
 *   agent.js gw-cert [ip:port]                        the certificate the gateway (or one replica) serves
 * Each command prints one JSON line: {"ok":true,...} or {"ok":false,"error":...}.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';

// The names the webhook injects (core/constants.ts; this file runs in a bare image without it).
const ENV_MCP_BASE = 'WARDEN_MCP_BASE';
const ENV_PG_BASE = 'WARDEN_PG_BASE';
const ENV_USER_TOKEN_HEADER = 'WARDEN_USER_TOKEN_HEADER';
const HEADER_CONTEXT = 'x-warden-context';
const ENV_GATEWAY_URL = 'WARDEN_GATEWAY_URL';
const ENV_GATEWAY_TOKEN_FILE = 'WARDEN_GATEWAY_TOKEN_FILE';
const ENV_GATEWAY_PG = 'WARDEN_GATEWAY_PG';
const ENV_EXTRA_CA = 'NODE_EXTRA_CA_CERTS';

/** The agent's projected token for the gateway, as the kubelet keeps it fresh. */
function gatewayToken(): string {
  return readFileSync(need(ENV_GATEWAY_TOKEN_FILE), 'utf8').trim();
}

const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: was this pod injected by the Warden webhook?`);
  return v;
}

async function mcp(target: string, headers: Record<string, string>, base?: string): Promise<Client> {
  const client = new Client({ name: 'warden-e2e-agent', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${base ?? need(ENV_MCP_BASE)}/mcp/${target}`), {
      requestInit: { headers },
    }),
  );
  return client;
}

function errorFields(err: unknown): Record<string, unknown> {
  const e = err as { code?: unknown; message?: string; data?: { reason?: string } };
  return { error: e.message ?? String(err), code: e.code, reason: e.data?.reason };
}

/** JWT-shaped strings (three base64url parts, a JSON header) anywhere in `text`. */
function jwtsIn(text: string): string[] {
  return [...text.matchAll(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g)].map((m) => m[0]);
}

/** Readable regular files under `dir` (not /proc, /sys, /dev), with JWT-shaped content. */
function scan(dir: string, out: { files: number; withTokens: string[] }, depth = 0): void {
  if (depth > 12) return;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (['/proc', '/sys', '/dev'].includes(path)) continue;
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    if (st.isDirectory()) scan(path, out, depth + 1);
    else if (
      st.isFile() &&
      st.size < 4 * 1024 * 1024 &&
      !path.startsWith('/app/node_modules/') &&
      !path.startsWith('/nodejs/')
    ) {
      out.files++;
      try {
        if (jwtsIn(readFileSync(path, 'latin1')).length > 0) out.withTokens.push(path);
      } catch {
        // unreadable for this user: not a credential the agent holds
      }
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'serve': {
      print({
        ok: true,
        serving: true,
        env: Object.keys(process.env).filter((k) => k.startsWith('WARDEN_')),
      });
      process.on('SIGTERM', () => process.exit(0));
      setInterval(() => {}, 1 << 30);
      return;
    }
    case 'tools': {
      const client = await mcp(args[0] ?? '', {});
      const tools = await client.listTools();
      print({ ok: true, tools: tools.tools.map((t) => t.name) });
      await client.close();
      return;
    }
    case 'call':
    case 'gw-call': {
      const [target = '', tool = '', json = '{}', userToken, context] = args;
      const headers: Record<string, string> = {};
      if (userToken) headers[need(ENV_USER_TOKEN_HEADER)] = userToken;
      if (context) headers[HEADER_CONTEXT] = context;
      const gateway = cmd === 'gw-call';
      if (gateway) headers.authorization = `Bearer ${gatewayToken()}`;
      const client = await mcp(target, headers, gateway ? need(ENV_GATEWAY_URL) : undefined);
      try {
        const result = await client.callTool({
          name: tool,
          arguments: JSON.parse(json) as Record<string, unknown>,
        });
        const text = ((result.content ?? []) as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n');
        print({ ok: !result.isError, text });
      } catch (err) {
        print({ ok: false, ...errorFields(err) });
      } finally {
        await client.close().catch(() => {});
      }
      return;
    }
    case 'sql': {
      const [provider = '', query = 'SELECT 1', pgoptions] = args;
      const client = new pg.Client({
        connectionString: `${need(ENV_PG_BASE)}/${provider}`,
        user: 'agent',
        ...(pgoptions ? { options: pgoptions } : {}),
      });
      client.on('error', () => {});
      try {
        await client.connect();
        const res = await client.query(query);
        print({ ok: true, rows: res.rows });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        print({ ok: false, error: e.message, code: e.code });
      } finally {
        await client.end().catch(() => {});
      }
      return;
    }
    case 'gw-anonymous': {
      const r = await fetch(`${need(ENV_GATEWAY_URL)}/mcp/${args[0] ?? ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
      });
      await r.arrayBuffer();
      print({ ok: true, status: r.status, challenge: r.headers.get('www-authenticate') });
      return;
    }
    case 'gw-sql': {
      const [provider = '', query = 'SELECT 1'] = args;
      const [host = '', port = '5432'] = need(ENV_GATEWAY_PG).split(':');
      const client = new pg.Client({
        host,
        port: Number(port),
        database: provider,
        user: 'agent',
        // The agent's token is the password, sent only inside TLS to the verified gateway.
        password: gatewayToken(),
        ssl: { ca: readFileSync(need(ENV_EXTRA_CA), 'utf8'), servername: host },
      });
      client.on('error', () => {});
      try {
        await client.connect();
        const res = await client.query(query);
        print({ ok: true, rows: res.rows });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        print({ ok: false, error: e.message, code: e.code });
      } finally {
        await client.end().catch(() => {});
      }
      return;
    }
    case 'gw-cert': {
      // A TLS handshake only (no request): the certificate a new connection gets, verified
      // against the gateway's CA for the Service's name, also when dialling one replica's address.
      const url = new URL(need(ENV_GATEWAY_URL));
      const [host = url.hostname, port = url.port || '443'] = (args[0] ?? '').split(':').filter(Boolean);
      const socket = tlsConnect({
        host,
        port: Number(port),
        servername: url.hostname,
        ca: readFileSync(need(ENV_EXTRA_CA), 'utf8'),
      });
      try {
        const cert = await new Promise<{ fingerprint256: string }>((resolve, reject) => {
          socket.once('secureConnect', () => resolve(socket.getPeerCertificate()));
          socket.once('error', reject);
        });
        print({ ok: true, fingerprint256: cert.fingerprint256 });
      } catch (err) {
        print({ ok: false, error: (err as Error).message });
      } finally {
        socket.destroy();
      }
      return;
    }
    case 'inspect': {
      const out = { files: 0, withTokens: [] as string[] };
      scan('/', out);
      const env = process.env;
      print({
        ok: true,
        uid: process.getuid?.(),
        envNames: Object.keys(env).sort(),
        envWithTokens: Object.entries(env)
          .filter(([, v]) => jwtsIn(v ?? '').length > 0)
          .map(([k]) => k),
        secretsDirs: ['/var/run/secrets', '/run/secrets'].flatMap((d) => {
          const found: string[] = [];
          const walk = (p: string) => {
            try {
              for (const n of readdirSync(p)) {
                const q = join(p, n);
                if (statSync(q).isDirectory()) walk(q);
                else found.push(q);
              }
            } catch {
              // absent
            }
          };
          walk(d);
          return found;
        }),
        filesScanned: out.files,
        filesWithTokens: out.withTokens,
      });
      return;
    }
    default:
      throw new Error(
        `unknown command ${JSON.stringify(cmd)}: serve | tools | call | sql | inspect | gw-call | gw-anonymous | gw-sql | gw-cert`,
      );
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  print({ ok: false, ...errorFields(err) });
  process.exit(1);
});
