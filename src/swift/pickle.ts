// Python pickles as Swift stores and exchanges them: the xattr metadata dict (bytes -> bytes,
// protocol 2), hashes.pkl and the REPLICATE answer (protocol 2, str/int/None keys), and
// async pendings (protocol 0, with a HeaderKeyDict rebuilt through copy_reg._reconstructor).
//
// The reader is a data-only interpreter: it knows no classes and calls nothing. The only
// "globals" it accepts are the few Python's own pickler uses to spell bytes and dict
// subclasses at protocols 0-2, and each is accepted only in the exact shape that pickler
// writes. Every failure on bad input is a PickleError.
//
// The writer reproduces CPython's C pickler byte for byte, because Swift peers and tools
// compare pickles (checksummed xattrs, re-read-and-compare of hashes.pkl).
import { PickleError } from './errors.js';
import { nodeCrypto } from './lazy-crypto.js';
import { pyFloatRepr } from './python-values.js';
import { hasLoneSurrogate, UTF8_ENCODER, UTF8_STRICT } from './utf8.js';

// ---------------------------------------------------------------------------------------------
// Value model

/**
 * A Python tuple. Kept apart from lists (JS arrays) so that tuples and lists round-trip as
 * themselves; Python pickles them differently and only tuples can be dict keys.
 */
export class PickleTuple implements Iterable<PickleValue> {
  readonly items: readonly PickleValue[];
  constructor(items: Iterable<PickleValue> = []) {
    this.items = Object.freeze([...items]);
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<PickleValue> {
    return this.items[Symbol.iterator]();
  }
}

/** tuple(a, b) is the Python tuple (a, b). */
export function tuple(...items: PickleValue[]): PickleTuple {
  return new PickleTuple(items);
}

/**
 * A Python float whose value is a whole number. A plain JS number is written as a Python int
 * when it is integral and as a float otherwise, so 3.0 and -0.0 need this wrapper to stay
 * floats; loads() returns whole-number floats wrapped for the same reason.
 */
export class PickleFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
}

/** The value to give dumps() for the Python float n: a plain number unless n is integral. */
export function float(n: number): number | PickleFloat {
  return Number.isInteger(n) ? new PickleFloat(n) : n;
}

/** What a Python dict key can be (Python requires hashable keys, so no lists or dicts). */
export type PickleKey = null | boolean | number | bigint | string | Uint8Array | PickleFloat | PickleTuple;

/**
 * A decoded pickle. Python -> JS: None -> null, bool -> boolean, int -> number (bigint outside
 * the safe-integer range), float -> number (PickleFloat when integral), str -> string,
 * bytes (and Python 2 str) -> Uint8Array, list -> array, tuple -> PickleTuple,
 * dict (and dict subclasses such as HeaderKeyDict) -> PickleDict.
 */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleFloat
  | PickleTuple
  | PickleDict
  | PickleValue[];

const UNHASHABLE = Symbol('unhashable');
type Unhashable = typeof UNHASHABLE;
/** A key that cannot serve as a JS Map key by value; the dict maps its text to a token. */
class Composite {
  constructor(readonly text: string) {}
}
type Slot = string | number | null | Composite;

// Map hashes short strings by content and caches the hash in the string; long strings (V8
// hashes them by length only) and structured keys go through a canonical text, replaced by
// its digest when long so nested keys stay small.
const DIRECT_STRING_MAX = 1024;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const KEY_TEXT_MAX = 1024;
const KEY_NESTING_MAX = 1000;

interface KeyContext {
  cache?: WeakMap<object, string>;
  charge?: (chars: number) => void;
}

function digestIfLong(text: string): string {
  return text.length > KEY_TEXT_MAX ? 'h' + nodeCrypto().createHash('sha256').update(text).digest('hex') : text;
}

function intText(n: bigint): string {
  return 'i' + n.toString(16);
}

function numberText(n: number): string {
  if (!Number.isInteger(n)) return 'f' + String(n);
  return Number.isSafeInteger(n) ? 'i' + n.toString(16) : intText(BigInt(n));
}

// An injective text for every hashable value, equal exactly when Python's == is (1 == 1.0 ==
// True, (1,) == (True,), 'a' != b'a').
function keyText(key: unknown, ctx: KeyContext, nesting: number): string | Unhashable {
  if (key === null) return 'n';
  switch (typeof key) {
    case 'boolean':
      return key ? 'i1' : 'i0';
    case 'number':
      return numberText(key);
    case 'bigint':
      return intText(key);
    case 'string':
      ctx.charge?.(key.length);
      return digestIfLong('s' + JSON.stringify(key));
  }
  if (key instanceof PickleFloat) return numberText(key.value);
  if (key instanceof Uint8Array || key instanceof PickleTuple) {
    const cached = ctx.cache?.get(key);
    if (cached !== undefined) return cached;
    let text: string;
    if (key instanceof Uint8Array) {
      ctx.charge?.(key.length);
      text = digestIfLong('b' + JSON.stringify(latin1Text(key)));
    } else {
      if (nesting >= KEY_NESTING_MAX) return UNHASHABLE;
      const parts: string[] = [];
      for (const item of key.items) {
        const t = keyText(item, ctx, nesting + 1);
        if (t === UNHASHABLE) return UNHASHABLE;
        parts.push(t);
      }
      const joined = 't[' + parts.join(',') + ']';
      ctx.charge?.(joined.length);
      text = digestIfLong(joined);
    }
    ctx.cache?.set(key, text);
    return text;
  }
  return UNHASHABLE;
}

function keySlot(key: unknown, ctx: KeyContext = {}): Slot | Unhashable {
  if (key === null) return null;
  if (typeof key === 'string' && key.length <= DIRECT_STRING_MAX) return key;
  if (typeof key === 'boolean') return key ? 1 : 0;
  let num: number | undefined;
  if (typeof key === 'number') num = key;
  else if (key instanceof PickleFloat) num = key.value;
  else if (typeof key === 'bigint' && key >= -MAX_SAFE && key <= MAX_SAFE) num = Number(key);
  // Every number that is exactly a double is its own slot (Map's SameValueZero already
  // equates -0 and 0, and NaN with NaN); only ints beyond the doubles' exact range need text.
  if (num !== undefined && (!Number.isInteger(num) || Number.isSafeInteger(num))) return num;
  const text = keyText(key, ctx, 0);
  return text === UNHASHABLE ? UNHASHABLE : new Composite(text);
}

