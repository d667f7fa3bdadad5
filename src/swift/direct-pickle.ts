// Direct decoders for the pickles a reconstructor reads most:
//   - hashes.pkl and a peer's REPLICATE answer (four per partition in a pass): a dict whose
//     values are None, a bool, a number or a dict of {None|int: str};
//   - the metadata of a .data, .meta or .ts file (every object an SSYNC offers or a rebuild
//     reads): a dict of str, as Swift writes it at protocol 2 — under Python 3 each bytes key
//     and value spelled _codecs.encode(text, 'latin1') (b'' as bytes()), under Python 2 a
//     plain string.
// The general reader in pickle.ts handles all of them too, but builds a PickleDict of hashed
// key slots per dict and a Uint8Array per bytes object.
//
// These decoders know only the opcodes those pickles are made of. Anything else (another
// opcode, a non-ASCII string, a shared dict, a truncated stream) makes them return undefined,
// and the caller hands the bytes to loads(), which decides — so for every input the result
// is what the general reader's would have been.

import { float, PickleFloat } from './pickle.js';

/** A value of the outer dict; floats as loads() gives them (a PickleFloat when integral). */
export type HashPickleValue = null | boolean | number | PickleFloat | Map<number | null, string>;

const MARK = {};

const OK = 0;
const DECLINE = 1;
const OTHER = 2;
type Step = typeof OK | typeof DECLINE | typeof OTHER;

/** inputs beyond this go to the general reader, whose item limits then apply as before */
const MAX_FAST_BYTES = 1024 * 1024;

/**
 * A position in a pickle, its stack and memo, and the steps both decoders take alike. Each
 * decoder is a subclass whose setItem says which items its dicts take: methods rather than
 * helpers each call makes, as a server decodes one pickle per request (see HashPickleWriter).
 */
abstract class Reader {
  pos = 2;
  readonly n: number;
  readonly stack: unknown[] = [];
  private readonly memo: unknown[] = [];
  /** how many indexes the memo holds: MEMOIZE's index, as len(memo) is Python's */
  private memoSize = 0;
  constructor(readonly b: Uint8Array) {
    this.n = b.length;
  }

  /** the little-endian unsigned argument of `width` bytes (moving past it), or -1 if cut short */
  uint(width: 1 | 2 | 4): number {
    const { b, pos } = this;
    if (pos + width > this.n) return -1;
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = v * 256 + b[pos + i]!;
    this.pos = pos + width;
    return v;
  }

  /** `len` bytes as text if they are all ASCII (the same under UTF-8 and latin1), else undefined */
  ascii(len: number): string | undefined {
    const { b, pos } = this;
    const end = pos + len;
    if (len < 0 || end > this.n) return undefined;
    let s = '';
    for (let i = pos; i < end; i++) {
      const ch = b[i]!;
      if (ch >= 0x80) return undefined;
      s += String.fromCharCode(ch);
    }
    this.pos = end;
    return s;
  }

  /** FRAME: protocols 4+ may frame; only one frame holding everything to the end is read here,
   * so no opcode can run across a frame boundary (which the general reader refuses) */
  frame(): boolean {
    const len = this.uint(4);
    return len >= 0 && this.uint(4) === 0 && this.pos + len === this.n;
  }

  /** BINPUT, LONG_BINPUT or MEMOIZE of the top of the stack; false where loads() must judge */
  put(op: number): boolean {
    const { stack } = this;
    if (!stack.length || stack[stack.length - 1] === MARK) return false;
    const i = op === 0x94 ? this.memoSize : this.uint(op === 0x71 ? 1 : 4);
    if (i < 0 || i > this.n) return false;
    if (this.memo[i] === undefined) this.memoSize++;
    this.memo[i] = stack[stack.length - 1];
    return true;
  }

  /** BINGET or LONG_BINGET: the memo's value, or undefined */
  get(op: number): unknown {
    return this.memo[this.uint(op === 0x68 ? 1 : 4)];
  }

  /**
   * The opcodes both decoders read alike: MARK, BINUNICODE and SHORT_BINUNICODE (ASCII only),
   * the memo's puts and FRAME. OK when done, DECLINE for loads() to judge, OTHER when `op` is
   * none of these.
   */
  common(op: number): Step {
    switch (op) {
      case 0x28: // MARK
        this.stack.push(MARK);
        return OK;
      case 0x58: // BINUNICODE (UTF-8; ASCII decodes the same)
      case 0x8c: {
        // SHORT_BINUNICODE
        const text = this.ascii(this.uint(op === 0x58 ? 4 : 1));
        if (text === undefined) return DECLINE;
        this.stack.push(text);
        return OK;
      }
      case 0x71: // BINPUT
      case 0x72: // LONG_BINPUT
      case 0x94: // MEMOIZE
        return this.put(op) ? OK : DECLINE;
      case 0x95: // FRAME
        return this.frame() ? OK : DECLINE;
      default:
        return OTHER;
    }
  }

