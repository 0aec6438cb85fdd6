import { describe, expect, it } from 'vitest';
import { SseParser, SseTooLarge, writeSseEvent } from './sse.js';

describe('SseParser', () => {
  it('parses events with fields, multi-line data and comments', () => {
    const p = new SseParser(1024);
    const events = p.push(
      'id: 1\nevent: message\ndata: {"a":1}\n\n: keep-alive\n\ndata: line1\ndata: line2\n\n',
    );
    expect(events).toEqual([
      { id: '1', event: 'message', data: '{"a":1}' },
      { data: '', commentOnly: true },
      { data: 'line1\nline2' },
    ]);
  });

  it('handles CRLF and CR line endings split across chunks', () => {
    const p = new SseParser(1024);
    expect(p.push('data: a\r')).toEqual([]);
    expect(p.push('\n\r\ndata: b\r\r')).toEqual([{ data: 'a' }]);
    expect(p.push('\n')).toEqual([{ data: 'b' }]);
  });

  it('bounds a single event', () => {
    const p = new SseParser(16);
    expect(() => p.push(`data: ${'x'.repeat(64)}`)).toThrow(SseTooLarge);
  });

  it('round-trips through writeSseEvent', () => {
    const ev = { id: '9', event: 'message', data: 'x\ny' };
    expect(new SseParser(1024).push(writeSseEvent(ev))).toEqual([ev]);
  });

  it('cannot be made to emit extra fields through id or event values', () => {
    expect(writeSseEvent({ id: '1\ndata: evil', event: 'message', data: 'ok' })).toBe(
      'id: 1data: evil\nevent: message\ndata: ok\n\n',
    );
  });
});
