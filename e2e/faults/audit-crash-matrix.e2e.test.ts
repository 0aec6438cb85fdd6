/**
 * Fault: the audit crash matrix, reduced (#18; the full run is `make bench`, bench/audit-crash.bench.ts).
 * Traffic through a real broker (audit spool on) to a real target while the broker, the leader
 * controller and kube-apiserver (a private control plane) are SIGKILLed and started again at
 * seeded random moments (e2e/faults/crash-matrix.ts). Every decision the agent received is in the
 * AuditRecords exactly once with the decision it saw; no request id twice; the chain verifies.
 * AUDIT_CRASH_SEED repeats a run; AUDIT_CRASH_RATE / _SECONDS change its size.
 */
import { describe, expect, it } from 'vitest';
import { describeResult, runCrashMatrix } from './crash-matrix.js';

const seed = Number(process.env.AUDIT_CRASH_SEED ?? Date.now() % 100_000);

describe('fault: broker, leader controller and kube-apiserver SIGKILLed under traffic', () => {
  it('every decision the agent received is in the trail exactly once, with the decision it saw', async () => {
    const r = await runCrashMatrix({
      rate: Number(process.env.AUDIT_CRASH_RATE ?? 200),
      seconds: Number(process.env.AUDIT_CRASH_SECONDS ?? 40),
      kills: { broker: 2, controller: 2, apiserver: 2 },
      seed,
      log: (line) => console.log(`[crash matrix] ${line}`),
    });
    console.log(describeResult(r));
    expect(r.killed).toEqual({ broker: 2, controller: 2, apiserver: 2 });
    expect(r.decisions).toBeGreaterThan(0);
    expect(r.allowed).toBeGreaterThan(0);
    expect(r.denied).toBeGreaterThan(0);
    expect(r.missing).toEqual([]);
    expect(r.mismatched).toEqual([]);
    expect(r.duplicates).toEqual([]);
    expect(r.chainProblems).toEqual([]);
    expect(r.entries).toBe(r.decisions + r.unansweredInTrail);
  }, 600_000);
});