const INSERT = Symbol('insert');

/**
 * A Python dict. Keys are compared the way Python compares them (by value for bytes and
 * tuples, 1 == 1.0 == True), the first key inserted is the one kept, and iteration follows
 * insertion order, which is also the order dumps() writes. Bytes keys are hashed by content
 * when they are stored: do not mutate a Uint8Array while it is a key.
 */
export class PickleDict implements Iterable<[PickleKey, PickleValue]> {
  readonly #entries = new Map<unknown, [PickleKey, PickleValue]>();
  readonly #tokens = new Map<string, Composite>();

  constructor(entries?: Iterable<readonly [PickleKey, PickleValue]>) {
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  /** A dict with the own string keys of a plain object, in their JS order. */
  static fromObject(obj: Readonly<Record<string, PickleValue>>): PickleDict {
    return new PickleDict(Object.entries(obj));
  }

  get size(): number {
    return this.#entries.size;
  }

  #find(slot: Slot): unknown {
    return slot instanceof Composite ? this.#tokens.get(slot.text) : slot;
  }

  /** @internal Stores under a slot computed by the caller. */
  [INSERT](slot: Slot, key: PickleKey, value: PickleValue): void {
    let mapKey: unknown = slot;
    if (slot instanceof Composite) {
      const token = this.#tokens.get(slot.text);
      if (token) mapKey = token;
      else this.#tokens.set(slot.text, slot);
    }
    const existing = this.#entries.get(mapKey);
    if (existing) existing[1] = value;
    else this.#entries.set(mapKey, [key, value]);
  }

  get(key: PickleKey): PickleValue | undefined {
    const slot = keySlot(key);
    return slot === UNHASHABLE ? undefined : this.#entries.get(this.#find(slot))?.[1];
  }

  has(key: PickleKey): boolean {
    const slot = keySlot(key);
    return slot !== UNHASHABLE && this.#entries.has(this.#find(slot));
  }

  /** Throws TypeError for a key Python could not hash (a list or dict, or inside a tuple). */
  set(key: PickleKey, value: PickleValue): this {
    const slot = keySlot(key);
    if (slot === UNHASHABLE) throw new TypeError(`unhashable dict key: ${describe(key)}`);
    this[INSERT](slot, key, value);
    return this;
  }

  delete(key: PickleKey): boolean {
    const slot = keySlot(key);
    if (slot === UNHASHABLE) return false;
    const mapKey = this.#find(slot);
    if (mapKey === undefined && slot instanceof Composite) return false;
    if (slot instanceof Composite) this.#tokens.delete(slot.text);
    return this.#entries.delete(mapKey);
  }

  clear(): void {
    this.#entries.clear();
    this.#tokens.clear();
  }

  *entries(): IterableIterator<[PickleKey, PickleValue]> {
    for (const [k, v] of this.#entries.values()) yield [k, v];
  }

  *keys(): IterableIterator<PickleKey> {
    for (const e of this.#entries.values()) yield e[0];
  }

  *values(): IterableIterator<PickleValue> {
    for (const e of this.#entries.values()) yield e[1];
  }

  forEach(fn: (value: PickleValue, key: PickleKey, dict: PickleDict) => void): void {
    for (const [k, v] of this.#entries.values()) fn(v, k, this);
  }

  [Symbol.iterator](): IterableIterator<[PickleKey, PickleValue]> {
    return this.entries();
  }
}

/** Text from the input as it may appear in a message: escaped and cut short. */
function printable(s: string): string {
  const esc = JSON.stringify(s.length > 80 ? s.slice(0, 80) : s).slice(1, -1);
  return s.length > 80 ? `${esc}...` : esc;
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PickleDict) return 'dict';
  if (v instanceof PickleTuple) return 'tuple';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PickleFloat) return 'float';
  if (v instanceof GlobalRef) return `global '${v.module}.${v.name}'`;
  if (v instanceof RawTuple) return 'tuple holding a global';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

// ---------------------------------------------------------------------------------------------
// Text helpers

const NON_LATIN1 = /[^\x00-\xff]/;

function latin1Text(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

function latin1Bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

// Python writes str as UTF-8 with 'surrogatepass', so a lone surrogate is the 3-byte form
// that TextEncoder would replace with U+FFFD.
function utf8Encode(s: string): Uint8Array {
  if (!hasLoneSurrogate(s)) return UTF8_ENCODER.encode(s);
  const out = new Uint8Array(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out[n++] = c;
    else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 63);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 63);
      out[n++] = 0x80 | (c & 63);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 63);
      out[n++] = 0x80 | ((c >> 6) & 63);
      out[n++] = 0x80 | (c & 63);
    }
  }
  return out.slice(0, n);
}

/** Collects UTF-16 code units; no decoder here emits more units than it reads bytes. */
class Units {
  private readonly buf: Uint16Array;
  private n = 0;
  constructor(maxUnits: number) {
    this.buf = new Uint16Array(maxUnits);
  }
  push(u: number): void {
    this.buf[this.n++] = u;
  }
  pushCodePoint(cp: number): void {
    if (cp < 0x10000) this.push(cp);
    else {
      this.push(0xd800 + ((cp - 0x10000) >> 10));
      this.push(0xdc00 + ((cp - 0x10000) & 0x3ff));
    }
  }
  text(): string {
    let s = '';
    for (let i = 0; i < this.n; i += 8192) s += String.fromCharCode(...this.buf.subarray(i, Math.min(i + 8192, this.n)));
    return s;
  }
}

