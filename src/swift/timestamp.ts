// Swift's Timestamp: seconds since the epoch at 10-microsecond precision, plus an optional
// 64-bit offset that orders events sharing a wall-clock time. Parsing and formatting follow
// swift.common.utils.Timestamp exactly, since these strings are file names on disk and keys in
// SSYNC exchanges: `normal` is '%016.05f', `internal` appends '_%016x' when there is an offset.

export class TimestampError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimestampError';
  }
}

export const PRECISION = 1e-5;
export const MAX_OFFSET = (1n << 64n) - 1n;
const MAX_TIMESTAMP = 10_000_000_000;

// Python float() literals: digits with optional underscores between them, a fraction, an
// exponent, surrounding whitespace; 'inf'/'nan' parse but are refused by the bounds below.
const PY_FLOAT = /^[ \t\n\r\f\v]*[+-]?(?:(?:\d(?:_?\d)*)?\.?\d(?:_?\d)*(?:[eE][+-]?\d(?:_?\d)*)?|\d(?:_?\d)*\.|inf(?:inity)?|nan)[ \t\n\r\f\v]*$/i;
const PY_HEX = /^[ \t\n\r\f\v]*\+?(?:0[xX])?_?[0-9a-fA-F](?:_?[0-9a-fA-F])*[ \t\n\r\f\v]*$/;

function parsePyFloat(s: string, what: string): number {
  if (!PY_FLOAT.test(s)) throw new TimestampError(`invalid timestamp ${JSON.stringify(what)}`);
  const t = s.trim().replace(/_/g, '').toLowerCase();
  if (t.endsWith('inf') || t.endsWith('infinity')) return t.startsWith('-') ? -Infinity : Infinity;
  if (t.endsWith('nan')) return NaN;
  return Number(t);
}

function parsePyHex(s: string, what: string): bigint {
  if (!PY_HEX.test(s)) throw new TimestampError(`invalid timestamp offset in ${JSON.stringify(what)}`);
  return BigInt('0x' + s.trim().replace(/^\+/, '').replace(/^0[xX]/, '').replace(/_/g, ''));
}

/** Python's round(): to nearest, ties to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * '%.5f' of a double as C formats it: the exact binary value rounded half-to-even at the fifth
 * decimal. Number.toFixed rounds exact ties away from zero, so ties are settled exactly here.
 */
function fixed5(x: number): string {
  const s = x.toFixed(5);
  // An exact tie needs x * 2^6 to be an integer (x = j / 64 with j odd, see below), so only
  // values with at most 6 fractional bits can be ties: check those exactly with BigInt.
  const scaled = x * 64;
  if (!Number.isInteger(scaled)) return s;
  const num = BigInt(scaled) * 100000n; // x * 1e5 * 64, exact
  const q = num / 64n;
  const rem = num % 64n;
  if (rem * 2n !== 64n) return s;
  const n = q % 2n === 0n ? q : q + 1n;
  const str = n.toString().padStart(6, '0');
  return `${str.slice(0, -5)}.${str.slice(-5)}`;
}

export interface TimestampOptions {
  offset?: number | bigint;
  /** Difference in units of 10 microseconds. */
  delta?: number;
  checkBounds?: boolean;
}

export class Timestamp {
  /** Seconds, as Python's float. */
  readonly timestamp: number;
  readonly offset: bigint;
  /** Units of 10 microseconds. */
  readonly raw: number;
  /** internal, once asked for */
  private formatted: string | undefined = undefined;

  constructor(value: number | string | Uint8Array | Timestamp, opts: TimestampOptions = {}) {
    let ts: number;
    let offset = 0n;
    if (value instanceof Uint8Array) value = new TextDecoder('ascii').decode(value);
    if (typeof value === 'string') {
      const cut = value.indexOf('_');
      const base = cut < 0 ? value : value.slice(0, cut);
      const rest = cut < 0 ? '' : value.slice(cut + 1);
      ts = parsePyFloat(base, value);
      if (rest.includes('_')) throw new TimestampError(`invalid timestamp offset in ${JSON.stringify(value)}`);
      if (rest) offset = parsePyHex(rest, value);
    } else if (value instanceof Timestamp) {
      ts = value.timestamp;
      offset = value.offset;
    } else if (typeof value === 'number') {
      ts = value;
    } else {
      throw new TimestampError(`invalid timestamp ${String(value)}`);
    }
    const add = BigInt(opts.offset ?? 0);
    if (add < 0n) throw new TimestampError('offset must be non-negative');
    offset += add;
    if (offset > MAX_OFFSET) throw new TimestampError(`offset must be smaller than ${MAX_OFFSET}`);
    if (!Number.isFinite(ts)) throw new TimestampError(`timestamp ${String(value)} is not a finite number`);
    let raw = roundHalfEven(ts / PRECISION);
    if (opts.delta) {
      raw += opts.delta;
      if (raw <= 0) throw new TimestampError(`delta must be greater than ${-(raw - opts.delta)}`);
      ts = raw * PRECISION;
    }
    if (opts.checkBounds ?? true) {
      if (ts < 0) throw new TimestampError('timestamp cannot be negative');
      if (ts >= MAX_TIMESTAMP) throw new TimestampError('timestamp too large');
    }
    this.timestamp = ts;
    this.offset = offset;
    this.raw = raw;
  }

