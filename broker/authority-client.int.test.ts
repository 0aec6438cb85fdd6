/**
 * The authority client against a small in-process HTTP server speaking the authority's wire
 * protocol (RFC 8693 form on /v1/token, SSE on /v1/stream, JSON on /v1/credentials): the parts the
 * e2e chain cannot force — a dropped stream, a revoked session, a silent authority.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthorityClient,
  GRANT_TOKEN_EXCHANGE,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
} from './authority-client.js';
import { BrokerDenyReason } from './constants.js';
import { CredentialDeniedError } from './credentials.js';
import { Decider } from './decider.js';
import { closeServer, listen } from './int-fixtures.js';
import { provider, snapshot } from './testing.js';

interface Seen {
  path: string;
  form?: URLSearchParams;
  auth?: string;
  lastEventId?: string;
  userToken?: string;
}

const seen: Seen[] = [];
let sessions = 0;
/** Sessions the fake authority accepts (revoking one makes it answer 401). */
const valid = new Set<string>();
const streams = new Set<ServerResponse>();
let base: string;
let tokenFile: string;
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    const path = req.url ?? '';
    const auth = req.headers.authorization?.replace(/^Bearer /, '');
    const entry: Seen = { path, ...(auth ? { auth } : {}) };
    seen.push(entry);
    if (path === '/v1/token') {
      entry.form = new URLSearchParams(body);
      const s = `session-${++sessions}`;
      valid.add(s);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          access_token: s,
          issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
          token_type: 'Bearer',
          expires_in: 600,
        }),
      );
      return;
    }
    if (!auth || !valid.has(auth)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":"invalid_token","error_description":"session revoked"}');
      return;
    }
    if (path === '/v1/stream') {
      entry.lastEventId = req.headers['last-event-id'] as string | undefined;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 1000\n\n');
      const snap = snapshot({
        version: 'v7',
        providers: [provider('jira', 'http://127.0.0.1:1/mcp')],
        policies: [{ name: 'p', spec: { rules: [{ targets: ['jira'], tools: ['*'] }] } }],
      });
      res.write(`id: v7\nevent: snapshot\ndata: ${JSON.stringify(snap)}\n\n`);
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    if (path === '/v1/credentials') {
      entry.userToken = req.headers['x-warden-user-token'] as string | undefined;
      const r = JSON.parse(body) as { tool?: string };
      if (r.tool === 'jira.delete') {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: 'access_denied',
            error_description: 'no',
            decision: {
              decision: 'Deny',
              reason: 'DeniedByPolicy',
              policy: 'ns/p',
              rule: 0,
              condition: null,
              message: 'denied centrally',
            },
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          decision: 'Allow',
          credential: {
            kind: 'headers',
            id: 'jti-9',
            headers: { Authorization: 'Bearer minted' },
            expiresAt: new Date(Date.now() + 300_000).toISOString(),
          },
        }),
      );
      return;
    }
    res.writeHead(404).end();
  });
});

let client: AuthorityClient;
let now = 0;

beforeAll(async () => {
  base = await listen(server);
  const dir = await mkdtemp(join(tmpdir(), 'warden-ac-'));
  tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'projected-sa-token-1\n');
  client = new AuthorityClient({
    authorityUrl: base,
    tokenFile,
    log: pino({ level: 'silent' }),
    now: () => now,
    minBackoffMs: 20,
    maxBackoffMs: 100,
  });
  await client.start();
});
afterAll(async () => {
  client.stop();
  await closeServer(server);
});

describe('AuthorityClient', () => {
  it('attests with the projected token in RFC 8693 form and follows the snapshot stream', async () => {
    const attest = seen.find((s) => s.path === '/v1/token')!;
    expect(Object.fromEntries(attest.form!)).toEqual({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: 'projected-sa-token-1',
      subject_token_type: TOKEN_TYPE_JWT,
      requested_token_type: TOKEN_TYPE_ACCESS_TOKEN,
    });
    await expect.poll(() => client.snapshot?.version).toBe('v7');
    const decider = new Decider(client, { now: () => now });
    expect(decider.decideTool('jira', 'jira.get', {}, null, null).decision).toBe('Allow');
  });

  it('reconnects a dropped stream with Last-Event-ID', async () => {
    const before = seen.filter((s) => s.path === '/v1/stream').length;
    for (const s of streams) s.destroy();
    await expect.poll(() => seen.filter((s) => s.path === '/v1/stream').length).toBe(before + 1);
    expect(seen.filter((s) => s.path === '/v1/stream').at(-1)?.lastEventId).toBe('v7');
  });

  it('re-attests (re-reading the token file) when the session is refused', async () => {
    await writeFile(tokenFile, 'projected-sa-token-2\n');
    valid.clear();
    for (const s of streams) s.destroy();
    await expect
      .poll(() =>
        seen
          .filter((s) => s.path === '/v1/token')
          .at(-1)
          ?.form?.get('subject_token'),
      )
      .toBe('projected-sa-token-2');
    await expect.poll(() => streams.size).toBe(1);
  });

  it('asks for credentials with the user token forwarded, and maps a central denial', async () => {
    const cred = await client.issue({
      target: 'jira',
      kind: 'mcp',
      tool: 'jira.get',
      userToken: 'user.jwt.x',
      context: null,
      requestId: 'r1',
    });
    expect(cred).toMatchObject({ id: 'jti-9', headers: { Authorization: 'Bearer minted' } });
    expect(seen.filter((s) => s.path === '/v1/credentials').at(-1)?.userToken).toBe('user.jwt.x');
    await expect(
      client.issue({
        target: 'jira',
        kind: 'mcp',
        tool: 'jira.delete',
        userToken: null,
        context: null,
        requestId: 'r2',
      }),
    ).rejects.toBeInstanceOf(CredentialDeniedError);
  });

  it('a silent authority makes the snapshot stale: the decider denies', async () => {
    const decider = new Decider(client, { now: () => now, staleAfterMs: 30_000 });
    now += 30_001;
    expect(decider.decideTool('jira', 'jira.get', {}, null, null).reason).toBe(
      BrokerDenyReason.PolicySnapshotStale,
    );
  });
});
