// The MD5 for short inputs against RFC 1321's test suite and against node:crypto (OpenSSL), on
// every length around the block and padding boundaries, fed whole and in random pieces.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Md5, md5Hex } from '../../src/swift/md5.js';
import { prngBelow } from '../helpers/prng.js';

const openssl = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

describe('Md5', () => {
  it("gives RFC 1321's test suite digests", () => {
    const suite: Array<[string, string]> = [
      ['', 'd41d8cd98f00b204e9800998ecf8427e'],
      ['a', '0cc175b9c0f1b6a831c399e269772661'],
      ['abc', '900150983cd24fb0d6963f7d28e17f72'],
      ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
      ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
      ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
      ['1234567890'.repeat(8), '57edf4a22be3c955ac49da2e2107b67a'],
    ];
    for (const [text, hex] of suite) expect(md5Hex(text), text).toBe(hex);
  });

  it('agrees with node:crypto on every length to 300 bytes, whole and in random pieces', () => {
    const rnd = prngBelow(0x6d5a56e9);
    for (let len = 0; len <= 300; len++) {
      const data = Uint8Array.from({ length: len }, () => rnd(256));
      const want = openssl(data);
      expect(md5Hex(data), `length ${len}`).toBe(want);
      const h = new Md5();
      for (let at = 0; at < len; ) {
        const step = 1 + rnd(70);
        h.update(data.subarray(at, at + step));
        at += step;
      }
      expect(h.hex(), `length ${len} in pieces`).toBe(want);
    }
    // longer inputs, with a subarray at an odd offset of a larger buffer
    for (const len of [1000, 4096, 65537, 1 << 20]) {
      const big = Uint8Array.from({ length: len + 3 }, () => rnd(256));
      expect(md5Hex(big.subarray(3)), `length ${len}`).toBe(openssl(big.subarray(3)));
    }
  });

  it("hashes a string's UTF-8 bytes", () => {
    for (const s of ['/AUTH_test/c/o', 'caf\u00e9', '\u2603 snow', '\u{1f600}', 'x'.repeat(200)]) expect(md5Hex(s), s).toBe(openssl(Buffer.from(s, 'utf8')));
    expect(new Md5().update('ab').update(new Uint8Array([0x63])).hex()).toBe(openssl('abc'));
  });

  it('gives the same digest when asked twice, and refuses input after it', () => {
    const h = new Md5().update('abc');
    expect(h.hex()).toBe(h.hex());
    expect(Buffer.from(h.digest()).toString('hex')).toBe(openssl('abc'));
    expect(() => h.update('d')).toThrow('update after digest');
  });
});
