/**
 * A strict JSON parser for what the broker decides on (pure, one pass, no regular expressions on
 * the input). It reads RFC 8259 JSON and refuses, with the JSON path of the problem, everything
 * independent parsers read differently (the I-JSON profile, RFC 7493):
 *   - a key repeated in one object, compared after unescaping ("a" and "\u0061" are the same key):
 *     JSON.parse keeps the last, other parsers the first or both;
 *   - an escaped lone surrogate ("\ud800"): some parsers keep it, some substitute U+FFFD, some fail;
 *   - a number that overflows a double (1e400) or an integer literal beyond ±(2^53−1): parsers that
 *     read doubles round it, parsers with big integers or decimals do not;
 *   - nesting deeper than `maxDepth` (checked as it parses, so nothing recurses on attacker depth).
 * Negative zero is read as 0 (JSON has one zero; JSON.stringify writes -0 as 0 anyway).
 * A `__proto__` key becomes an own data property, exactly as JSON.parse does, never a prototype.
 *
 * On a duplicate key the parse goes on (keeping the first value) so the caller can still read an
 * unambiguous request id for its error reply; any other problem stops the parse. ADR 0007.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type StrictJsonProblemKind = 'syntax' | 'duplicate-key' | 'too-deep' | 'number' | 'string';

export interface StrictJsonProblem {
  readonly kind: StrictJsonProblemKind;
  /** JSON path of the problem (`$`, `$.params.name`, `$.items[2]["a b"]`). */
  readonly path: string;
  /** The repeated key (duplicate-key only). */
  readonly key?: string;
  /** What was wrong, where, and what to do; safe to show the sender (values are never quoted in full). */
  readonly message: string;
}

export type StrictJsonResult =
  | { readonly ok: true; readonly value: JsonValue }
  | {
      readonly ok: false;
      readonly problem: StrictJsonProblem;
      /** duplicate-key only: the document read with the first of each repeated key. */
      readonly value?: JsonValue;
    };

export interface StrictJsonOptions {
  /** Deepest nesting of objects/arrays accepted. */
  readonly maxDepth: number;
}

/** Largest integer every double-based parser reads exactly (2^53 − 1). */
const MAX_EXACT_INTEGER = Number.MAX_SAFE_INTEGER;

class Stop extends Error {
  constructor(readonly problem: StrictJsonProblem) {
    super(problem.message);
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A key shown in a message or path: JSON-quoted (control characters escaped) and bounded. */
export function quoteKey(key: string): string {
  return JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key);
}

/** JSONPath of a location given as keys and indices from the root. */
export function jsonPath(segments: readonly (string | number)[]): string {
  let out = '$';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += IDENTIFIER.test(s) && s.length <= 64 ? `.${s}` : `[${quoteKey(s)}]`;
  }
  return out;
}