// Strict UTF-8 that also takes encoded surrogates (Python's 'surrogatepass'); null if invalid.
function utf8DecodeSurrogatePass(b: Uint8Array): string | null {
  const out = new Units(b.length);
  let i = 0;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      out.push(c);
      i += 1;
    } else if (c >= 0xc2 && c <= 0xdf && cont(1)) {
      out.push(((c & 31) << 6) | (b[i + 1]! & 63));
      i += 2;
    } else if (c >= 0xe0 && c <= 0xef && cont(1) && cont(2)) {
      const c1 = b[i + 1]!;
      if (c === 0xe0 && c1 < 0xa0) return null;
      out.push(((c & 15) << 12) | ((c1 & 63) << 6) | (b[i + 2]! & 63));
      i += 3;
    } else if (c >= 0xf0 && c <= 0xf4 && cont(1) && cont(2) && cont(3)) {
      const c1 = b[i + 1]!;
      if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return null;
      out.pushCodePoint(((c & 7) << 18) | ((c1 & 63) << 12) | ((b[i + 2]! & 63) << 6) | (b[i + 3]! & 63));
      i += 4;
    } else {
      return null;
    }
  }
  return out.text();
}

function utf8Decode(b: Uint8Array): string | null {
  try {
    return UTF8_STRICT.decode(b);
  } catch {
    return utf8DecodeSurrogatePass(b);
  }
}

const HEX = /^[0-9a-fA-F]+$/;

// The 'raw-unicode-escape' codec of protocol 0's UNICODE opcode: bytes are code points
// U+0000..U+00FF except \uXXXX and \UXXXXXXXX escapes.
function rawUnicodeEscapeDecode(b: Uint8Array): { text: string } | { error: string } {
  const out = new Units(b.length);
  let i = 0;
  while (i < b.length) {
    const c = b[i++]!;
    if (c !== 0x5c || i >= b.length) {
      out.push(c);
      continue;
    }
    const e = b[i++]!;
    const count = e === 0x75 ? 4 : e === 0x55 ? 8 : 0;
    if (count === 0) {
      out.push(0x5c);
      out.push(e);
      continue;
    }
    const digits = latin1Text(b.subarray(i, i + count));
    if (digits.length < count || !HEX.test(digits)) {
      return { error: `truncated \\${count === 4 ? 'uXXXX' : 'UXXXXXXXX'} escape` };
    }
    i += count;
    const cp = Number.parseInt(digits, 16);
    if (cp > 0x10ffff) return { error: '\\Uxxxxxxxx out of range' };
    out.pushCodePoint(cp);
  }
  return { text: out.text() };
}

const SIMPLE_ESCAPES: Readonly<Record<number, number>> = {
  0x5c: 0x5c, 0x27: 0x27, 0x22: 0x22, 0x61: 7, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11,
};
const isOctal = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x37;
const hexValue = (c: number | undefined): number => {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
};

// The body of protocol 0's STRING opcode is Python 2's repr of a str, read back with
// codecs.escape_decode: backslash escapes, octal and \x escapes, unknown escapes kept as-is.
function escapeDecode(b: Uint8Array): { bytes: Uint8Array } | { error: string } {
  const out = new Uint8Array(b.length);
  let n = 0;
  let i = 0;
  while (i < b.length) {
    const c = b[i++]!;
    if (c !== 0x5c) {
      out[n++] = c;
      continue;
    }
    if (i >= b.length) return { error: 'trailing \\ in string' };
    const e = b[i++]!;
    if (e === 0x0a) continue;
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out[n++] = simple;
    } else if (isOctal(e)) {
      let v = e - 0x30;
      if (isOctal(b[i])) v = (v << 3) + b[i++]! - 0x30;
      if (isOctal(b[i])) v = (v << 3) + b[i++]! - 0x30;
      out[n++] = v & 0xff;
    } else if (e === 0x78) {
      const hi = hexValue(b[i]);
      const lo = hexValue(b[i + 1]);
      if (hi < 0 || lo < 0) return { error: `invalid \\x escape at position ${i - 2}` };
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else {
      out[n++] = 0x5c;
      out[n++] = e;
    }
  }
  return { bytes: out.slice(0, n) };
}

// ---------------------------------------------------------------------------------------------
// Integers

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
// Python 3.11 refuses int <-> decimal text conversions beyond this many digits.
const MAX_DECIMAL_DIGITS = 4300;

function normInt(n: bigint): number | bigint {
  return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n;
}

// Little-endian two's complement, as LONG1/LONG4 carry ints.
function decodeLong(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  const bigEndian = Uint8Array.from(b).reverse();
  const unsigned = BigInt('0x' + Buffer.from(bigEndian.buffer).toString('hex'));
  return b[b.length - 1]! & 0x80 ? unsigned - (1n << BigInt(8 * b.length)) : unsigned;
}

// The shortest two's complement that still has the right sign bit, as Python's encode_long.
function encodeLong(x: bigint): Uint8Array {
  if (x === 0n) return new Uint8Array(0);
  const magnitude = x < 0n ? -x : x;
  let nbytes = (magnitude.toString(2).length >> 3) + 1;
  const hex = BigInt.asUintN(nbytes * 8, x).toString(16).padStart(nbytes * 2, '0');
  const out = new Uint8Array(nbytes);
  for (let i = 0; i < nbytes; i++) out[i] = Number.parseInt(hex.slice(hex.length - 2 * (i + 1), hex.length - 2 * i), 16);
  if (x < 0n && nbytes > 1 && out[nbytes - 1] === 0xff && (out[nbytes - 2]! & 0x80) !== 0) nbytes--;
  return out.subarray(0, nbytes);
}

const DECIMAL_INT = /^[+-]?(?:0+|[1-9][0-9]*)$/;

// ---------------------------------------------------------------------------------------------
// Reader

/** Bounds on what loads() will build. */
export interface LoadOptions {
  /** Largest input accepted (default 64 MiB). */
  maxBytes?: number;
  /** Deepest nesting of lists, tuples and dicts (default 100). */
  maxDepth?: number;
  /** Most values pushed plus container items added, with long keys weighed by size (default 4,000,000). */
  maxItems?: number;
  /** Accept bytes after STOP, as Python does (default false: they mean a damaged pickle). */
  allowTrailingData?: boolean;
}

export const DEFAULT_LOAD_OPTIONS: Readonly<Required<LoadOptions>> = Object.freeze({
  maxBytes: 64 * 1024 * 1024,
  maxDepth: 100,
  maxItems: 4_000_000,
  allowTrailingData: false,
});

