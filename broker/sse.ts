/**
 * Server-sent events (pure, incremental): parse a stream into events and write events back.
 * The gateway parses upstream MCP streams so it can filter tools/list results and scrub
 * credentials per complete event; the authority client parses the policy stream.
 */

export interface SseEvent {
  /** `event:` field; absent = "message". */
  event?: string;
  /** `data:` lines joined with "\n". */
  data: string;
  id?: string;
  retry?: number;
  /** True when the block held only comments (keep-alives). */
  commentOnly?: boolean;
}

export class SseTooLarge extends Error {}

export class SseParser {
  private buf = '';
  private lines: string[] = [];
  private size = 0;

  constructor(private readonly maxEventChars: number) {}

  /** Feed decoded text; returns the events completed by it. */
  push(text: string): SseEvent[] {
    this.buf += text;
    const events: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line === '') {
        const ev = this.dispatch();
        if (ev) events.push(ev);
      } else {
        this.size += line.length;
        if (this.size > this.maxEventChars)
          throw new SseTooLarge(`SSE event exceeds ${this.maxEventChars} characters`);
        this.lines.push(line);
      }
    }
    if (this.buf.length + this.size > this.maxEventChars) {
      throw new SseTooLarge(`SSE event exceeds ${this.maxEventChars} characters`);
    }
    return events;
  }

  private dispatch(): SseEvent | null {
    const lines = this.lines;
    this.lines = [];
    this.size = 0;
    if (lines.length === 0) return null;
    const data: string[] = [];
    const ev: SseEvent = { data: '' };
    let fields = 0;
    for (const line of lines) {
      if (line.startsWith(':')) continue;
      fields++;
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (name === 'data') data.push(value);
      else if (name === 'event') ev.event = value;
      else if (name === 'id' && !value.includes('\0')) ev.id = value;
      else if (name === 'retry' && /^\d+$/.test(value)) ev.retry = Number(value);
    }
    if (fields === 0) return { data: '', commentOnly: true };
    ev.data = data.join('\n');
    return ev;
  }
}

/** Serialise one event (field values must not contain CR/LF except data, which is split into lines). */
export function writeSseEvent(ev: SseEvent): string {
  if (ev.commentOnly) return ':\n\n';
  let out = '';
  if (ev.id !== undefined) out += `id: ${ev.id.replace(/[\r\n]/g, '')}\n`;
  if (ev.event !== undefined) out += `event: ${ev.event.replace(/[\r\n]/g, '')}\n`;
  if (ev.retry !== undefined) out += `retry: ${ev.retry}\n`;
  for (const line of ev.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}
