// Python-compatible JSON against Python's own json module: what json.dumps(json.loads(text))
// gives, byte for byte, for floats across every magnitude, ints beyond 2^53, dicts whose keys a
// JS object would reorder, non-ASCII text, and the non-standard NaN and Infinity.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { PyFloat, pyDumps, pyLoads, PyJsonError } from '../../src/swift/py-json.js';
import { pyFloatRepr } from '../../src/swift/python-values.js';
import { FRAGMEND_VERSION } from '../../src/version.js';
import { prngBelow } from '../helpers/prng.js';
import { PYTHON } from '../helpers/swift-python.js';
import { readFileSync } from 'node:fs';

/** json.dumps(json.loads(line)) for each line, by Python. */
function python(lines: string[]): string[] {
  const script = 'import json, sys\nfor line in sys.stdin.read().split("\\n"):\n    print(json.dumps(json.loads(line)))';
  const r = spawnSync(PYTHON, ['-c', script], { input: lines.join('\n'), encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trimEnd().split('\n');
}

describe('Python-compatible JSON', () => {
  it("round-trips as Python's json module does, for floats of every magnitude", () => {
    const rnd = prngBelow(0x70795f6a);
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++) {
      // a random double from its bits: every exponent, subnormals included
      const b = new DataView(new ArrayBuffer(8));
      b.setUint32(0, rnd(0x100000000));
      b.setUint32(4, rnd(0x100000000));
      const x = b.getFloat64(0);
      if (!Number.isFinite(x)) continue;
      lines.push(JSON.stringify(x).includes('.') || /e/i.test(JSON.stringify(x)) ? JSON.stringify(x) : `${JSON.stringify(x)}.0`);
    }
    for (const x of [0.1, 1e-5, 1.5e-5, 0.0001, 0.00012, 1e15, 1e16, 123456789012345678, 2.5, 5.0, 1e22, 1e-7, 0.5e-323]) lines.push(String(x).includes('.') || /e/.test(String(x)) ? String(x) : `${x}.0`);
    lines.push('-0.0', '1E5', '1e+5', '2.50', '0.000', '-1.25e-3');
    const want = python(lines);
    lines.forEach((line, i) => expect(pyDumps(pyLoads(line)), line).toBe(want[i]));
  });

  it('keeps dict order, ints beyond 2^53, ints apart from floats, and escapes as ensure_ascii', () => {
    const lines = [
      '{"b": 1, "1": 2, "a": {"2": 1.0, "10": [1, 2.0, -0, 12345678901234567890123]}, "1": 3}',
      '{"s": "caf\\u00e9 \\ud83d\\ude00 \\n\\t\\"\\\\ /", "u": "naïve €", "e": {}, "l": [], "n": null, "t": true, "f": false}',
      '[NaN, Infinity, -Infinity, 1e400]',
      '  {"spaced" :  [ 1 , 2 ] }  ',
      '{"object_reconstruction_time": 0.0123, "object_reconstruction_last": 1796600000.123456, "stats": {"success": 12.0, "failure": 0}}',
    ];
    const want = python(lines);
    lines.forEach((line, i) => expect(pyDumps(pyLoads(line)), line).toBe(want[i]));
  });

  it('refuses what json.loads refuses', () => {
    for (const bad of ['', '{', '{"a" 1}', '{"a": 1,}', '[1 2]', '{"a": 1} x', "{'a': 1}", '"\u0001"', '01', 'nul']) {
      expect(() => pyLoads(bad), JSON.stringify(bad)).toThrow(PyJsonError);
      const r = spawnSync(PYTHON, ['-c', 'import json, sys\njson.loads(sys.stdin.read())'], { input: bad, encoding: 'utf8' });
      expect(r.status, `Python on ${JSON.stringify(bad)}`).not.toBe(0);
    }
  });

  it('writes PyFloat with repr, and JS numbers that are not whole as floats', () => {
    expect(pyDumps(new Map<string, never>([['a', new PyFloat(2) as never]]))).toBe('{"a": 2.0}');
    expect(pyDumps([3, 0.5, new PyFloat(1e16)])).toBe('[3, 0.5, 1e+16]');
    expect(pyFloatRepr(-1e-7)).toBe('-1e-07');
  });
});

describe('FRAGMEND_VERSION', () => {
  it("is package.json's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(FRAGMEND_VERSION).toBe(pkg.version);
  });
});
