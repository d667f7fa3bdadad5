// Python's int() and float() of strings, as Swift's config helpers apply them: these decide
// which option values Swift accepts, so fragmend accepts exactly the same ones.

const WS = '[ \\t\\n\\r\\f\\v]*';
const PY_INT = new RegExp(`^${WS}[+-]?\\d(?:_?\\d)*${WS}$`);
const PY_FLOAT = new RegExp(
  `^${WS}[+-]?(?:(?:\\d(?:_?\\d)*)?\\.?\\d(?:_?\\d)*(?:[eE][+-]?\\d(?:_?\\d)*)?|\\d(?:_?\\d)*\\.|inf(?:inity)?|nan)${WS}$`,
  'i',
);

/** Python int(s): null when Python would raise ValueError. */
export function pyInt(s: string): number | null {
  if (!PY_INT.test(s)) return null;
  const n = Number(s.trim().replace(/_/g, ''));
  return Number.isSafeInteger(n) ? n : null;
}

/** Python float(s): null when Python would raise ValueError. */
export function pyFloat(s: string): number | null {
  if (!PY_FLOAT.test(s)) return null;
  const t = s.trim().replace(/_/g, '').toLowerCase();
  if (t.endsWith('inf') || t.endsWith('infinity')) return t.startsWith('-') ? -Infinity : Infinity;
  if (t.endsWith('nan')) return NaN;
  return Number(t);
}

/**
 * Python's repr(float), which protocol-0 pickles, json.dumps and Swift's messages write: the
 * shortest digits that read back as x, exponent form below 1e-4 and from 1e16 (1e-05, 1e+16),
 * and '.0' on whole numbers.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
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
