// JSON as Python's json module reads and writes it, for answers that must match Swift's byte for
// byte: dicts keep their order (a JS object would put keys such as "1" first), ints and floats
// stay apart (5 and 5.0), floats are written as Python's repr writes them (1e-05, 1e+16, 2.0),
// and json.dumps' default separators and ensure_ascii apply.
import { pyFloatRepr } from './python-values.js';

/** A Python float, written with repr even when its value is whole. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A Python int too large for a JS number, kept as its decimal digits. */
export class PyBigInt {
  constructor(readonly digits: string) {}
}

/** A value as json.load gives it: plain JS numbers are ints, dicts are ordered Maps. */
export type PyJson = null | boolean | number | string | PyFloat | PyBigInt | PyJson[] | PyDict;
export interface PyDict extends Map<string, PyJson> {}

export class PyJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PyJsonError';
  }
}

/** A float as json.dumps writes it: repr, and NaN/Infinity for what is not finite. */
function jsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  return pyFloatRepr(x);
}

/** A string as json.dumps(ensure_ascii=True) writes it. */
function dumpString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

export interface DumpOptions {
  /** json.dumps' sort_keys */
  sortKeys?: boolean;
  /** dict keys whose number values are Python floats even when whole (a ring's weights) */
  floatKeys?: ReadonlySet<string>;
}

/**
 * json.dumps(value): separators ', ' and ': ', ensure_ascii. A dict is a Map (its order kept) or
 * a plain object (its undefined entries left out); a JS number is an int when whole, a float
 * otherwise, or when a PyFloat or under one of floatKeys.
 */
export function pyDumps(value: unknown, opts: DumpOptions = {}, key?: string): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isInteger(value) && !(key !== undefined && opts.floatKeys?.has(key)) ? String(value) : jsonFloat(value);
  if (typeof value === 'string') return dumpString(value);
  if (value instanceof PyFloat) return jsonFloat(value.value);
  if (value instanceof PyBigInt) return value.digits;
  if (Array.isArray(value)) return `[${value.map((v) => pyDumps(v, opts)).join(', ')}]`;
  let entries: Array<[string, unknown]>;
  if (value instanceof Map) entries = [...(value as Map<string, unknown>)];
  else if (typeof value === 'object') entries = Object.entries(value).filter(([, v]) => v !== undefined);
  else throw new PyJsonError(`cannot serialise a ${typeof value}`);
  if (opts.sortKeys) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${dumpString(k)}: ${pyDumps(v, opts, k)}`).join(', ')}}`;
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;

/**
 * json.loads(text): a dict keeps its keys in order (a repeated key keeps its first place and its
 * last value, as in Python), NaN and Infinity are accepted, and anything after the value but
 * whitespace is an error ("Extra data").
 */
export function pyLoads(text: string): PyJson {
  let i = 0;
  const fail = (what: string): never => {
    throw new PyJsonError(`${what} at char ${i}`);
  };
  const skip = () => {
    WHITESPACE.lastIndex = i;
    WHITESPACE.exec(text);
    i = WHITESPACE.lastIndex;
  };
  /** The comma-separated items of a dict or list, from its opening bracket through `close`. */
  const items = (close: string, item: () => void) => {
    i++;
    skip();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      item();
      skip();
      if (text[i] === close) {
        i++;
        return;
      }
      if (text[i] !== ',') fail("Expecting ',' delimiter");
      i++;
    }
  };
  const value = (depth: number): PyJson => {
    if (depth > 500) fail('Nested too deeply');
    skip();
    const c = text[i];
    if (c === '{') {
      const d: PyDict = new Map();
      items('}', () => {
        skip();
        if (text[i] !== '"') fail('Expecting property name enclosed in double quotes');
        const k = string();
        skip();
        if (text[i] !== ':') fail("Expecting ':' delimiter");
        i++;
        d.set(k, value(depth + 1));
      });
      return d;
    }
    if (c === '[') {
      const a: PyJson[] = [];
      items(']', () => a.push(value(depth + 1)));
      return a;
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ['null', null],
      ['true', true],
      ['false', false],
      ['NaN', new PyFloat(NaN)],
      ['Infinity', new PyFloat(Infinity)],
      ['-Infinity', new PyFloat(-Infinity)],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail('Expecting value');
    i = NUMBER.lastIndex;
    if (m[1] !== undefined || m[2] !== undefined) return new PyFloat(Number(m[0]));
    const n = Number(m[0]);
    if (Number.isSafeInteger(n)) return n === 0 ? 0 : n;
    return new PyBigInt(m[0].startsWith('-') ? '-' + m[0].slice(1) : m[0]);
  };
  const string = (): string => {
    const start = i;
    i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) fail('Unterminated string starting');
      if (c === '"') break;
      if (c === '\\') i++;
      else if (c! < ' ') fail('Invalid control character');
      i++;
    }
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('Invalid \\escape');
    }
  };
  const v = value(0);
  skip();
  if (i !== text.length) fail('Extra data');
  return v;
}
