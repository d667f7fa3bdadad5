// JSON as Python's json module reads and writes it, for answers that must match Swift's byte for
// byte: dicts keep their order (a JS object would put keys such as "1" first), ints and floats
// stay apart (5 and 5.0), floats are written as Python's repr writes them (1e-05, 1e+16, 2.0),
// and json.dumps' default separators and ensure_ascii apply.

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

/** Python's repr of a float. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without an argument gives the shortest digits that read back as x, as repr does
  const [mant, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mant.replace('.', '');
  const exp = Number(expText);
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
    return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

function dumpString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** json.dumps(value): separators ', ' and ': ', ensure_ascii, keys in the dict's order. */
export function pyDumps(value: PyJson): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
  if (typeof value === 'string') return dumpString(value);
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  if (value instanceof PyBigInt) return value.digits;
  if (Array.isArray(value)) return `[${value.map(pyDumps).join(', ')}]`;
  return `{${[...value].map(([k, v]) => `${dumpString(k)}: ${pyDumps(v)}`).join(', ')}}`;
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
  const value = (depth: number): PyJson => {
    if (depth > 500) fail('Nested too deeply');
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      const d: PyDict = new Map();
      skip();
      if (text[i] === '}') {
        i++;
        return d;
      }
      for (;;) {
        skip();
        if (text[i] !== '"') fail('Expecting property name enclosed in double quotes');
        const k = string();
        skip();
        if (text[i] !== ':') fail("Expecting ':' delimiter");
        i++;
        d.set(k, value(depth + 1));
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return d;
        }
        fail("Expecting ',' delimiter");
      }
    }
    if (c === '[') {
      i++;
      const a: PyJson[] = [];
      skip();
      if (text[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value(depth + 1));
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return a;
        }
        fail("Expecting ',' delimiter");
      }
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
