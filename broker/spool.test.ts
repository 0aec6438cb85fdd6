import {
  appendFileSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AuditShipper, type AuditTransport, type BrokerAuditEvent, type SpooledEvent } from './audit.js';
import { AuditSpool, SpoolUnavailableError } from './spool.js';

const log = pino({ level: 'silent' });
const dir = () => mkdtempSync(join(tmpdir(), 'warden-spool-'));
const ev = (n: number): SpooledEvent => ({
  id: `00000000000000aa-${n}`,
  time: new Date(0).toISOString(),
  kind: 'Decision',
  decision: n % 2 ? 'Allow' : 'Deny',
  user: 'agent acting alone',
  requestId: `r-${n}`,
});
const lines = (d: string) =>
  readdirSync(d)
    .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10))
    .flatMap((f) => readFileSync(join(d, f), 'utf8').split('\n').filter(Boolean));

describe('AuditSpool', () => {
  it('has an entry on disk, in a file only its user may read, when append resolves', async () => {
    const d = dir();
    const spool = await AuditSpool.open({ dir: d, log });
    await spool.append(ev(1));
    expect(lines(d).map((l) => JSON.parse(l).id)).toEqual(['00000000000000aa-1']);
    for (const f of readdirSync(d)) expect(statSync(join(d, f)).mode & 0o777).toBe(0o600);
    expect(spool.length).toBe(1);
  });

  it('writes its segment synchronously (O_DSYNC), so a resolved append has been synced to disk', async () => {
    const d = dir();
    const spool = await AuditSpool.open({ dir: d, log });
    await spool.append(ev(1));
    const [segment] = readdirSync(d);
    // The kernel's view of the open segment: its file descriptor's flags (octal, fcntl.h).
    const fd = readdirSync('/proc/self/fd').find((n) => {
      try {
        return readlinkSync(`/proc/self/fd/${n}`) === join(d, segment ?? '');
      } catch {
        return false;
      }
    });
    expect(fd).toBeDefined();
    const flags = Number.parseInt(
      /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0',
      8,
    );
    expect(flags & constants.O_DSYNC).toBe(constants.O_DSYNC);
    await spool.close();
  });

  it('commits appends that arrive together with one sync (group commit)', async () => {
    const spool = await AuditSpool.open({ dir: dir(), log });
    await Promise.all(Array.from({ length: 200 }, (_, i) => spool.append(ev(i + 1))));
    expect(spool.length).toBe(200);
    // The first append starts a write; the 199 that arrive meanwhile share the next one.
    expect(spool.syncs).toBe(2);
  });

  it('hands out the oldest entries in order and forgets them only when acknowledged', async () => {
    const spool = await AuditSpool.open({ dir: dir(), log });
    for (let i = 1; i <= 5; i++) await spool.append(ev(i));
    const first = await spool.peek(3, 1 << 20);
    expect(first.events.map((e) => e.requestId)).toEqual(['r-1', 'r-2', 'r-3']);
    expect((await spool.peek(3, 1 << 20)).events.map((e) => e.requestId)).toEqual(['r-1', 'r-2', 'r-3']);
    await spool.ack(first.count);
    expect((await spool.peek(10, 1 << 20)).events.map((e) => e.requestId)).toEqual(['r-4', 'r-5']);
  });

  it('gives a process started on the same directory what the crashed one had not had acknowledged', async () => {
    const d = dir();
    const before = await AuditSpool.open({ dir: d, log, segmentBytes: 400 });
    for (let i = 1; i <= 12; i++) await before.append(ev(i));
    await before.ack(4);
    // No close(): the process is gone.
    const after = await AuditSpool.open({ dir: d, log, segmentBytes: 400 });
    const { events } = await after.peek(100, 1 << 20);
    const ids = events.map((e) => e.id);
    expect(ids.slice(-8)).toEqual(Array.from({ length: 8 }, (_, i) => `00000000000000aa-${i + 5}`));
    // Acknowledged entries of a segment that still holds unacknowledged ones are shipped again
    // (the authority writes them once, by id); whole acknowledged segments are gone.
    expect(ids.length - 8).toBeLessThan(3);
    // New entries go to a new segment, after the old ones.
    await after.append(ev(13));
    expect((await after.peek(100, 1 << 20)).events.at(-1)?.requestId).toBe('r-13');
  });

  it('ignores a torn last line (written when the process died, never synced, never answered)', async () => {
    const d = dir();
    const spool = await AuditSpool.open({ dir: d, log });
    await spool.append(ev(1));
    const [file] = readdirSync(d);
    appendFileSync(join(d, file as string), '{"id":"00000000000000aa-2","ti');
    const again = await AuditSpool.open({ dir: d, log });
    expect((await again.peek(10, 1 << 20)).events.map((e) => e.requestId)).toEqual(['r-1']);
  });

  it('skips a line that is not an entry and keeps the ones around it', async () => {
    const d = dir();
    writeFileSync(join(d, '0.spool'), `${JSON.stringify(ev(1))}\nnot json\n${JSON.stringify(ev(2))}\n`);
    const spool = await AuditSpool.open({ dir: d, log });
    expect((await spool.peek(10, 1 << 20)).events.map((e) => e.requestId)).toEqual(['r-1', 'r-2']);
  });

  it('deletes a segment once every entry in it is acknowledged', async () => {
    const d = dir();
    const spool = await AuditSpool.open({ dir: d, log, segmentBytes: 300 });
    for (let i = 1; i <= 10; i++) await spool.append(ev(i));
    const segments = readdirSync(d).length;
    expect(segments).toBeGreaterThan(2);
    await spool.ack(10);
    // Only the segment being appended to stays (empty of live entries).
    expect(readdirSync(d).length).toBe(1);
  });

  it('refuses an append past its bound, saying so, and takes entries again once acknowledged ones are gone', async () => {
    const d = dir();
    const size = (n: number) => Buffer.byteLength(`${JSON.stringify(ev(n))}\n`);
    const maxBytes = [10, 11, 12, 13, 14, 15].reduce((n, i) => n + size(i), 0);
    const spool = await AuditSpool.open({ dir: d, log, maxBytes, segmentBytes: size(10) + size(11) });
    for (let i = 10; i < 16; i++) await spool.append(ev(i));
    const err = await spool.append(ev(16)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpoolUnavailableError);
    expect((err as SpoolUnavailableError).why).toBe('full');
    expect((err as Error).message).toMatch(/6 entries .* not acknowledged .*--audit-spool-max-bytes/);
    await spool.ack(4);
    await expect(spool.append(ev(16))).resolves.toBeUndefined();
  });

  it('refuses every append with the reason when its directory cannot be used', async () => {
    const d = dir();
    const file = join(d, 'not-a-directory');
    writeFileSync(file, '');
    const spool = await AuditSpool.open({ dir: file, log });
    const err = await spool.append(ev(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpoolUnavailableError);
    expect((err as SpoolUnavailableError).why).toBe('io');
    expect((err as Error).message).toContain(file);
  });
});

/** An in-memory authority: acknowledges batches, or refuses while `down`. */
class MemoryTransport implements AuditTransport {
  down = false;
  readonly batches: BrokerAuditEvent[][] = [];
  /** Per request that reached it: whether the broker said it may ship entries again. */
  readonly resent: boolean[] = [];
  async send(events: readonly BrokerAuditEvent[], opts?: { resent?: boolean }): Promise<void> {
    this.resent.push(opts?.resent === true);
    if (this.down) throw new Error('authority unreachable');
    this.batches.push([...events]);
  }
}

describe('AuditShipper over the spool', () => {
  const decision = (n: number): BrokerAuditEvent => {
    const { id: _id, ...rest } = ev(n);
    return rest;
  };

  it('ships spooled entries with ids and removes them from disk once acknowledged', async () => {
    const d = dir();
    const t = new MemoryTransport();
    const spool = await AuditSpool.open({ dir: d, log });
    const s = new AuditShipper({ transport: t, log, queue: spool, source: '0123456789abcdef' });
    for (let i = 1; i <= 3; i++) await s.record(decision(i));
    await s.flush();
    expect(t.batches.flat().map((e) => (e as SpooledEvent).id)).toEqual([
      '0123456789abcdef-1',
      '0123456789abcdef-2',
      '0123456789abcdef-3',
    ]);
    expect(spool.length).toBe(0);
    expect(t.resent.every((r) => !r)).toBe(true);
  });

  it('ships again, with the same ids, what a killed broker had not had acknowledged', async () => {
    const d = dir();
    const t = new MemoryTransport();
    t.down = true;
    const first = new AuditShipper({
      transport: t,
      log,
      queue: await AuditSpool.open({ dir: d, log }),
      source: '1111111111111111',
      flushIntervalMs: 3_600_000,
    });
    for (let i = 1; i <= 4; i++) await first.record(decision(i));
    await first.flush();
    expect(t.batches).toEqual([]);
    // The process dies; the kubelet starts a new one on the same emptyDir.
    t.down = false;
    const spool = await AuditSpool.open({ dir: d, log });
    const second = new AuditShipper({ transport: t, log, queue: spool, source: '2222222222222222' });
    await second.record(decision(5));
    await second.close();
    expect(t.batches.flat().map((e) => (e as SpooledEvent).id)).toEqual([
      '1111111111111111-1',
      '1111111111111111-2',
      '1111111111111111-3',
      '1111111111111111-4',
      '2222222222222222-1',
    ]);
    expect(spool.length).toBe(0);
    // The failed request, then the new process's first one (what it found may have been shipped), say so.
    expect(t.resent).toEqual([false, true]);
  });

  it('keeps entries the authority did not acknowledge and ships the same ids again', async () => {
    const t = new MemoryTransport();
    const spool = await AuditSpool.open({ dir: dir(), log });
    const s = new AuditShipper({
      transport: t,
      log,
      queue: spool,
      source: 'abcdefabcdefabcd',
      flushIntervalMs: 3_600_000,
    });
    t.down = true;
    await s.record(decision(1));
    await s.flush();
    expect(spool.length).toBe(1);
    t.down = false;
    await s.close();
    expect(t.batches.flat().map((e) => (e as SpooledEvent).id)).toEqual(['abcdefabcdefabcd-1']);
    // The first request failed (it may have been persisted): the retry says it ships again.
    expect(t.resent).toEqual([false, true]);
    await s.record(decision(2));
    await s.close();
    expect(t.resent.at(-1)).toBe(false);
  });
});