  /** d[k] = v where the decoder's shapes allow it */
  abstract setItem(d: unknown, k: unknown, v: unknown): boolean;

  /** SETITEMS: the pairs above the last mark go into the dict below it, where setItem agrees */
  setItems(): boolean {
    const { stack } = this;
    const m = stack.lastIndexOf(MARK);
    if (m < 1 || (stack.length - m - 1) % 2) return false;
    for (let i = m + 1; i < stack.length; i += 2) if (!this.setItem(stack[m - 1], stack[i], stack[i + 1])) return false;
    stack.length = m;
    return true;
  }

  /** STOP: the end of the input, with the outer dict alone on the stack */
  stopsWith(outer: unknown): boolean {
    return this.pos === this.n && this.stack.length === 1 && this.stack[0] === outer && outer !== null;
  }
}

const protocolOk = (b: Uint8Array) => b.length >= 3 && b.length <= MAX_FAST_BYTES && b[0] === 0x80 && b[1]! <= 5;

class HashReader extends Reader {
  outer: Map<string, HashPickleValue> | null = null;

  setItem(d: unknown, k: unknown, v: unknown): boolean {
    if (!(d instanceof Map)) return false;
    if (d === this.outer) {
      if (typeof k !== 'string') return false;
      if (!(v === null || typeof v === 'boolean' || typeof v === 'number' || v instanceof PickleFloat || v instanceof Map)) return false;
    } else if (!((k === null || Number.isInteger(k)) && typeof v === 'string')) {
      return false;
    }
    d.set(k, v);
    return true;
  }
}

