// hash_path and partition selection against values computed by real Swift
// (scripts/gen-ring-fixtures.py writes them into test/fixtures/rings/expected.json).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getPartition, hashPath, hashPathRaw, hashTop32 } from '../../src/swift/hash-path.js';

type Name = [string, string | null, string | null];
interface HashCase {
  prefix_hex: string;
  suffix_hex: string;
  account: string;
  container: string | null;
  object: string | null;
  hex: string;
}
interface Expected {
  hash_prefix: string;
  hash_suffix: string;
  names: Name[];
  names_hash_sha256: string;
  names_hash_head: string[];
  names_top32: string;
  hash_cases: HashCase[];
  saio: { hash_prefix: string; hash_suffix: string; name: Name; hash: string; partition: number };
}

const expected = JSON.parse(
  readFileSync(new URL('../fixtures/rings/expected.json', import.meta.url), 'utf8'),
) as Expected;
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

describe('hashPath matches Swift hash_path', () => {
  const { hash_prefix: prefix, hash_suffix: suffix, names } = expected;

  it(`${names.length} unicode account/container/object names`, () => {
    const hexes = names.map(([a, c, o]) => hashPath(prefix, suffix, a, c, o));
    expect(hexes.slice(0, expected.names_hash_head.length)).toEqual(expected.names_hash_head);
    expect(hexes.map((h) => h.slice(0, 8)).join('')).toBe(expected.names_top32);
    expect(createHash('sha256').update(hexes.join('\n')).digest('hex')).toBe(expected.names_hash_sha256);
  });

  it('hashPathRaw is the same digest as bytes', () => {
    for (const [a, c, o] of names.slice(0, 200)) {
      expect(Buffer.from(hashPathRaw(prefix, suffix, a, c, o)).toString('hex')).toBe(hashPath(prefix, suffix, a, c, o));
    }
  });

  it('prefix/suffix as raw swift.conf bytes, empty parts, long and slashed names', () => {
    expect(expected.hash_cases.length).toBeGreaterThan(40);
    for (const c of expected.hash_cases) {
      const got = hashPath(unhex(c.prefix_hex), unhex(c.suffix_hex), c.account, c.container, c.object);
      expect(got, JSON.stringify(c)).toBe(c.hex);
    }
  });

  it('a UTF-8 string prefix hashes like its bytes', () => {
    const bytes = new Uint8Array(Buffer.from(prefix, 'utf8'));
    expect(bytes.length).toBeGreaterThan(prefix.length); // the fixture prefix is non-ASCII
    expect(hashPath(bytes, suffix, 'a', 'c', 'o')).toBe(hashPath(prefix, suffix, 'a', 'c', 'o'));
  });

  it('bytes names hash like their UTF-8 strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1 }), fc.string({ unit: 'grapheme', minLength: 1 }), (c, o) => {
        const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
        expect(hashPath(prefix, suffix, enc('AUTH_x'), enc(c), enc(o))).toBe(hashPath(prefix, suffix, 'AUTH_x', c, o));
      }),
    );
  });

  it('the SAIO placement example', () => {
    const s = expected.saio;
    expect(hashPath(s.hash_prefix, s.hash_suffix, ...s.name)).toBe('06be8d460ea62e257bc137f2f7b0f147');
    expect(s.hash).toBe('06be8d460ea62e257bc137f2f7b0f147');
    expect(getPartition(s.hash, 32 - 6)).toBe(1);
  });

  it('refuses what Swift refuses', () => {
    expect(() => hashPath('p', 's', 'a', null, 'o')).toThrow(TypeError);
    expect(() => hashPath('p', 's', 'a', '', 'o')).toThrow(TypeError);
    // Python cannot encode a lone surrogate to UTF-8; hashing U+FFFD instead would be silently wrong.
    expect(() => hashPath('p', 's', 'a', 'c', 'bad\uD800')).toThrow(TypeError);
    expect(() => hashPath('p', 's', 'a\uDC00')).toThrow(TypeError);
    expect(hashPath('p', 's', 'a', 'c', '\uD83D\uDE00')).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('getPartition', () => {
  it('is the top 32 bits shifted by part_shift', () => {
    const raw = unhex('06be8d460ea62e257bc137f2f7b0f147');
    expect(hashTop32(raw)).toBe(0x06be8d46);
    expect(hashTop32('06be8d460ea62e257bc137f2f7b0f147')).toBe(0x06be8d46);
    expect(getPartition(raw, 0)).toBe(0x06be8d46);
    expect(getPartition(raw, 26)).toBe(1);
    expect(getPartition(raw, 31)).toBe(0);
    expect(getPartition(unhex('ffffffff'), 0)).toBe(0xffffffff);
    expect(getPartition(unhex('ffffffff'), 28)).toBe(15);
    // part power 0: Python's x >> 32 is 0, JavaScript's x >>> 32 would be x.
    expect(getPartition(unhex('ffffffff'), 32)).toBe(0);
  });

  it('agrees between hex and raw for every shift', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 32 }), (b, shift) => {
        const top = Buffer.from(b).readUInt32BE(0);
        const want = shift === 32 ? 0 : Math.floor(top / 2 ** shift);
        expect(getPartition(b, shift)).toBe(want);
        expect(getPartition(Buffer.from(b).toString('hex'), shift)).toBe(want);
      }),
    );
  });

  it('rejects bad input', () => {
    expect(() => getPartition('zz', 10)).toThrow(TypeError);
    expect(() => getPartition(new Uint8Array(3), 10)).toThrow(TypeError);
    expect(() => getPartition('00000000', 33)).toThrow(RangeError);
    expect(() => getPartition('00000000', -1)).toThrow(RangeError);
  });
});
