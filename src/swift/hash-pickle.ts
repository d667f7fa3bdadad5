// A direct decoder for the two pickles a pass reads per partition: hashes.pkl and a peer's
// REPLICATE answer. Both are a dict whose values are None, a bool, a number or a dict of
// {None|int: str}, pickled at protocol 2 by Swift (or by us): the general reader in
// pickle.ts handles them too, but builds a PickleDict of hashed key slots per dict, and a
// pass with nothing to do reads four such pickles per partition.
//
// This decoder knows only the opcodes those pickles are made of. Anything else (another
// opcode, a non-ASCII string, a shared dict, a truncated stream) makes it return undefined,
// and the caller hands the bytes to loads(), which decides — so for every input the result
// is what the general reader's would have been.

import { float, PickleFloat } from './pickle.js';

/** A value of the outer dict; floats as loads() gives them (a PickleFloat when integral). */
export type HashPickleValue = null | boolean | number | PickleFloat | Map<number | null, string>;

const MARK = {};

/** inputs beyond this go to the general reader, whose item limits then apply as before */
const MAX_FAST_BYTES = 1024 * 1024;

/** The outer dict (Map order is the pickle's insertion order, as a Python dict's), or undefined. */
export function decodeHashPickle(b: Uint8Array): Map<string, HashPickleValue> | undefined {
  const n = b.length;
  if (n < 3 || n > MAX_FAST_BYTES || b[0] !== 0x80 || b[1]! > 5) return undefined;
  let pos = 2;
  let outer: Map<string, HashPickleValue> | null = null;
  const stack: unknown[] = [];
  const memo: unknown[] = [];
  /** how many indexes the memo holds: MEMOIZE's index, as len(memo) is Python's */
  let memoSize = 0;
  /** the little-endian unsigned argument of `width` bytes at pos (moving past it), or -1 if cut short */
  const uint = (width: 1 | 2 | 4): number => {
    if (pos + width > n) return -1;
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = v * 256 + b[pos + i]!;
    pos += width;
    return v;
  };
  const ascii = (len: number): string | undefined => {
    if (pos + len > n) return undefined;
    let s = '';
    for (let i = pos; i < pos + len; i++) {
      const c = b[i]!;
      if (c >= 0x80) return undefined;
      s += String.fromCharCode(c);
    }
    pos += len;
    return s;
  };
  /** d[k] = v where the shapes allow it */
  const setItem = (d: unknown, k: unknown, v: unknown): boolean => {
    if (!(d instanceof Map)) return false;
    if (d === outer) {
      if (typeof k !== 'string') return false;
      if (!(v === null || typeof v === 'boolean' || typeof v === 'number' || v instanceof PickleFloat || v instanceof Map)) return false;
    } else if (!((k === null || Number.isInteger(k)) && typeof v === 'string')) {
      return false;
    }
    d.set(k, v);
    return true;
  };
  while (pos < n) {
    const op = b[pos++]!;
    switch (op) {
      case 0x7d: {
        // EMPTY_DICT: the first is the outer dict, any later one a suffix's hashes
        if (outer === null && stack.length) return undefined;
        if (outer !== null && !stack.length) return undefined;
        const d = new Map();
        if (outer === null) outer = d;
        stack.push(d);
        break;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x75: {
        // SETITEMS: the pairs above the last mark go into the dict below it
        const m = stack.lastIndexOf(MARK);
        if (m < 1 || (stack.length - m - 1) % 2) return undefined;
        const d = stack[m - 1];
        for (let i = m + 1; i < stack.length; i += 2) if (!setItem(d, stack[i], stack[i + 1])) return undefined;
        stack.length = m;
        break;
      }
      case 0x73: {
        // SETITEM
        if (stack.length < 3) return undefined;
        const v = stack.pop();
        const k = stack.pop();
        if (!setItem(stack[stack.length - 1], k, v)) return undefined;
        break;
      }
      case 0x58: // BINUNICODE (UTF-8; ASCII decodes the same)
      case 0x8c: {
        // SHORT_BINUNICODE
        const len = uint(op === 0x58 ? 4 : 1);
        const text = len < 0 ? undefined : ascii(len);
        if (text === undefined) return undefined;
        stack.push(text);
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
        const v = uint(op === 0x4b ? 1 : op === 0x4d ? 2 : 4);
        if (v < 0) return undefined;
        stack.push(op === 0x4a ? v | 0 : v);
        break;
      }
      case 0x47: {
        // BINFLOAT, big-endian
        if (pos + 8 > n) return undefined;
        stack.push(float(new DataView(b.buffer, b.byteOffset + pos, 8).getFloat64(0, false)));
        pos += 8;
        break;
      }
      case 0x71: // BINPUT
      case 0x72: // LONG_BINPUT
      case 0x94: {
        // MEMOIZE
        if (!stack.length || stack[stack.length - 1] === MARK) return undefined;
        const i = op === 0x94 ? memoSize : uint(op === 0x71 ? 1 : 4);
        if (i < 0 || i > n) return undefined;
        if (memo[i] === undefined) memoSize++;
        memo[i] = stack[stack.length - 1];
        break;
      }
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET: of a string only (a dict met twice is the general reader's to judge)
        const v = memo[uint(op === 0x68 ? 1 : 4)];
        if (typeof v !== 'string') return undefined;
        stack.push(v);
        break;
      }
      case 0x95: {
        // FRAME (protocol 4+): one frame holding everything up to the end only, so no opcode
        // can run across a frame boundary (which the general reader refuses)
        const len = uint(4);
        if (len < 0 || uint(4) !== 0 || pos + len !== n) return undefined;
        break;
      }
      case 0x2e: // STOP
        if (pos !== n || stack.length !== 1 || stack[0] !== outer || outer === null) return undefined;
        return outer;
      default:
        return undefined;
    }
  }
  return undefined;
}
