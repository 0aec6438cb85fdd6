/**
 * The audit path under crashes and what the spool costs (#18):
 * - audit/crash-matrix: the full crash matrix (e2e/faults/crash-matrix.ts) — 1,000 requests/s
 *   through a real broker with its audit spool while the broker, the leader controller and
 *   kube-apiserver are each SIGKILLed 5 times at seeded random moments; the counts are in the
 *   note (decisions received, entries, missing, duplicated, chain problems). It throws when the
 *   trail lost, changed or duplicated a decision: a benchmark run must not hide that.
 * - audit/broker-call-no-spool vs audit/broker-call-spool: per-call latency of the same traffic
 *   through the same broker without and with the spool (fdatasync per group commit), alternating,
 *   no faults: the added p50/p99 is the spool's cost.
 * - audit/spool-append vs audit/spool-raw-sync: the spool alone, in this process, at the same
 *   open-loop rate: how long an append takes to be on disk (what the spool adds to a call: without
 *   it the entry is queued in memory at once), against one write + fdatasync of one line on the
 *   same disk (the floor), with the CPU per append. Free of the HTTP path's noise on a busy machine.
 * Settings: WARDEN_BENCH_AUDIT_CRASH_RATE (1000), _SECONDS (150), _KILLS (5), _SEED;
 * WARDEN_BENCH_SPOOL_COST_RATE (1000), _SECONDS (15 per round, 2 rounds each);
 * WARDEN_BENCH_SPOOL_APPEND_RATE (200), _SECONDS (10 per round, 3 rounds each).
 * WARDEN_BENCH_AUDIT_PARTS: any of spool, append, matrix (default spool,append,matrix).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { SpooledEvent } from '../broker/audit.js';
import { AuditSpool } from '../broker/spool.js';
import { describeResult, drive, runCrashMatrix, startMatrixStack } from '../e2e/faults/crash-matrix.js';
import { type BenchResult, latencyResult } from './lib.js';

const env = (name: string, fallback: number) => Number(process.env[`WARDEN_BENCH_${name}`] ?? fallback);

async function spoolCost(): Promise<BenchResult[]> {
  const rate = env('SPOOL_COST_RATE', 1000);
  const seconds = env('SPOOL_COST_SECONDS', 15);
  const stack = await startMatrixStack();
  try {
    const rounds: Record<'spool' | 'none', number[][]> = { spool: [], none: [] };
    for (let round = 0; round < 2; round++) {
      for (const mode of ['none', 'spool'] as const) {
        await stack.killBroker();
        await stack.startBroker(mode === 'spool');
        for (let i = 0; i < 300 && (await stack.broker()?.readiness())?.status !== 200; i++) {
          await new Promise((r) => setTimeout(r, 200));
        }
        // Warm-up (credential, connections, JIT), then the measured run.
        await drive(stack.brokerUrl, {
          rate: Math.min(rate, 200),
          seconds: 2,
          prefix: `warm-${mode}-${round}`,
        });
        const ms: number[] = [];
        await drive(stack.brokerUrl, { rate, seconds, prefix: `cost-${mode}-${round}`, latencies: ms });
        rounds[mode].push(ms.map((v) => v * 1000));
      }
    }
    const none = latencyResult('audit/broker-call-no-spool', rounds.none, {
      note: `HTTP calls through the broker child process (policy decision, cached credential, loopback target) at ${rate}/s open loop, ${seconds} s × 2 rounds, no audit spool: entries wait in memory`,
    });
    const spool = latencyResult('audit/broker-call-spool', rounds.spool, {
      note: `the same calls with --audit-spool: each decision written and fdatasynced (group commit) before the answer; added p50 ${((latencyResult('', rounds.spool).p50Micros - none.p50Micros) / 1000).toFixed(2)} ms, p99 ${((latencyResult('', rounds.spool).p99Micros - none.p99Micros) / 1000).toFixed(2)} ms`,
    });
    return [none, { ...spool, baseline: none.name }];
  } finally {
    await stack.stop();
  }
}

/** A decision entry of a typical size (an MCP tool call with its replay data), ~700 bytes. */
function decisionEntry(n: number): SpooledEvent {
  return {
    id: `0123456789abcdef-${n}`,
    time: new Date().toISOString(),
    kind: 'Decision',
    decision: n % 4 === 0 ? 'Deny' : 'Allow',
    user: 'https://idp.example.com#alice@example.com',
    target: 'jira',
    tool: 'jira.get_issue',
    requestId: `bench-${n}`,
    policy: 'agents/support-read',
    reasons: [{ policy: 'agents/support-read', rule: 0, message: 'rule 0 of agents/support-read allows it' }],
    message: n % 4 === 0 ? 'NoMatchingAllow: no rule of any AccessPolicy allows jira.get_issue' : 'allowed',
    replay: {
      request: { kind: 'mcp', target: 'jira', tool: 'jira.get_issue', args: { issueKey: `SUP-${n}` } },
      context: { purpose: 'support', ticketId: `SUP-${n}` },
      user: { present: true, sub: 'alice@example.com', groups: ['support'] },
    },
  } as unknown as SpooledEvent;
}