// The only globals the reader resolves, each with the role it may play.
type GlobalKind = 'encode' | 'reconstructor' | 'dict' | 'bytes' | 'headerKeyDict';
const GLOBALS: ReadonlyMap<string, GlobalKind> = new Map([
  ['_codecs encode', 'encode'],
  ['copy_reg _reconstructor', 'reconstructor'],
  ['copyreg _reconstructor', 'reconstructor'],
  ['__builtin__ dict', 'dict'],
  ['builtins dict', 'dict'],
  ['__builtin__ bytes', 'bytes'],
  ['builtins bytes', 'bytes'],
  ['swift.common.header_key_dict HeaderKeyDict', 'headerKeyDict'],
]);

class GlobalRef {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly kind: GlobalKind,
  ) {}
}

/** A tuple holding a global: only REDUCE may consume it; it never reaches a result. */
class RawTuple {
  constructor(readonly items: readonly unknown[]) {}
}

const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID',
  0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET',
  0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

// Opcodes that build objects of arbitrary classes, refer outside the pickle, or make types
// (sets, buffers) that Swift never pickles.
const REFUSED = new Set([0x50, 0x51, 0x62, 0x69, 0x6f, 0x81, 0x82, 0x83, 0x84, 0x8f, 0x90, 0x91, 0x92, 0x96, 0x97, 0x98]);

function opcodeName(op: number): string {
  return OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
}

function checkLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isSafeInteger(value) && value >= 0)) throw new RangeError(`${name} must be a non-negative integer`);
  return value;
}

/**
 * Decodes a pickle of protocol 0 to 5 holding plain data (see PickleValue). Refuses, with a
 * PickleError naming the opcode or global and its byte offset: every global but the ones
 * CPython uses for bytes (_codecs.encode, bytes) and for HeaderKeyDict in Swift's async
 * pendings (copy_reg._reconstructor), object-building opcodes, sets, out-of-band buffers,
 * truncated or malformed streams, unhashable dict keys, recursive structures, and anything
 * beyond the limits in opts.
 */
