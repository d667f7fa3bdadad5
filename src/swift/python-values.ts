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