/** Calls `fn` at `rate`/s for `seconds` (open loop: on schedule, not after the previous one). */
async function openLoop(rate: number, seconds: number, fn: () => Promise<unknown>): Promise<number[]> {
  const period = 1000 / rate;
  const n = Math.round(rate * seconds);
  const latencies: number[] = [];
  const inFlight: Promise<unknown>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const wait = t0 + i * period - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const start = performance.now();
    inFlight.push(fn().then(() => latencies.push((performance.now() - start) * 1000)));
  }
  await Promise.all(inFlight);
  return latencies;
}

async function spoolAppend(): Promise<BenchResult[]> {
  const rate = env('SPOOL_APPEND_RATE', 200);
  const seconds = env('SPOOL_APPEND_SECONDS', 10);
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-spool-'));
  const log = pino({ level: 'silent' });
  const rounds: Record<'spool' | 'raw', number[][]> = { spool: [], raw: [] };
  const cpu: Record<'spool' | 'raw', number[]> = { spool: [], raw: [] };
  try {
    for (let round = 0; round < 3; round++) {
      // The floor: one line written and fdatasynced by itself, nothing shared.
      const raw = await open(join(dir, `raw-${round}`), 'wx', 0o600);
      let pos = 0;
      let c0 = process.cpuUsage();
      rounds.raw.push(
        await openLoop(rate, seconds, async () => {
          const line = Buffer.from(`${JSON.stringify(decisionEntry(pos))}\n`);
          const at = pos;
          pos += line.length;
          await raw.write(line, 0, line.length, at);
          await raw.datasync();
        }),
      );
      let c = process.cpuUsage(c0);
      cpu.raw.push((c.user + c.system) / (rate * seconds));
      await raw.close();
      // The spool: an append resolves once its group is on disk; acknowledged as the shipper would.
      const spool = await AuditSpool.open({ dir: join(dir, `spool-${round}`), log });
      let n = 0;
      c0 = process.cpuUsage();
      rounds.spool.push(
        await openLoop(rate, seconds, async () => {
          await spool.append(decisionEntry(++n));
          if (spool.length >= 100) await spool.ack(spool.length);
        }),
      );
      c = process.cpuUsage(c0);
      cpu.spool.push((c.user + c.system) / (rate * seconds));
      await spool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const raw = latencyResult('audit/spool-raw-sync', rounds.raw, {
    cpuMicrosPerOp: cpu.raw,
    note: `one ~700-byte line written and fdatasynced alone, ${rate}/s open loop, ${seconds} s × 3 rounds (the disk's floor)`,
  });
  const spool = latencyResult('audit/spool-append', rounds.spool, {
    cpuMicrosPerOp: cpu.spool,
    note: `AuditSpool.append of the same entries at ${rate}/s, ${seconds} s × 3 rounds: what the spool adds to each call (without it the entry is queued in memory at once)`,
  });
  return [raw, { ...spool, baseline: raw.name }];
}

async function crashMatrix(): Promise<BenchResult> {
  const kills = env('AUDIT_CRASH_KILLS', 5);
  const r = await runCrashMatrix({
    rate: env('AUDIT_CRASH_RATE', 1000),
    seconds: env('AUDIT_CRASH_SECONDS', 150),
    kills: { broker: kills, controller: kills, apiserver: kills },
    seed: env('AUDIT_CRASH_SEED', Date.now() % 100_000),
    log: (line) => console.log(`  [crash matrix] ${line}`),
  });
  const text = describeResult(r);
  console.log(text);
  if (r.missing.length + r.mismatched.length + r.duplicates.length + r.chainProblems.length > 0) {
    throw new Error(`the audit trail does not hold every decision exactly once:\n${text}`);
  }
  const micros = (r.seconds * 1e6) / Math.max(1, r.decisions);
  const ops = r.decisions / r.seconds;
  return {
    name: 'audit/crash-matrix',
    p50Micros: micros,
    p99Micros: micros,
    meanMicros: micros,
    opsPerSec: ops,
    iterations: r.decisions,
    repeats: 1,
    spread: {
      p50: { min: micros, max: micros },
      p99: { min: micros, max: micros },
      opsPerSec: { min: ops, max: ops },
    },
    note: `${text.replace(/\n\s*/g, '; ')} (latency columns = 1/decision rate)`,
  };
}

export async function run(): Promise<BenchResult[]> {
  // WARDEN_BENCH_AUDIT_PARTS=spool, =append or =matrix runs one part.
  const parts = (process.env.WARDEN_BENCH_AUDIT_PARTS ?? 'spool,append,matrix').split(',');
  const out: BenchResult[] = [];
  if (parts.includes('append')) {
    const cost = await spoolAppend();
    for (const r of cost)
      console.log(
        `  ${r.name}: p50 ${(r.p50Micros / 1000).toFixed(3)} ms, p99 ${(r.p99Micros / 1000).toFixed(3)} ms, cpu ${r.cpuMicrosPerOp?.toFixed(1) ?? '?'} µs/op; ${r.note}`,
      );
    out.push(...cost);
  }
  if (parts.includes('spool')) {
    const cost = await spoolCost();
    for (const r of cost)
      console.log(
        `  ${r.name}: p50 ${(r.p50Micros / 1000).toFixed(2)} ms, p99 ${(r.p99Micros / 1000).toFixed(2)} ms; ${r.note}`,
      );
    out.push(...cost);
  }
  if (parts.includes('matrix')) out.push(await crashMatrix());
  return out;
}