export function loads(bytes: Uint8Array, opts: LoadOptions = {}): PickleValue {
  if (!(bytes instanceof Uint8Array)) throw new PickleError(`loads() takes a Uint8Array, not ${describe(bytes)}`);
  const maxBytes = checkLimit('maxBytes', opts.maxBytes, DEFAULT_LOAD_OPTIONS.maxBytes);
  const maxDepth = checkLimit('maxDepth', opts.maxDepth, DEFAULT_LOAD_OPTIONS.maxDepth);
  const maxItems = checkLimit('maxItems', opts.maxItems, DEFAULT_LOAD_OPTIONS.maxItems);
  if (bytes.length > maxBytes) {
    throw new PickleError(`pickle of ${bytes.length} bytes exceeds maxBytes ${maxBytes}`, { offset: 0 });
  }
  try {
    return new Reader(bytes, maxDepth, maxItems, opts.allowTrailingData ?? false).run();
  } catch (err) {
    if (err instanceof PickleError) throw err;
    throw new PickleError(`pickle: unexpected failure: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

class Reader {
  private pos = 0;
  private at = 0;
  private op = 0;
  private readonly stack: unknown[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, unknown>();
  private items = 0;
  private frameEnd = -1;
  private readonly keyCache = new WeakMap<object, string>();
  private readonly tupleDepth = new WeakMap<PickleTuple, number>();
  private readonly keyContext: KeyContext = {
    cache: this.keyCache,
    charge: (chars) => this.count(1 + (chars >> 8)),
  };

  constructor(
    private readonly data: Uint8Array,
    private readonly maxDepth: number,
    private readonly maxItems: number,
    private readonly allowTrailing: boolean,
  ) {}

  private fail(message: string): never {
    if (this.op < 0) throw new PickleError(`${message} (at offset ${this.at})`, { offset: this.at });
    const name = opcodeName(this.op);
    throw new PickleError(`${message} (${name} at offset ${this.at})`, { offset: this.at, opcode: name });
  }

  private count(n = 1): void {
    this.items += n;
    if (this.items > this.maxItems) this.fail(`pickle exceeds maxItems ${this.maxItems}`);
  }

  private take(n: number): Uint8Array {
    const end = this.pos + n;
    if (end > this.data.length) this.fail('pickle data was truncated');
    // Python's own reader refuses an opcode that runs across a frame boundary.
    if (this.pos < this.frameEnd && end > this.frameEnd) this.fail('pickle exhausted before end of frame');
    const out = this.data.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  private line(): Uint8Array {
    const nl = this.data.indexOf(0x0a, this.pos);
    if (nl < 0) this.fail('pickle data was truncated (no end of line)');
    const body = this.take(nl + 1 - this.pos);
    return body.subarray(0, body.length - 1);
  }

  private asciiLine(): string {
    return latin1Text(this.line());
  }

  private u8(): number {
    return this.take(1)[0]!;
  }

  private u16(): number {
    const b = this.take(2);
    return b[0]! | (b[1]! << 8);
  }

  private i32(): number {
    const b = this.take(4);
    return b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24);
  }

  private u32(): number {
    return this.i32() >>> 0;
  }

  private u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    if (hi > 0x1fffff) this.fail('length does not fit in memory');
    return hi * 2 ** 32 + lo;
  }

  private fence(): number {
    return this.marks.length ? this.marks[this.marks.length - 1]! : 0;
  }

  private push(v: unknown): void {
    this.count();
    this.stack.push(v);
  }

  private pop(): unknown {
    if (this.stack.length <= this.fence()) this.fail(this.marks.length ? 'no value above MARK' : 'unpickling stack underflow');
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length <= this.fence()) this.fail(this.marks.length ? 'no value above MARK' : 'unpickling stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): unknown[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail('could not find MARK');
    return this.stack.splice(mark);
  }

  // The object that APPENDS/SETITEMS add to sits just below the MARK they consume.
  private belowMark(): unknown {
    const i = this.stack.length - 1;
    if (i < this.fence()) this.fail('unpickling stack underflow');
    return this.stack[i];
  }

  private value(v: unknown): PickleValue {
    if (v instanceof GlobalRef || v instanceof RawTuple) this.fail(`${describe(v)} used as a value`);
    return v as PickleValue;
  }

  private list(v: unknown): PickleValue[] {
    if (!Array.isArray(v)) this.fail(`cannot append to ${describe(v)}`);
    return v;
  }

  private dict(v: unknown): PickleDict {
    if (!(v instanceof PickleDict)) this.fail(`cannot set an item on ${describe(v)}`);
    return v;
  }

  private setItem(d: PickleDict, key: unknown, value: unknown): void {
    const k = this.value(key);
    const v = this.value(value);
    const slot = keySlot(k, this.keyContext);
    if (slot === UNHASHABLE) this.fail(`unhashable dict key: ${describe(k)}`);
    this.count();
    d[INSERT](slot, k as PickleKey, v);
  }

  private setItems(d: PickleDict, items: unknown[]): void {
    if (items.length % 2) this.fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) this.setItem(d, items[i], items[i + 1]);
  }

  private makeTuple(items: unknown[]): PickleTuple | RawTuple {
    if (items.some((x) => x instanceof GlobalRef || x instanceof RawTuple)) return new RawTuple(items);
    const t = new PickleTuple(items as PickleValue[]);
    // Tuples never change, so their depth is known now; capping it here keeps key hashing
    // shallow as well as the result.
    let depth = 1;
    for (const x of items) if (x instanceof PickleTuple) depth = Math.max(depth, 1 + (this.tupleDepth.get(x) ?? 1));
    if (depth > this.maxDepth) this.fail(`nesting exceeds maxDepth ${this.maxDepth}`);
    this.tupleDepth.set(t, depth);
    return t;
  }

  private memoKey(index: number): number {
    if (!Number.isSafeInteger(index) || index < 0) this.fail('bad memo index');
    return index;
  }

  private get(index: number): void {
    if (!this.memo.has(index)) this.fail(`memo value not found at index ${index}`);
    this.push(this.memo.get(index));
  }

  private put(index: number): void {
    this.memo.set(this.memoKey(index), this.top());
  }

  private decimal(text: string, what: string): bigint {
    if (!DECIMAL_INT.test(text)) this.fail(`invalid ${what} literal ${JSON.stringify(text.slice(0, 40))}`);
    if (text.replace(/^[+-]/, '').length > MAX_DECIMAL_DIGITS) this.fail(`${what} literal exceeds ${MAX_DECIMAL_DIGITS} digits`);
    return BigInt(text);
  }

  private memoIndexLine(): number {
    const text = this.asciiLine();
    if (!/^[0-9]{1,15}$/.test(text)) this.fail(`invalid memo index ${JSON.stringify(text.slice(0, 40))}`);
    return Number(text);
  }

  private text(b: Uint8Array): string {
    const s = utf8Decode(b);
    if (s === null) this.fail('invalid UTF-8 in a str');
    return s;
  }

  private bytesCopy(b: Uint8Array): Uint8Array {
    return new Uint8Array(b);
  }

  private global(module: string, name: string): GlobalRef {
    const kind = GLOBALS.get(`${module} ${name}`);
    if (!kind) this.fail(`global '${printable(module)}.${printable(name)}' is not allowed`);
    return new GlobalRef(module, name, kind);
  }

  private reduce(fn: unknown, args: unknown): unknown {
    if (!(fn instanceof GlobalRef)) this.fail(`cannot call ${describe(fn)}`);
    const argv = args instanceof PickleTuple || args instanceof RawTuple ? args.items : null;
    if (!argv) this.fail(`arguments of '${fn.module}.${fn.name}' are ${describe(args)}, not a tuple`);
    switch (fn.kind) {
      case 'encode': {
        // Python 3 spells bytes b at protocols 0-2 as _codecs.encode(b.decode('latin1'), 'latin1').
        const [text, encoding] = argv;
        if (argv.length !== 2 || typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) {
          this.fail(`only _codecs.encode(str, 'latin1') is allowed`);
        }
        if (NON_LATIN1.test(text)) this.fail('_codecs.encode: text is not latin1');
        return latin1Bytes(text);
      }
      case 'bytes':
        if (argv.length !== 0) this.fail('only bytes() with no arguments is allowed');
        return new Uint8Array(0);
      case 'reconstructor': {
        // copy_reg._reconstructor(HeaderKeyDict, dict, state): a dict subclass at protocols 0-1.
        const [cls, base, state] = argv;
        if (
          argv.length !== 3 ||
          !(cls instanceof GlobalRef && cls.kind === 'headerKeyDict') ||
          !(base instanceof GlobalRef && base.kind === 'dict') ||
          !(state instanceof PickleDict)
        ) {
          this.fail(`only copy_reg._reconstructor(HeaderKeyDict, dict, {...}) is allowed`);
        }
        const d = new PickleDict();
        for (const [k, v] of state) this.setItem(d, k, v);
        return d;
      }
      default:
        return this.fail(`calling '${fn.module}.${fn.name}' is not allowed`);
    }
  }

  run(): PickleValue {
    const { data } = this;
    for (;;) {
      if (this.pos >= data.length) {
        this.at = this.pos;
        this.op = -1;
        this.fail('pickle data was truncated (no STOP)');
      }
      this.at = this.pos;
      const op = (this.op = this.take(1)[0]!);
      if (REFUSED.has(op)) this.fail(`opcode ${opcodeName(op)} is not allowed`);
      switch (op) {
        case 0x80: {
          const proto = this.u8();
          if (proto > 5) this.fail(`unsupported pickle protocol ${proto}`);
          break;
        }
        case 0x95: {
          if (this.pos < this.frameEnd) this.fail('beginning of a new frame before end of current frame');
          const len = this.u64();
          if (this.pos + len > data.length) this.fail('pickle data was truncated (frame)');
          this.frameEnd = this.pos + len;
          break;
        }
        case 0x2e: {
          const result = this.value(this.pop());
          if (this.marks.length) this.fail('STOP inside an open MARK');
          if (this.stack.length) this.fail(`STOP with ${this.stack.length} value(s) left on the stack`);
          if (this.pos !== data.length && !this.allowTrailing) this.fail(`${data.length - this.pos} byte(s) after STOP`);
          this.checkShape(result);
          return result;
        }
        case 0x28:
          this.count();
          this.marks.push(this.stack.length);
          break;
        case 0x30:
          // Python's POP drops the MARK itself when nothing sits above it.
          if (this.marks.length && this.marks[this.marks.length - 1] === this.stack.length) this.marks.pop();
          else this.pop();
          break;
        case 0x31:
          this.popMark();
          break;
        case 0x32:
          this.push(this.top());
          break;
        case 0x4e:
          this.push(null);
          break;
        case 0x88:
          this.push(true);
          break;
        case 0x89:
          this.push(false);
          break;
        case 0x49: {
          const text = this.asciiLine();
          // Python 2 wrote booleans as INT 00 / 01.
          if (text === '00' || text === '01') this.push(text === '01');
          else this.push(normInt(this.decimal(text, 'INT')));
          break;
        }
        case 0x4c: {
          const text = this.asciiLine();
          this.push(normInt(this.decimal(text.endsWith('L') ? text.slice(0, -1) : text, 'LONG')));
          break;
        }
        case 0x4a:
          this.push(this.i32());
          break;
        case 0x4b:
          this.push(this.u8());
          break;
        case 0x4d:
          this.push(this.u16());
          break;
        case 0x8a:
          this.push(normInt(decodeLong(this.take(this.u8()))));
          break;
        case 0x8b: {
          const n = this.i32();
          if (n < 0) this.fail('LONG pickle has negative byte count');
          this.push(normInt(decodeLong(this.take(n))));
          break;
        }
        case 0x46: {
          const text = this.asciiLine();
          if (!/^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$/i.test(text)) {
            this.fail(`invalid FLOAT literal ${JSON.stringify(text.slice(0, 40))}`);
          }
          const lower = text.toLowerCase();
          const x = lower.endsWith('nan') ? NaN : lower.endsWith('inf') || lower.endsWith('infinity') ? (lower.startsWith('-') ? -Infinity : Infinity) : Number(text);
          if (!Number.isFinite(x) && !/inf|nan/i.test(text)) this.fail('FLOAT literal out of range');
          this.push(float(x));
          break;
        }
        case 0x47: {
          const b = this.take(8);
          this.push(float(new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false)));
          break;
        }
        case 0x53: {
          const body = this.line();
          const q = body[0];
          if (body.length < 2 || (q !== 0x27 && q !== 0x22) || body[body.length - 1] !== q) {
            this.fail('the STRING opcode argument must be quoted');
          }
          const decoded = escapeDecode(body.subarray(1, body.length - 1));
          if ('error' in decoded) this.fail(decoded.error);
          this.push(decoded.bytes);
          break;
        }
        case 0x54: {
          const n = this.i32();
          if (n < 0) this.fail('BINSTRING pickle has negative byte count');
          this.push(this.bytesCopy(this.take(n)));
          break;
        }
        case 0x55:
        case 0x43:
          this.push(this.bytesCopy(this.take(this.u8())));
          break;
        case 0x42:
          this.push(this.bytesCopy(this.take(this.u32())));
          break;
        case 0x8e:
          this.push(this.bytesCopy(this.take(this.u64())));
          break;
        case 0x56: {
          const decoded = rawUnicodeEscapeDecode(this.line());
          if ('error' in decoded) this.fail(decoded.error);
          this.push(decoded.text);
          break;
        }
        case 0x58:
          this.push(this.text(this.take(this.u32())));
          break;
        case 0x8c:
          this.push(this.text(this.take(this.u8())));
          break;
        case 0x8d:
          this.push(this.text(this.take(this.u64())));
          break;
        case 0x29:
          this.push(this.makeTuple([]));
          break;
        case 0x85:
        case 0x86:
        case 0x87: {
          const n = op - 0x84;
          const items: unknown[] = [];
          for (let i = 0; i < n; i++) items.unshift(this.pop());
          this.push(this.makeTuple(items));
          break;
        }
        case 0x74:
          this.push(this.makeTuple(this.popMark()));
          break;
        case 0x5d:
          this.push([]);
          break;
        case 0x6c: {
          const items = this.popMark().map((x) => this.value(x));
          this.count(items.length);
          this.push(items);
          break;
        }
        case 0x61: {
          const v = this.value(this.pop());
          this.list(this.top()).push(v);
          this.count();
          break;
        }
        case 0x65: {
          const items = this.popMark();
          const list = this.list(this.belowMark());
          for (const x of items) list.push(this.value(x));
          this.count(items.length);
          break;
        }
        case 0x7d:
          this.push(new PickleDict());
          break;
        case 0x64: {
          const items = this.popMark();
          const d = new PickleDict();
          this.setItems(d, items);
          this.push(d);
          break;
        }
        case 0x73: {
          const v = this.pop();
          const k = this.pop();
          this.setItem(this.dict(this.top()), k, v);
          break;
        }
        case 0x75: {
          const items = this.popMark();
          this.setItems(this.dict(this.belowMark()), items);
          break;
        }
        case 0x70:
          this.put(this.memoIndexLine());
          break;
        case 0x71:
          this.put(this.u8());
          break;
        case 0x72:
          this.put(this.u32());
          break;
        case 0x94:
          this.put(this.memo.size);
          break;
        case 0x67:
          this.get(this.memoIndexLine());
          break;
        case 0x68:
          this.get(this.u8());
          break;
        case 0x6a:
          this.get(this.u32());
          break;
        case 0x63: {
          const module = utf8Decode(this.line());
          const name = utf8Decode(this.line());
          if (module === null || name === null) this.fail('invalid UTF-8 in a GLOBAL name');
          this.push(this.global(module, name));
          break;
        }
        case 0x93: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL requires str');
          this.push(this.global(module, name));
          break;
        }
        case 0x52: {
          const args = this.pop();
          const fn = this.pop();
          this.push(this.reduce(fn, args));
          break;
        }
        default:
          this.fail(`unknown opcode ${opcodeName(op)}`);
      }
    }
  }

  // Lists and dicts can be changed after they are placed in something else, so depth and
  // cycles are only known once the stream ends: one iterative pass over the finished graph.
  private checkShape(root: PickleValue): void {
    const height = new Map<object, number>();
    const children = (v: object): PickleValue[] => {
      if (Array.isArray(v)) return v;
      if (v instanceof PickleTuple) return v.items as PickleValue[];
      const out: PickleValue[] = [];
      for (const [k, x] of v as PickleDict) out.push(k, x);
      return out;
    };
    const isContainer = (v: unknown): v is object =>
      Array.isArray(v) || v instanceof PickleTuple || v instanceof PickleDict;
    if (!isContainer(root)) return;
    const IN_PROGRESS = -1;
    const frames: { node: object; kids: PickleValue[]; i: number; h: number }[] = [];
    const enter = (node: object) => {
      if (frames.length >= this.maxDepth) this.fail(`nesting exceeds maxDepth ${this.maxDepth}`);
      height.set(node, IN_PROGRESS);
      frames.push({ node, kids: children(node), i: 0, h: 1 });
    };
    enter(root);
    while (frames.length) {
      const f = frames[frames.length - 1]!;
      if (f.i < f.kids.length) {
        const kid = f.kids[f.i++];
        if (!isContainer(kid)) continue;
        const h = height.get(kid);
        if (h === IN_PROGRESS) this.fail('recursive structure (a container holds itself)');
        if (h === undefined) enter(kid);
        else f.h = Math.max(f.h, h + 1);
        continue;
      }
      frames.pop();
      height.set(f.node, f.h);
      const parent = frames[frames.length - 1];
      if (parent) parent.h = Math.max(parent.h, f.h + 1);
      if (f.h > this.maxDepth) this.fail(`nesting exceeds maxDepth ${this.maxDepth}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

/** dumps() options. */
export interface DumpOptions {
  /** Pickle protocol (default 2, what Swift writes; 0 is what Swift's async pendings use). */
  protocol?: 0 | 1 | 2;
}

const DUMP_MAX_DEPTH = 1000;
const BATCH = 1000;

class ByteWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Text of code units below 0x100, one byte each. */
  latin1(s: string): void {
    this.room(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.len++] = s.charCodeAt(i);
  }

  u32(n: number): void {
    this.room(4);
    new DataView(this.buf.buffer).setUint32(this.len, n >>> 0, true);
    this.len += 4;
  }

  f64(x: number): void {
    this.room(8);
    new DataView(this.buf.buffer).setFloat64(this.len, x, false);
    this.len += 8;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

// Protocol 0's UNICODE: raw-unicode-escape after escaping the characters that would break
// the line-based format, exactly as CPython does.
function rawUnicodeEscapeEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0x5c || cp === 0 || cp === 0x0a || cp === 0x0d || cp === 0x1a || (cp >= 0x100 && cp < 0x10000)) {
      out += '\\u' + cp.toString(16).padStart(4, '0');
    } else if (cp >= 0x10000) {
      out += '\\U' + cp.toString(16).padStart(8, '0');
    } else {
      out += ch;
    }
  }
  return out;
}

/**
 * Pickles value as CPython 3's pickle.dumps(value, protocol) does, byte for byte. Python's
 * memo is keyed by object identity; here lists, tuples, dicts and Uint8Arrays are shared by
 * identity too, while strings (which have no identity in JS) are shared by value, as are
 * bytes of length 0 or 1 (CPython caches those, so Swift's str.encode() yields shared ones).
 */
export function dumps(value: PickleValue, opts: DumpOptions = {}): Uint8Array {
  const protocol = opts.protocol ?? 2;
  if (protocol !== 0 && protocol !== 1 && protocol !== 2) throw new PickleError(`unsupported pickle protocol ${String(protocol)}`);
  return new Pickler(protocol).dump(value);
}

class Pickler {
  private readonly out = new ByteWriter();
  private readonly objects = new Map<object, number>();
  private readonly strings = new Map<string, number>();
  private readonly tinyBytes = new Map<number, number>();
  private readonly globals = new Map<string, number>();
  private nextIndex = 0;

  constructor(private readonly proto: 0 | 1 | 2) {}

  dump(value: PickleValue): Uint8Array {
    if (this.proto >= 2) {
      this.out.byte(0x80);
      this.out.byte(this.proto);
    }
    this.save(value, 0);
    this.out.byte(0x2e);
    return this.out.result();
  }

  private memoize(): number {
    const index = this.nextIndex++;
    if (this.proto === 0) {
      this.out.latin1(`p${index}\n`);
    } else if (index < 256) {
      this.out.byte(0x71);
      this.out.byte(index);
    } else {
      this.out.byte(0x72);
      this.out.u32(index);
    }
    return index;
  }

  private get(index: number): void {
    if (this.proto === 0) {
      this.out.latin1(`g${index}\n`);
    } else if (index < 256) {
      this.out.byte(0x68);
      this.out.byte(index);
    } else {
      this.out.byte(0x6a);
      this.out.u32(index);
    }
  }

  private save(v: PickleValue, depth: number): void {
    if (depth > DUMP_MAX_DEPTH) throw new PickleError(`nesting deeper than ${DUMP_MAX_DEPTH} cannot be pickled`);
    if (v === null) return this.out.byte(0x4e);
    switch (typeof v) {
      case 'boolean':
        if (this.proto >= 2) this.out.byte(v ? 0x88 : 0x89);
        else this.out.latin1(v ? 'I01\n' : 'I00\n');
        return;
      case 'number':
        if (Number.isInteger(v)) return this.saveInt(BigInt(v));
        return this.saveFloat(v);
      case 'bigint':
        return this.saveInt(v);
      case 'string':
        return this.saveStr(v);
    }
    if (v instanceof PickleFloat) return this.saveFloat(v.value);
    if (typeof v !== 'object') throw new PickleError(`cannot pickle a ${typeof v}`);
    const seen = this.objects.get(v);
    if (seen !== undefined) return this.get(seen);
    if (v instanceof Uint8Array) return this.saveBytes(v);
    if (v instanceof PickleTuple) return this.saveTuple(v, depth);
    if (Array.isArray(v)) return this.saveList(v, depth);
    if (v instanceof PickleDict) return this.saveDict(v, depth);
    throw new PickleError(`cannot pickle ${describe(v)}`);
  }

  private saveInt(x: bigint): void {
    const { out } = this;
    if (x >= INT32_MIN && x <= INT32_MAX) {
      const n = Number(x);
      if (this.proto === 0) out.latin1(`I${n}\n`);
      else if (n >= 0 && n <= 0xff) {
        out.byte(0x4b);
        out.byte(n);
      } else if (n >= 0 && n <= 0xffff) {
        out.byte(0x4d);
        out.byte(n & 0xff);
        out.byte(n >> 8);
      } else {
        out.byte(0x4a);
        out.u32(n);
      }
      return;
    }
    if (this.proto >= 2) {
      const b = encodeLong(x);
      if (b.length < 256) {
        out.byte(0x8a);
        out.byte(b.length);
      } else {
        out.byte(0x8b);
        out.u32(b.length);
      }
      out.bytes(b);
      return;
    }
    const text = x.toString();
    if (text.replace('-', '').length > MAX_DECIMAL_DIGITS) {
      throw new PickleError(`int of more than ${MAX_DECIMAL_DIGITS} digits cannot be pickled at protocol ${this.proto}`);
    }
    out.latin1(`L${text}L\n`);
  }

  private saveFloat(x: number): void {
    if (this.proto === 0) {
      this.out.latin1(`F${pyFloatRepr(x)}\n`);
    } else {
      this.out.byte(0x47);
      this.out.f64(x);
    }
  }

  private writeStr(s: string): void {
    if (this.proto === 0) {
      this.out.byte(0x56);
      this.out.latin1(rawUnicodeEscapeEncode(s));
      this.out.byte(0x0a);
    } else {
      const b = utf8Encode(s);
      this.out.byte(0x58);
      this.out.u32(b.length);
      this.out.bytes(b);
    }
  }

  private saveStr(s: string): void {
    const seen = this.strings.get(s);
    if (seen !== undefined) return this.get(seen);
    this.writeStr(s);
    this.strings.set(s, this.memoize());
  }

  private saveGlobal(module: string, name: string): void {
    const key = `${module}\n${name}`;
    const seen = this.globals.get(key);
    if (seen !== undefined) return this.get(seen);
    this.out.latin1(`c${module}\n${name}\n`);
    this.globals.set(key, this.memoize());
  }

  private emptyTuple(): void {
    if (this.proto === 0) this.out.latin1('(t');
    else this.out.byte(0x29);
  }

  // Protocols 0-2 have no bytes opcode; CPython reduces bytes to a call that rebuilds them.
  private saveBytes(b: Uint8Array): void {
    const tinyKey = b.length === 0 ? -1 : b.length === 1 ? b[0]! : undefined;
    if (tinyKey !== undefined) {
      const seen = this.tinyBytes.get(tinyKey);
      if (seen !== undefined) return this.get(seen);
    }
    if (b.length === 0) {
      this.saveGlobal('__builtin__', 'bytes');
      this.emptyTuple();
    } else {
      this.saveGlobal('_codecs', 'encode');
      if (this.proto === 0 || this.proto === 1) this.out.byte(0x28);
      const text = latin1Text(b);
      // The decoded text is a fresh object in CPython, never shared, except one-character
      // strings, which are interned singletons.
      if (b.length === 1) this.saveStr(text);
      else {
        this.writeStr(text);
        this.memoize();
      }
      this.saveStr('latin1');
      this.out.byte(this.proto >= 2 ? 0x86 : 0x74);
      this.memoize();
    }
    this.out.byte(0x52);
    const index = this.memoize();
    this.objects.set(b, index);
    if (tinyKey !== undefined) this.tinyBytes.set(tinyKey, index);
  }

  private saveTuple(t: PickleTuple, depth: number): void {
    const n = t.items.length;
    if (n === 0) return this.emptyTuple();
    const short = n <= 3 && this.proto >= 2;
    if (!short) this.out.byte(0x28);
    for (const x of t.items) this.save(x, depth + 1);
    // A tuple reachable from its own items was memoized while they were written: drop what
    // was just pushed and fetch that copy instead, as CPython does.
    const seen = this.objects.get(t);
    if (seen !== undefined) {
      if (short) for (let i = 0; i < n; i++) this.out.byte(0x30);
      else if (this.proto >= 1) this.out.byte(0x31);
      else for (let i = 0; i <= n; i++) this.out.byte(0x30);
      return this.get(seen);
    }
    this.out.byte(short ? 0x84 + n : 0x74);
    this.objects.set(t, this.memoize());
  }

  private saveList(list: PickleValue[], depth: number): void {
    if (this.proto === 0) this.out.latin1('(l');
    else this.out.byte(0x5d);
    this.objects.set(list, this.memoize());
    if (this.proto === 0) {
      for (const x of list) {
        this.save(x, depth + 1);
        this.out.byte(0x61);
      }
      return;
    }
    if (list.length === 1) {
      this.save(list[0]!, depth + 1);
      this.out.byte(0x61);
      return;
    }
    let i = 0;
    while (i < list.length) {
      this.out.byte(0x28);
      const end = Math.min(i + BATCH, list.length);
      for (; i < end; i++) this.save(list[i]!, depth + 1);
      this.out.byte(0x65);
    }
  }

  private saveDict(d: PickleDict, depth: number): void {
    if (this.proto === 0) this.out.latin1('(d');
    else this.out.byte(0x7d);
    this.objects.set(d, this.memoize());
    const size = d.size;
    if (size === 0) return;
    if (this.proto === 0 || size === 1) {
      for (const [k, v] of d) {
        this.save(k, depth + 1);
        this.save(v, depth + 1);
        this.out.byte(0x73);
      }
      return;
    }
    // CPython's C pickler emits batches of 1000 and, when the size is a multiple of 1000,
    // one more empty MARK/SETITEMS pair.
    const entries = [...d.entries()];
    let i = 0;
    let full: boolean;
    do {
      const end = Math.min(i + BATCH, entries.length);
      full = end - i === BATCH;
      this.out.byte(0x28);
      for (; i < end; i++) {
        this.save(entries[i]![0], depth + 1);
        this.save(entries[i]![1], depth + 1);
      }
      this.out.byte(0x75);
    } while (full);
  }
}
