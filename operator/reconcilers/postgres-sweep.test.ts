import { describe, expect, it } from 'vitest';
import { SWEEP_REASON, sweepEvent } from './postgres-sweep.js';

describe('sweepEvent', () => {
  it('is silent when nothing expired', () => {
    expect(sweepEvent({ dropped: [], failed: [] })).toBeNull();
  });

  it('reports dropped roles as a Normal event with the count, not the names', () => {
    const e = sweepEvent({ dropped: ['warden_a', 'warden_b'], failed: [] });
    expect(e).toEqual({
      type: 'Normal',
      reason: SWEEP_REASON.RolesDropped,
      note: 'dropped 2 expired temporary role(s)',
    });
  });

  it('a role that cannot be dropped is a Warning naming one role and the database error', () => {
    const e = sweepEvent({
      dropped: ['warden_a'],
      failed: [
        {
          role: 'warden_b',
          message: 'role "warden_b" cannot be dropped because some objects depend on it (SQLSTATE 2BP01)',
        },
        { role: 'warden_c', message: 'x' },
      ],
    });
    expect(e?.type).toBe('Warning');
    expect(e?.reason).toBe(SWEEP_REASON.SweepFailed);
    expect(e?.note).toMatch(/^could not drop 2 expired role\(s\), e\.g\. warden_b: .*2BP01/);
  });

  it('keeps the note within the Event API limit', () => {
    const e = sweepEvent({ dropped: [], failed: [{ role: 'r', message: 'y'.repeat(5000) }] });
    expect(e?.note.length).toBe(1024);
  });
});