function describeChar(code: number): string {
  if (Number.isNaN(code)) return 'end of input';
  if (code < 0x20 || code === 0x7f)
    return `control character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return `'${String.fromCharCode(code)}'`;
}

class Parser {
  private pos = 0;
  private depth = 0;
  /** Keys and indices from the root to the value being parsed (for error paths). */
  private readonly path: (string | number)[] = [];
  duplicate: StrictJsonProblem | null = null;

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {}

  private stop(kind: StrictJsonProblemKind, message: string, extra: { key?: string } = {}): never {
    const path = jsonPath(this.path);
    throw new Stop({ kind, path, ...extra, message: message.replace('{path}', path) });
  }

  private syntax(expected: string): never {
    const found = describeChar(this.text.charCodeAt(this.pos));
    return this.stop(
      'syntax',
      `invalid JSON at offset ${this.pos} ({path}): expected ${expected}, found ${found}`,
    );
  }

  private skipWhitespace(): void {
    const t = this.text;
    let p = this.pos;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  document(): JsonValue {
    this.skipWhitespace();
    const value = this.value();
    this.skipWhitespace();
    if (this.pos < this.text.length) this.syntax('end of input after the JSON value');
    return value;
  }

  private value(): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */:
        return this.object();
      case 0x5b /* [ */:
        return this.array();
      case 0x22 /* " */:
        return this.string();
      case 0x74 /* t */:
        return this.literal('true', true);
      case 0x66 /* f */:
        return this.literal('false', false);
      case 0x6e /* n */:
        return this.literal('null', null);
      default:
        if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.syntax('a JSON value');
    }
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    if (this.text.startsWith(word, this.pos)) {
      this.pos += word.length;
      return value;
    }
    return this.syntax(`'${word}'`);
  }

  private enter(): void {
    if (++this.depth > this.maxDepth) {
      this.stop(
        'too-deep',
        `JSON nesting is deeper than ${this.maxDepth} levels at {path}; flatten the data`,
      );
    }
  }

  private object(): { [key: string]: JsonValue } {
    this.enter();
    this.pos++; // {
    const obj: { [key: string]: JsonValue } = {};
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x7d /* } */) {
      this.pos++;
      this.depth--;
      return obj;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== 0x22) this.syntax('a string key');
      const key = this.string();
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x3a /* : */) this.syntax("':' after the key");
      this.pos++;
      this.skipWhitespace();
      this.path.push(key);
      const value = this.value();
      if (Object.hasOwn(obj, key)) {
        // Keep the first value and read on: the caller may still need an unambiguous id.
        this.duplicate ??= {
          kind: 'duplicate-key',
          key,
          path: jsonPath(this.path),
          message: `duplicate key ${quoteKey(key)} at ${jsonPath(this.path)}: a key may appear only once in a JSON object (parsers disagree on which one counts); send it once`,
        };
      } else if (key === '__proto__') {
        // An own data property, as JSON.parse makes it; never the object's prototype.
        Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
      } else {
        obj[key] = value;
      }
      this.path.pop();
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c /* , */) {
        this.pos++;
        this.skipWhitespace();
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        this.depth--;
        return obj;
      }
      this.syntax("',' or '}'");
    }
  }

  private array(): JsonValue[] {
    this.enter();
    this.pos++; // [
    const arr: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x5d /* ] */) {
      this.pos++;
      this.depth--;
      return arr;
    }
    for (;;) {
      this.path.push(arr.length);
      arr.push(this.value());
      this.path.pop();
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWhitespace();
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        this.depth--;
        return arr;
      }
      this.syntax("',' or ']'");
    }
  }

  private string(): string {
    const t = this.text;
    const start = ++this.pos; // after the opening quote
    let p = start;
    // Fast path: no escapes.
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return t.slice(start, p);
      }
      // Escapes and surrogates (checked for pairing) take the slow path.
      if (c === 0x5c /* \ */ || (c >= 0xd800 && c <= 0xdfff)) break;
      if (c < 0x20 || Number.isNaN(c)) {
        this.pos = p;
        if (Number.isNaN(c)) this.syntax("'\"' closing the string");
        this.stop(
          'syntax',
          `invalid JSON at offset ${p} ({path}): ${describeChar(c)} inside a string must be escaped`,
        );
      }
      p++;
    }
    let out = t.slice(start, p);
    /** An escaped high surrogate waiting for its escaped low half. */
    let pendingHigh = false;
    for (;;) {
      const c = t.charCodeAt(p);
      if (pendingHigh && !(c === 0x5c && t.charCodeAt(p + 1) === 0x75)) this.loneSurrogate(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return out;
      }
      if (Number.isNaN(c)) {
        this.pos = p;
        this.syntax("'\"' closing the string");
      }
      if (c < 0x20) {
        this.pos = p;
        this.stop(
          'syntax',
          `invalid JSON at offset ${p} ({path}): ${describeChar(c)} inside a string must be escaped`,
        );
      }
      if (c !== 0x5c) {
        if (c >= 0xd800 && c <= 0xdfff) {
          // A raw surrogate must be a high half followed by a low half.
          const next = t.charCodeAt(p + 1);
          if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) this.loneSurrogate(p);
          out += t.slice(p, p + 2);
          p += 2;
          continue;
        }
        out += t[p];
        p++;
        continue;
      }
      const e = t.charCodeAt(p + 1);
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75 /* u */:
          {
            const hex = t.slice(p + 2, p + 6);
            if (!/^[0-9A-Fa-f]{4}$/.test(hex)) {
              this.pos = p;
              this.stop(
                'syntax',
                `invalid JSON at offset ${p} ({path}): \\u must be followed by four hex digits`,
              );
            }
            const unit = Number.parseInt(hex, 16);
            const isHigh = unit >= 0xd800 && unit <= 0xdbff;
            const isLow = unit >= 0xdc00 && unit <= 0xdfff;
            if (isLow !== pendingHigh) this.loneSurrogate(p);
            pendingHigh = isHigh;
            out += String.fromCharCode(unit);
            p += 6;
            continue;
          }
        default:
          this.pos = p;
          this.stop('syntax', `invalid JSON at offset ${p} ({path}): unknown escape ${describeChar(e)}`);
      }
      p += 2;
    }
  }

  private loneSurrogate(p: number): never {
    this.pos = p;
    return this.stop(
      'string',
      `a string at {path} holds a lone UTF-16 surrogate (offset ${p}); parsers disagree on what it means: send well-formed Unicode`,
    );
  }

  private number(): number {
    const t = this.text;
    const start = this.pos;
    let p = start;
    if (t.charCodeAt(p) === 0x2d) p++;
    const digits = (): number => {
      const from = p;
      while (t.charCodeAt(p) >= 0x30 && t.charCodeAt(p) <= 0x39) p++;
      return p - from;
    };
    const first = t.charCodeAt(p);
    if (first === 0x30) p++;
    else if (first >= 0x31 && first <= 0x39) digits();
    else {
      this.pos = p;
      this.syntax('a digit');
    }
    let integer = true;
    if (t.charCodeAt(p) === 0x2e /* . */) {
      integer = false;
      p++;
      if (digits() === 0) {
        this.pos = p;
        this.syntax("a digit after '.'");
      }
    }
    const ex = t.charCodeAt(p);
    if (ex === 0x65 || ex === 0x45) {
      integer = false;
      p++;
      const sign = t.charCodeAt(p);
      if (sign === 0x2b || sign === 0x2d) p++;
      if (digits() === 0) {
        this.pos = p;
        this.syntax('a digit in the exponent');
      }
    }
    this.pos = p;
    const n = Number(t.slice(start, p));
    if (!Number.isFinite(n)) {
      this.stop('number', `the number at {path} is too large for a 64-bit float; send it as a string`);
    }
    if (integer && Math.abs(n) > MAX_EXACT_INTEGER) {
      this.stop(
        'number',
        'the integer at {path} is beyond ±(2^53−1), where JSON parsers disagree on its value; send it as a string',
      );
    }
    return n === 0 ? 0 : n; // -0 → 0
  }
}

/**
 * Parse `text` strictly (see the module comment). `text` should already be well-formed Unicode
 * (a fatal UTF-8 decode guarantees it); a raw lone surrogate is refused like an escaped one.
 */
export function parseStrictJson(text: string, options: StrictJsonOptions): StrictJsonResult {
  const parser = new Parser(text, options.maxDepth);
  let value: JsonValue;
  try {
    value = parser.document();
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    // A repeated key found before a later problem is reported first, unless the text is not
    // JSON at all (then that is what the sender must fix first).
    if (parser.duplicate && err.problem.kind !== 'syntax') return { ok: false, problem: parser.duplicate };
    return { ok: false, problem: err.problem };
  }
  if (parser.duplicate) return { ok: false, problem: parser.duplicate, value };
  return { ok: true, value };
}
