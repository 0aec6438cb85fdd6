import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../api/index.js';
import { dedupe, noteEntries, parseEntryId, type Watermarks } from './entry-id.js';

const e = (id: string | undefined, pod = 'bot-0'): AuditEntry => ({
  time: '2026-12-04T12:00:00.000Z',
  kind: 'Decision',
  decision: 'Allow',
  pod,
  ...(id ? { id } : {}),
});
const S = '0123456789abcdef';

describe('parseEntryId', () => {
  it.each([
    ['a broker id', `${S}-42`, { source: S, sequence: 42 }],
    ['sequence 0 (they start at 1)', `${S}-0`, undefined],
    ['upper-case hex', `${S.toUpperCase()}-1`, undefined],
    ['a short source', 'abc-1', undefined],
    ['no sequence', `${S}-`, undefined],
    ['a sequence with a sign', `${S}--1`, undefined],
  ])('%s', (_name, id, expected) => {
    expect(parseEntryId(id)).toEqual(expected);
  });
});

describe('dedupe', () => {
  it('keeps entries above the watermark, drops those at or below it and repeats within the batch', () => {
    const marks: Watermarks = new Map();
    noteEntries(marks, [e(`${S}-1`), e(`${S}-2`)]);
    const batch = [e(`${S}-1`), e(`${S}-2`), e(`${S}-3`), e(`${S}-3`), e(`${S}-4`)];
    const { fresh, duplicates } = dedupe(marks, batch);
    expect(fresh.map((x) => x.id)).toEqual([`${S}-3`, `${S}-4`]);
    expect(duplicates.map((x) => x.id)).toEqual([`${S}-1`, `${S}-2`, `${S}-3`]);
    // dedupe itself does not move the watermarks; noteEntries does, once the record is written.
    expect(marks.get(`bot-0/${S}`)).toBe(2);
  });

  it('keeps entries without an id (controller and authority entries) and those of other sources or pods', () => {
    const marks: Watermarks = new Map([[`bot-0/${S}`, 10]]);
    const batch = [e(undefined), e(`fedcba9876543210-1`), e(`${S}-1`, 'bot-1'), e(`${S}-5`)];
    const { fresh, duplicates } = dedupe(marks, batch);
    expect(fresh).toEqual(batch.slice(0, 3));
    expect(duplicates).toEqual([batch[3]]);
  });
});
