/**
 * Durable before answered, and what an agent gets when its decision cannot be kept (#18): a broker
 * whose audit sink is the real spool (broker/spool.ts) on disk, a real HTTP upstream and MCP SDK
 * client and server. The authority is an in-memory transport that is down, so the spool fills:
 * spec.audit.mode Required then denies with AuditUnavailable (nothing reaches the upstream), and
 * BestEffort answers and counts the loss.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, type WardenMetrics } from '../observability/metrics.js';
import { AuditShipper, type AuditTransport, type BrokerAuditEvent } from './audit.js';
import { BrokerDenyReason } from './constants.js';
import {
  type McpUpstream,
  startHttpUpstream,
  startMcpUpstream,
  startTestBroker,
  type TestBroker,
} from './int-fixtures.js';
import { AuditSpool } from './spool.js';
import { provider, snapshot } from './testing.js';

const log = pino({ level: 'silent' });

/** The authority, unreachable until `down` is cleared; what it was told. */
class Authority implements AuditTransport {
  down = true;
  readonly got: BrokerAuditEvent[] = [];
  async send(events: readonly BrokerAuditEvent[]): Promise<void> {
    if (this.down) throw new Error('authority unreachable');
    this.got.push(...events);
  }
}

interface Stack {
  tb: TestBroker;
  http: { url: string; seen: unknown[]; close(): Promise<void> };
  mcp: McpUpstream;
  authority: Authority;
  spoolDir: string;
  metrics: WardenMetrics;
}

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.tb.close();
  await stack?.http.close();
  await stack?.mcp.close();
  stack = undefined;
});

async function start(mode: 'Required' | 'BestEffort', spool: { maxBytes?: number; dir?: string } = {}) {
  const spoolDir = spool.dir ?? mkdtempSync(join(tmpdir(), 'warden-audit-mode-'));
  const authority = new Authority();
  const queue = await AuditSpool.open({
    dir: spoolDir,
    log,
    ...(spool.maxBytes ? { maxBytes: spool.maxBytes } : {}),
  });
  const audit = new AuditShipper({ transport: authority, log, queue, flushIntervalMs: 3_600_000 });
  const metrics = createMetrics();
  const http = await startHttpUpstream();
  const mcp = await startMcpUpstream();
  const tb = await startTestBroker({ audit, metrics });
  tb.source.set(
    snapshot({
      auditMode: mode,
      policies: [
        {
          name: 'allow',
          spec: {
            rules: [
              { targets: ['api'], http: { methods: ['GET'], paths: ['/api/v1/tickets/*'] } },
              { targets: ['jira'], tools: ['jira.search'] },
            ],
          },
        },
      ],
      providers: [provider('api', http.url, 'HTTP'), provider('jira', mcp.url)],
    }),
  );
  stack = { tb, http, mcp, authority, spoolDir, metrics };
  return stack;
}

const get = (s: Stack, n: number) =>
  fetch(`${s.tb.url}/http/api/api/v1/tickets/${n}`, { headers: { 'x-request-id': `call-${n}` } });

async function spoolCount(s: Stack, result: string): Promise<number> {
  const m =
    (await s.metrics.registry.getSingleMetric('warden_broker_audit_spool_total')?.get())?.values ?? [];
  return m.find((v) => v.labels.result === result)?.value ?? 0;
}

/** Fills the spool with allowed calls until one is refused; returns how many were spooled. */
async function fill(s: Stack): Promise<{ spooled: number; refused: Response }> {
  for (let n = 0; n < 200; n++) {
    const r = await get(s, n);
    if ((await spoolCount(s, 'spooled')) === n) return { spooled: n, refused: r };
    await r.arrayBuffer();
  }
  throw new Error('the spool never filled');
}

describe('the audit spool in the access pipeline', () => {
  it('has the decision on disk when the agent gets the answer', async () => {
    const s = await start('BestEffort');
    const r = await get(s, 1);
    expect(r.status).toBe(200);
    const onDisk = readdirSync(s.spoolDir).flatMap((f) =>
      readFileSync(join(s.spoolDir, f), 'utf8').split('\n').filter(Boolean),
    );
    expect(onDisk.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({
        requestId: 'call-1',
        decision: 'Allow',
        target: 'api',
        id: expect.stringMatching(/^[0-9a-f]{16}-1$/),
      }),
    ]);
    // Audit entries hold no credential: the token the broker injected upstream is not in the spool.
    for (const token of s.tb.issuer.secrets()) expect(onDisk.join('\n')).not.toContain(token);
  });

  it('Required: a full spool denies with AuditUnavailable, the upstream sees nothing, the authority hears of it', async () => {
    const s = await start('Required', { maxBytes: 4096 });
    const { spooled, refused } = await fill(s);
    expect(spooled).toBeGreaterThan(3);
    const seenBefore = s.http.seen.length;
    expect(refused.status).toBe(403);
    const body = (await refused.json()) as { reason: string; message: string };
    expect(body.reason).toBe(BrokerDenyReason.AuditUnavailable);
    expect(body.message).toMatch(
      /could not record this call in its audit spool \(.*--audit-spool-max-bytes\).*spec\.audit\.mode: Required/,
    );
    expect(s.http.seen.length).toBe(seenBefore);
    expect(await spoolCount(s, 'denied')).toBe(1);

    // MCP too, from its first message on: the same pipeline.
    const client = new Client({ name: 'agent', version: '1' });
    const err = await client
      .connect(new StreamableHTTPClientTransport(new URL(`${s.tb.url}/mcp/jira`)))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).data).toMatchObject({ reason: BrokerDenyReason.AuditUnavailable });
    await client.close();

    // The authority comes back: the spooled entries go first, then the denials as notices (no id).
    s.authority.down = false;
    await (s.tb.broker.access.audit as AuditShipper).close();
    const ids = s.authority.got.filter((e) => 'id' in e);
    expect(ids).toHaveLength(spooled);
    const notices = s.authority.got.filter((e) => !('id' in e));
    expect(notices.map((e) => e.reason)).toContain(BrokerDenyReason.AuditUnavailable);
    expect(notices.every((e) => e.decision === 'Deny')).toBe(true);
  });

  it('BestEffort: a full spool answers the call and counts the entry as lost', async () => {
    const s = await start('BestEffort', { maxBytes: 4096 });
    const { spooled, refused } = await fill(s);
    expect(refused.status).toBe(200);
    expect(await spoolCount(s, 'lost')).toBe(1);
    expect(await spoolCount(s, 'denied')).toBe(0);
    expect(spooled).toBeGreaterThan(3);
  });

  it('Required: a spool directory that cannot be used denies from the first call, saying where', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'warden-audit-mode-')), 'not-a-directory');
    writeFileSync(file, '');
    const s = await start('Required', { dir: file });
    const r = await get(s, 1);
    expect(r.status).toBe(403);
    const body = (await r.json()) as { reason: string; message: string };
    expect(body.reason).toBe(BrokerDenyReason.AuditUnavailable);
    expect(body.message).toContain(file);
    expect(s.http.seen).toHaveLength(0);
  });
});