/** The outer dict (Map order is the pickle's insertion order, as a Python dict's), or undefined. */
export function decodeHashPickle(b: Uint8Array): Map<string, HashPickleValue> | undefined {
  if (!protocolOk(b)) return undefined;
  const c = new HashReader(b);
  const { n, stack } = c;
  while (c.pos < n) {
    const op = b[c.pos++]!;
    const step = c.common(op);
    if (step === DECLINE) return undefined;
    if (step === OK) continue;
    switch (op) {
      case 0x7d: {
        // EMPTY_DICT: the first is the outer dict, any later one a suffix's hashes
        if (c.outer === null && stack.length) return undefined;
        if (c.outer !== null && !stack.length) return undefined;
        const d = new Map();
        if (c.outer === null) c.outer = d;
        stack.push(d);
        break;
      }
      case 0x75: // SETITEMS
        if (!c.setItems()) return undefined;
        break;
      case 0x73: {
        // SETITEM
        if (stack.length < 3) return undefined;
        const v = stack.pop();
        const k = stack.pop();
        if (!c.setItem(stack[stack.length - 1], k, v)) return undefined;
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
      case 0x4d: // BININT2
      case 0x4a: {
        // BININT, signed
        const v = c.uint(op === 0x4b ? 1 : op === 0x4d ? 2 : 4);
        if (v < 0) return undefined;
        stack.push(op === 0x4a ? v | 0 : v);
        break;
      }
      case 0x47: {
        // BINFLOAT, big-endian
        if (c.pos + 8 > n) return undefined;
        stack.push(float(new DataView(b.buffer, b.byteOffset + c.pos, 8).getFloat64(0, false)));
        c.pos += 8;
        break;
      }
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET: of a string only (a dict met twice is the general reader's to judge)
        const v = c.get(op);
        if (typeof v !== 'string') return undefined;
        stack.push(v);
        break;
      }
      case 0x2e: // STOP
        return c.stopsWith(c.outer) ? c.outer! : undefined;
      default:
        return undefined;
    }
  }
  return undefined;
}

/** A bytes object of the metadata pickle, as its (ASCII) text: keys of both kinds stay apart. */
class AsciiBytes {
  constructor(readonly text: string) {}
}
/** the globals metadata pickles call: _codecs.encode, and bytes (for b'') */
const ENCODE = {};
const BYTES = {};
/** EMPTY_TUPLE, the arguments of bytes() */
const NO_ARGS = {};
/** a TUPLE2, the arguments of _codecs.encode */
class Pair {
  constructor(
    readonly a: unknown,
    readonly b: unknown,
  ) {}
}

/**
 * The metadata dict of a .data/.meta/.ts file, its keys and values as metadataFromPickle
 * gives them (bytes decoded, which for ASCII is the text itself), in the pickle's order; or
 * undefined, for loads() to decide.
 */
const textOf = (v: unknown) => (typeof v === 'string' ? v : v instanceof AsciiBytes ? v.text : undefined);

class MetadataReader extends Reader {
  outer: object | null = null;
  /** by 'u' or 'b' and the text: a str key and a bytes key of the same text are two keys to Python, as to loads() */
  readonly items = new Map<string, [string, string]>();

  setItem(d: unknown, k: unknown, v: unknown): boolean {
    const key = textOf(k);
    const value = textOf(v);
    if (d !== this.outer || key === undefined || value === undefined) return false;
    const slot = (typeof k === 'string' ? 'u' : 'b') + key;
    const had = this.items.get(slot);
    if (had) had[1] = value;
    else this.items.set(slot, [key, value]);
    return true;
  }

  /** the text of a GLOBAL's module or name line, or undefined */
  line(): string | undefined {
    const end = this.b.indexOf(0x0a, this.pos);
    if (end < 0) return undefined;
    const s = this.ascii(end - this.pos);
    this.pos++;
    return s;
  }

  /** the top of the stack, or MARK when that is a mark or the stack is empty */
  pop(): unknown {
    const { stack } = this;
    return stack.length && stack[stack.length - 1] !== MARK ? stack.pop() : MARK;
  }
}

export function decodeMetadataPickle(b: Uint8Array): Record<string, string> | undefined {
  if (!protocolOk(b) || b[1]! < 2) return undefined;
  const c = new MetadataReader(b);
  const { n, stack } = c;
  while (c.pos < n) {
    const op = b[c.pos++]!;
    const step = c.common(op);
    if (step === DECLINE) return undefined;
    if (step === OK) continue;
    switch (op) {
      case 0x7d: // EMPTY_DICT: the metadata dict, and no other
        if (c.outer !== null || stack.length) return undefined;
        c.outer = {};
        stack.push(c.outer);
        break;
      case 0x75: // SETITEMS
        if (!c.setItems()) return undefined;
        break;
      case 0x73: {
        // SETITEM
        const v = c.pop();
        const k = c.pop();
        if (stack.length !== 1 || !c.setItem(stack[0], k, v)) return undefined;
        break;
      }
      case 0x55: // SHORT_BINSTRING (Python 2's str)
      case 0x43: // SHORT_BINBYTES
      case 0x42: // BINBYTES
      case 0x54: {
        // BINSTRING: a signed length, so below 2 GiB as any length here
        const s = c.ascii(c.uint(op === 0x55 || op === 0x43 ? 1 : 4));
        if (s === undefined) return undefined;
        stack.push(new AsciiBytes(s));
        break;
      }
      case 0x63: // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        let module: unknown;
        let name: unknown;
        if (op === 0x63) {
          module = c.line();
          name = c.line();
        } else {
          name = c.pop();
          module = c.pop();
        }
        const g = module === '_codecs' && name === 'encode' ? ENCODE : (module === 'builtins' || module === '__builtin__') && name === 'bytes' ? BYTES : null;
        if (g === null) return undefined;
        stack.push(g);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push(NO_ARGS);
        break;
      case 0x86: {
        // TUPLE2
        const y = c.pop();
        const x = c.pop();
        if (x === MARK || y === MARK) return undefined;
        stack.push(new Pair(x, y));
        break;
      }
      case 0x52: {
        // REDUCE: only _codecs.encode(str, 'latin1'), bytes of the str's code points, and bytes()
        const args = c.pop();
        const fn = c.pop();
        if (fn === BYTES && args === NO_ARGS) stack.push(new AsciiBytes(''));
        else if (fn === ENCODE && args instanceof Pair && typeof args.a === 'string' && (args.b === 'latin1' || args.b === 'latin-1')) stack.push(new AsciiBytes(args.a));
        else return undefined;
        break;
      }
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET: of anything but the dict itself
        const v = c.get(op);
        if (v === undefined || v === c.outer) return undefined;
        stack.push(v);
        break;
      }
      case 0x2e: {
        // STOP
        if (!c.stopsWith(c.outer)) return undefined;
        const md: Record<string, string> = {};
        for (const [k, v] of c.items.values()) md[k] = v;
        return md;
      }
      default:
        return undefined;
    }
  }
  return undefined;
}

/**
 * Writes a hash pickle at protocol 2 as CPython's pickler lays it out. A class rather than
 * helpers made by each call: an object server encodes one per REPLICATE, and V8 drops the
 * optimized code of closures whose context died, making it again request after request.
 */
