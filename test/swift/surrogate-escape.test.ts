// Python's utf8/surrogateescape codec, which Swift's metadata and hash paths go through, against
// Python itself: fixed edge cases and a few hundred generated strings and byte runs, encoded and
// decoded by both, the fast paths (plain UTF-8) and the byte-by-byte ones alike.
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSurrogateEscape, encodeSurrogateEscape } from '../../src/swift/metadata.js';
import { DiskFileError } from '../../src/swift/ondisk.js';
import { PYTHON } from '../helpers/pyeclib.js';

const PY = `
import json, sys
req = json.load(sys.stdin)
enc = []
for s in req['encode']:
    try:
        enc.append(s.encode('utf8', 'surrogateescape').hex())
    except UnicodeEncodeError:
        enc.append(None)
dec = [bytes.fromhex(h).decode('utf8', 'surrogateescape') for h in req['decode']]
json.dump({'encode': enc, 'decode': dec}, sys.stdout)
`;

function python(encode: string[], decode: Uint8Array[]): { encode: (string | null)[]; decode: string[] } {
  const r = spawnSync(PYTHON, ['-c', PY], {
    input: JSON.stringify({ encode, decode: decode.map((b) => Buffer.from(b).toString('hex')) }),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`${PYTHON} failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (...b: number[]) => new Uint8Array(b);

const FIXED_STRINGS = [
  '',
  'AUTH_test/c/o',
  '/AUTH_bench/restore/o88',
  'X-Object-Meta-Ü: ☃ and 😀',
  '\u{feff}BOM first',
  '\udc80\udcff raw bytes kept by surrogateescape',
  'caf\u00e9\udce9 mixed',
  '\ud83d\ude00 a pair written as two escapes',
  '\ud800 lone high',
  'lone low at the end \udfff',
  '\udc7f just below the escape range',
  '\u0000 nul',
];

const FIXED_BYTES = [
  bytes(),
  bytes(0x41, 0x42),
  bytes(0xc3, 0xa9),
  bytes(0xe2, 0x82, 0xac),
  bytes(0xf0, 0x9f, 0x98, 0x80),
  bytes(0xef, 0xbb, 0xbf, 0x41), // a BOM is text, not a marker, to Python's 'utf8'
  bytes(0x80),
  bytes(0xff, 0xfe),
  bytes(0xc0, 0xaf), // overlong '/'
  bytes(0xe0, 0x80, 0xaf), // overlong, 3 bytes
  bytes(0xed, 0xa0, 0x80), // an encoded surrogate
  bytes(0xf4, 0x90, 0x80, 0x80), // past U+10FFFF
  bytes(0xe2, 0x82), // cut short
  bytes(0x61, 0xe2, 0x82, 0x62),
  bytes(0xf0, 0x9f, 0x98), // cut short, 4 bytes
];

describe('utf8 with surrogateescape, as Python has it', () => {
  const genStrings = fc.sample(
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      // any UTF-16 code unit, lone surrogates and surrogateescape's range included
      fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 20 }).map((u) => String.fromCharCode(...u)),
    ),
    { numRuns: 400, seed: 4242 },
  );
  const genBytes = fc.sample(
    fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => new TextEncoder().encode(s)),
      // valid UTF-8 with a stray byte dropped in
      fc.tuple(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.integer({ min: 0x80, max: 0xff }), fc.nat()).map(([s, b, at]) => {
        const u = [...new TextEncoder().encode(s)];
        u.splice(at % (u.length + 1), 0, b);
        return new Uint8Array(u);
      }),
    ),
    { numRuns: 400, seed: 4343 },
  );
  const strings = [...FIXED_STRINGS, ...genStrings];
  const byteRuns = [...FIXED_BYTES, ...genBytes];
  const py = python(strings, byteRuns);

  it('encodes every string as Python does, and refuses what Python refuses', () => {
    let refused = 0;
    let escaped = 0;
    strings.forEach((s, i) => {
      const want = py.encode[i];
      if (want === null) {
        refused++;
        expect(() => encodeSurrogateEscape(s), JSON.stringify(s)).toThrow(DiskFileError);
      } else {
        if (/[\udc80-\udcff]/.test(s)) escaped++;
        expect(hex(encodeSurrogateEscape(s)), JSON.stringify(s)).toBe(want);
      }
    });
    // the cases exercise both paths and the refusal
    expect(refused).toBeGreaterThan(10);
    expect(escaped).toBeGreaterThan(10);
  });

  it('decodes every byte run as Python does', () => {
    let escaped = 0;
    byteRuns.forEach((b, i) => {
      const got = decodeSurrogateEscape(b);
      if (/[\udc80-\udcff]/.test(got)) escaped++;
      expect(got, hex(b)).toBe(py.decode[i]);
    });
    expect(escaped).toBeGreaterThan(100);
  });

  it('round-trips: what decodes encodes back to the same bytes', () => {
    for (const b of byteRuns) expect(hex(encodeSurrogateEscape(decodeSurrogateEscape(b)))).toBe(hex(b));
  });

  it('decodes a view into a larger buffer by its own bytes only', () => {
    const big = new TextEncoder().encode('xx/AUTH_a/c/\u00e9yy');
    expect(decodeSurrogateEscape(big.subarray(2, big.length - 2))).toBe('/AUTH_a/c/\u00e9');
    const bad = bytes(0x41, 0x80, 0x42, 0x43);
    expect(decodeSurrogateEscape(bad.subarray(1, 3))).toBe('\udc80B');
  });
});