  static now(opts: TimestampOptions = {}): Timestamp {
    return new Timestamp(Date.now() / 1000, opts);
  }

  /** Parses, returning null instead of throwing. */
  static tryParse(value: string): Timestamp | null {
    try {
      return new Timestamp(value);
    } catch {
      return null;
    }
  }

  /** '%016.05f': 1700000000.12345 */
  get normal(): string {
    return fixed5(this.timestamp).padStart(16, '0');
  }

  /** normal, plus '_%016x' of the offset when there is one. */
  get internal(): string {
    // formatted once: sorting a directory's files and every equals/compare would otherwise
    // format both sides again
    return (this.formatted ??= this.offset ? `${this.normal}_${this.offset.toString(16).padStart(16, '0')}` : this.normal);
  }

  /** normal, plus '_%x' of the offset when there is one. */
  get short(): string {
    return this.offset ? `${this.normal}_${this.offset.toString(16)}` : this.normal;
  }

  /** 'YYYY-MM-DDTHH:MM:SS.ffffff' of the normal part, as Swift writes Last-Modified-like fields. */
  get isoformat(): string {
    const t = Number(this.normal);
    let whole = Math.trunc(t);
    let us = roundHalfEven((t - whole) * 1e6);
    if (us >= 1_000_000) {
      whole += 1;
      us -= 1_000_000;
    }
    const d = new Date(whole * 1000);
    return `${d.toISOString().slice(0, 19)}.${String(us).padStart(6, '0')}`;
  }

  /** Seconds rounded up: the Last-Modified time of a resource. */
  ceil(): number {
    return Math.ceil(this.timestamp);
  }

  equals(other: Timestamp | null | undefined): boolean {
    return !!other && this.internal === other.internal;
  }

  /** Swift orders timestamps by their internal form, which is fixed-width. */
  compare(other: Timestamp): number {
    const a = this.internal;
    const b = other.internal;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  valueOf(): number {
    return this.timestamp;
  }

  toString(): string {
    return this.internal;
  }
}

/** Swift's encode_timestamps: t1.short then signed hex deltas of raw units (for .meta names). */
export function encodeTimestamps(t1: Timestamp, t2?: Timestamp, t3?: Timestamp, explicit = false): string {
  let out = t1.short;
  if (!t2) return out;
  const d21 = t2.raw - t1.raw;
  const d32 = t3 ? t3.raw - t2.raw : 0;
  const hex = (d: number) => (d < 0 ? '-' : '+') + Math.abs(d).toString(16);
  if (explicit || d21 !== 0 || d32 !== 0) {
    out += hex(d21);
    if (t3) out += hex(d32);
  }
  return out;
}

/** Swift's decode_timestamps. With explicit, components not encoded come back undefined. */
export function decodeTimestamps(encoded: string, explicit = false): [Timestamp, Timestamp | undefined, Timestamp | undefined] {
  const parts: string[] = [];
  const signs: number[] = [];
  for (const pos of encoded.split('+')) {
    const negs = pos.split('-');
    parts.push(...negs);
    signs.push(1, ...negs.slice(1).map(() => -1));
  }
  const t1 = new Timestamp(parts[0]!);
  const delta = (i: number) => {
    const s = parts[i]!;
    if (!/^[0-9a-fA-F]+$/.test(s)) throw new TimestampError(`invalid timestamp delta in ${JSON.stringify(encoded)}`);
    return signs[i]! * parseInt(s, 16);
  };
  let t2: Timestamp | undefined;
  let t3: Timestamp | undefined;
  if (parts.length > 1) {
    const d = delta(1);
    t2 = d ? new Timestamp((t1.raw + d) * PRECISION) : t1;
  } else if (!explicit) {
    t2 = t1;
  }
  if (parts.length > 2) {
    const d = delta(2);
    t3 = d ? new Timestamp((t2!.raw + d) * PRECISION) : t2;
  } else if (!explicit) {
    t3 = t2;
  }
  return [t1, t2, t3];
}

/** Swift's normalize_timestamp: the 'normal' form of a string or number. */
export function normalizeTimestamp(value: string | number): string {
  return new Timestamp(value).normal;
}