class HashPickleWriter {
  readonly out: Uint8Array;
  at = 0;
  private next = 0;
  private readonly strings = new Map<string, number>();

  constructor(cap: number) {
    this.out = new Uint8Array(cap);
  }

  byte(b: number): void {
    this.out[this.at++] = b;
  }

  u32(v: number): void {
    const { out } = this;
    out[this.at++] = v & 0xff;
    out[this.at++] = (v >>> 8) & 0xff;
    out[this.at++] = (v >>> 16) & 0xff;
    out[this.at++] = (v >>> 24) & 0xff;
  }

  /** BINPUT or LONG_BINPUT of the next memo slot */
  memo(): void {
    const i = this.next++;
    if (i < 256) {
      this.byte(0x71); // BINPUT
      this.byte(i);
    } else {
      this.byte(0x72); // LONG_BINPUT
      this.u32(i);
    }
  }

  /** an ASCII str, memoized by value as CPython's pickler does; false for any other */
  str(s: string): boolean {
    const seen = this.strings.get(s);
    if (seen !== undefined) {
      if (seen < 256) {
        this.byte(0x68); // BINGET
        this.byte(seen);
      } else {
        this.byte(0x6a); // LONG_BINGET
        this.u32(seen);
      }
      return true;
    }
    this.byte(0x58); // BINUNICODE: ASCII is its own UTF-8
    this.u32(s.length);
    const { out } = this;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return false;
      out[this.at++] = c;
    }
    this.strings.set(s, this.next);
    this.memo();
    return true;
  }

  /** a 32-bit int; false beyond */
  int(v: number): boolean {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) return false;
    if (v >= 0 && v <= 0xff) {
      this.byte(0x4b); // BININT1
      this.byte(v);
    } else if (v >= 0 && v <= 0xffff) {
      this.byte(0x4d); // BININT2
      this.byte(v & 0xff);
      this.byte(v >> 8);
    } else {
      this.byte(0x4a); // BININT
      this.u32(v);
    }
    return true;
  }

  /**
   * A dict: EMPTY_DICT and its memo slot, then its items as CPython's C pickler batches them (one
   * alone with SETITEM, else MARK ... SETITEMS per 1000, and an empty batch after a full last
   * one). `item` is one of this class's methods, not a closure.
   */
  dict<K, V>(d: ReadonlyMap<K, V>, item: (this: HashPickleWriter, k: K, v: V) => boolean): boolean {
    this.byte(0x7d); // EMPTY_DICT
    this.memo();
    if (d.size === 0) return true;
    if (d.size === 1) {
      const [[k, v]] = d;
      if (!item.call(this, k!, v!)) return false;
      this.byte(0x73); // SETITEM
      return true;
    }
    let inBatch = 0;
    for (const [k, v] of d) {
      if (inBatch === 0) this.byte(0x28); // MARK
      if (!item.call(this, k, v)) return false;
      if (++inBatch === 1000) {
        this.byte(0x75); // SETITEMS
        inBatch = 0;
      }
    }
    if (inBatch === 0) this.byte(0x28); // the empty batch after a full one
    this.byte(0x75);
    return true;
  }

  hashItem(k: number | null, md5: string): boolean {
    if (k === null) this.byte(0x4e); // NONE
    else if (!this.int(k)) return false;
    return this.str(md5);
  }

  suffixItem(suffix: string, h: ReadonlyMap<number | null, string> | null): boolean {
    if (!this.str(suffix)) return false;
    if (h === null) {
      this.byte(0x4e); // NONE
      return true;
    }
    return this.dict(h, HashPickleWriter.prototype.hashItem);
  }
}

/**
 * A REPLICATE answer ({suffix: {None|index: md5} | None}) pickled at protocol 2, byte for byte
 * as dumps() pickles it (CPython's layout: batches of 1000 items, strings memoized by value);
 * undefined for a shape it does not cover (a non-ASCII string, an index beyond 32 bits), which
 * dumps() then pickles. An object server answers one per REPLICATE.
 */
export function encodeHashPickle(hashes: ReadonlyMap<string, ReadonlyMap<number | null, string> | null>): Uint8Array | undefined {
  let cap = 64;
  for (const [s, h] of hashes) {
    cap += 24 + s.length;
    if (h) for (const v of h.values()) cap += 24 + v.length;
  }
  const w = new HashPickleWriter(cap);
  w.byte(0x80); // PROTO 2
  w.byte(2);
  if (!w.dict(hashes, HashPickleWriter.prototype.suffixItem)) return undefined;
  w.byte(0x2e); // STOP
  return w.out.slice(0, w.at);
}
