import { describe, expect, it } from 'vitest';
import { BrokerDenyReason } from './constants.js';
import { brokerDeny } from './decider.js';
import { InFlightRegistry } from './in-flight.js';

const suspended = brokerDeny(BrokerDenyReason.AgentSuspended, 'agent is suspended: incident 42');

describe('InFlightRegistry', () => {
  it('ends every registered piece of work with the decision and forgets it', () => {
    const r = new InFlightRegistry();
    const seen: string[] = [];
    r.add((why) => seen.push(`a:${why.reason}`));
    r.add((why) => seen.push(`b:${why.reason}`));
    expect(r.size).toBe(2);
    expect(r.abortAll(suspended)).toBe(2);
    expect(seen).toEqual([`a:${BrokerDenyReason.AgentSuspended}`, `b:${BrokerDenyReason.AgentSuspended}`]);
    expect(r.size).toBe(0);
    expect(r.abortAll(suspended)).toBe(0);
  });

  it('does not abort released work, and a second release is harmless', () => {
    const r = new InFlightRegistry();
    let aborted = 0;
    const release = r.add(() => aborted++);
    const other = r.add(() => aborted++);
    release();
    release();
    expect(r.size).toBe(1);
    expect(r.abortAll(suspended)).toBe(1);
    expect(aborted).toBe(1);
    other();
    expect(r.size).toBe(0);
  });

  it('keeps ending the rest when one abort throws, and reports the failure', () => {
    const r = new InFlightRegistry();
    let ended = 0;
    r.add(() => {
      throw new Error('socket already gone');
    });
    r.add(() => ended++);
    const errors: unknown[] = [];
    expect(r.abortAll(suspended, (e) => errors.push(e))).toBe(2);
    expect(ended).toBe(1);
    expect(errors).toHaveLength(1);
    expect(r.size).toBe(0);
  });
});
