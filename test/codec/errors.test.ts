// Bad input gets a typed error naming the problem, never wrong bytes.
import * as zlib from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ECBackendNotSupported,
  ECBadChecksum,
  ECBadHeader,
  ECDriver,
  ECError,
  ECInsufficientFragments,
  ECInvalidParameter,
  ECSingularMatrix,
  ReedSolomon,
} from '../../src/codec/index.js';
import { prngBytes } from '../helpers/prng.js';

const crc32 = (b: Uint8Array) => (zlib as unknown as { crc32: (b: Uint8Array) => number }).crc32(b) >>> 0;

/** Rewrites a header field and recomputes the metadata checksum, as a foreign writer would. */
function patch(frag: Uint8Array, edit: (dv: DataView) => void): Uint8Array {
  const f = frag.slice();
  const dv = new DataView(f.buffer);
  edit(dv);
  dv.setUint32(67, crc32(f.subarray(0, 59)), true);
  return f;
}

let ec: ECDriver;
let frags: Uint8Array[];
const data = prngBytes(42, 10_000);
beforeAll(async () => {
  ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
  frags = ec.encode(data);
});

describe('ECDriver.create', () => {
  it.each([
    [{ k: 0, m: 2 }, ECInvalidParameter, /data fragments/],
    [{ k: 4, m: 0 }, ECInvalidParameter, /parity fragments/],
    [{ k: 2.5, m: 2 }, ECInvalidParameter, /data fragments/],
    [{ k: 30, m: 3 }, ECInvalidParameter, /at most 32/],
  ])('%o is refused', async (shape, type, msg) => {
    const p = ECDriver.create({ ...shape, ecType: 'liberasurecode_rs_vand' });
    await expect(p).rejects.toBeInstanceOf(type);
    await expect(p).rejects.toThrow(msg);
  });

  it('refuses unknown backends, naming the supported ones', async () => {
    const p = ECDriver.create({ k: 4, m: 2, ecType: 'flat_xor_hd' });
    await expect(p).rejects.toBeInstanceOf(ECBackendNotSupported);
    await expect(p).rejects.toThrow(/liberasurecode_rs_vand/);
  });

  it('refuses isa_l_rs_vand with 5+ parity unless allowNonMds', async () => {
    await expect(ECDriver.create({ k: 8, m: 5, ecType: 'isa_l_rs_vand' })).rejects.toThrow(/not MDS/);
    const d = await ECDriver.create({ k: 8, m: 5, ecType: 'isa_l_rs_vand', allowNonMds: true });
    expect(d.encode(new Uint8Array(100))).toHaveLength(13);
  });

  it('refuses an unknown checksum type', async () => {
    await expect(ECDriver.create({ k: 4, m: 2, ecType: 'isa_l_rs_vand', chksumType: 'md5' as 'none' })).rejects.toBeInstanceOf(
      ECInvalidParameter,
    );
  });
});

describe('decode and reconstruct refuse bad fragments', () => {
  it('too few fragments', () => {
    expect(() => ec.decode(frags.slice(0, 3))).toThrow(ECInsufficientFragments);
    expect(() => ec.decode([])).toThrow(ECInsufficientFragments);
    // Duplicates do not count twice.
    expect(() => ec.decode([frags[0]!, frags[0]!, frags[1]!, frags[2]!])).toThrow(/4 distinct fragments, got 3/);
    expect(() => ec.reconstruct(frags.slice(0, 3), [5])).toThrow(ECInsufficientFragments);
  });

  it('mixed sizes', () => {
    expect(() => ec.decode([frags[0]!, frags[1]!, frags[2]!, frags[3]!.subarray(0, 100)])).toThrow(/mixed sizes/);
  });

  it('a fragment shorter than its header', () => {
    const short = frags.map((f) => f.subarray(0, 50));
    expect(() => ec.decode(short)).toThrow(ECBadHeader);
    expect(() => ec.getMetadata(new Uint8Array(79))).toThrow(/shorter than the 80-byte/);
  });

  it('bad magic', () => {
    const bad = frags.map((f) => f.slice());
    bad[1]![60] ^= 0xff;
    expect(() => ec.decode(bad)).toThrow(/bad magic/);
  });

  it('a corrupt header fails its metadata checksum', () => {
    const bad = frags.map((f) => f.slice());
    bad[2]![12] ^= 1; // orig_data_size
    expect(() => ec.decode(bad)).toThrow(/metadata checksum/);
  });

  it("another backend's fragments", async () => {
    const isal = await ECDriver.create({ k: 4, m: 2, ecType: 'isa_l_rs_vand' });
    const foreign = isal.encode(data);
    expect(() => ec.decode(foreign)).toThrow(/written by isa_l_rs_vand, not liberasurecode_rs_vand/);
    expect(() => ec.reconstruct([...frags.slice(0, 3), foreign[3]!], [4])).toThrow(ECBadHeader);
    expect(ec.isValidFragment(foreign[0]!)).toBe(false);
    expect(ec.isValidFragment(frags[0]!)).toBe(true);
  });

  it('another backend version', () => {
    const bad = frags.map((f) => patch(f, (dv) => dv.setUint32(55, 0x010001, true)));
    expect(() => ec.decode(bad)).toThrow(/backend version/);
  });

  it('a fragment index out of range', () => {
    const bad = frags.slice();
    bad[0] = patch(frags[0]!, (dv) => dv.setUint32(0, 6, true));
    expect(() => ec.decode(bad)).toThrow(/index 6, out of range/);
  });

  it('fragments of different segments', () => {
    // 9,995 bytes pad to the same payload size as 10,000, so only orig_data_size differs.
    const other = ec.encode(prngBytes(7, 9_995));
    expect(() => ec.decode([frags[0]!, frags[1]!, other[2]!, other[3]!])).toThrow(/different segments/);
  });

  it('a payload size that the fragment does not hold', () => {
    const bad = frags.map((f) => patch(f, (dv) => dv.setUint32(4, f.length, true)));
    expect(() => ec.decode(bad)).toThrow(/payload bytes/);
  });

  it('an index to reconstruct out of range, and non-integers', () => {
    expect(() => ec.reconstruct(frags, [6])).toThrow(ECInvalidParameter);
    expect(() => ec.reconstruct(frags, [-1])).toThrow(/out of range/);
    expect(() => ec.reconstruct(frags, [])).toThrow(ECInvalidParameter);
    expect(() => ec.fragmentsNeeded([1.5])).toThrow(ECInvalidParameter);
  });

  it('fragmentsNeeded with too much missing', () => {
    expect(() => ec.fragmentsNeeded([0, 1], [2])).toThrow(ECInsufficientFragments);
    expect(ec.fragmentsNeeded([0, 1])).toEqual([2, 3, 4, 5]);
  });

  it('not a Uint8Array', () => {
    expect(() => ec.encode('abc' as unknown as Uint8Array)).toThrow(ECInvalidParameter);
    expect(() => ec.decode([...frags.slice(0, 3), 'x' as unknown as Uint8Array])).toThrow(ECInvalidParameter);
  });

  it('all errors are ECErrors with liberasurecode codes', () => {
    try {
      ec.decode(frags.slice(0, 1));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ECError);
      expect((e as ECError).code).toBe('EINSUFFFRAGS');
    }
  });
});

describe('inline CRC-32 payload checksums', () => {
  it('a corrupt payload is dropped: decode uses the others, or refuses with ECBadChecksum', async () => {
    const crcEc = await ECDriver.create({ k: 4, m: 2, ecType: 'isa_l_rs_cauchy', chksumType: 'inline_crc32' });
    const good = crcEc.encode(data);
    const bad = good.map((f) => f.slice());
    bad[0]![200] ^= 0x40;
    expect(crcEc.getMetadata(bad[0]!).chksumMismatch).toBe(true);
    expect(crcEc.isValidFragment(bad[0]!)).toBe(false);
    expect(crcEc.decode(bad)).toEqual(data);
    expect(crcEc.reconstruct(bad.slice(0, 5), [5])[0]).toEqual(good[5]);
    expect(() => crcEc.decode(bad.slice(0, 4))).toThrow(ECBadChecksum);
  });
});

describe('a big-endian writer', () => {
  it('byte-swapped headers are read, as liberasurecode reads them', () => {
    const swapped = frags.map((f) => {
      const s = f.slice();
      const dv = new DataView(s.buffer);
      const src = new DataView(f.buffer, f.byteOffset);
      for (const off of [0, 4, 8, 55, 59, 63]) dv.setUint32(off, src.getUint32(off, true), false);
      dv.setBigUint64(12, src.getBigUint64(12, true), false);
      dv.setUint32(67, crc32(s.subarray(0, 59)), false);
      return s;
    });
    const md = ec.getMetadata(swapped[3]!);
    expect(md).toMatchObject({ index: 3, byteSwapped: true, origDataSize: data.length, backendName: 'liberasurecode_rs_vand' });
    expect(ec.decode(swapped.slice(2))).toEqual(data);
  });
});

describe('ReedSolomon input checks', () => {
  it('refuses wrong shard counts, mixed lengths and odd lengths for GF(2^16)', async () => {
    const rs = await ReedSolomon.create({ k: 3, m: 2, matrix: 'liberasurecode_rs_vand' });
    expect(() => rs.encode([new Uint8Array(4), new Uint8Array(4)])).toThrow(/exactly k=3/);
    expect(() => rs.encode([new Uint8Array(4), new Uint8Array(4), new Uint8Array(6)])).toThrow(/mixed lengths/);
    expect(() => rs.encode([new Uint8Array(3), new Uint8Array(3), new Uint8Array(3)])).toThrow(/must be even/);
    expect(() => rs.reconstruct([null, null, null, new Uint8Array(4), new Uint8Array(4)])).toThrow(ECInsufficientFragments);
  });

  it('a non-MDS matrix reports the singular pattern instead of returning garbage', async () => {
    // isa_l_rs_vand 6+5: the generator rows of fragments 1, 2, 4, 6, 7, 10 are linearly dependent.
    const rs = await ReedSolomon.create({ k: 6, m: 5, matrix: 'isa_l_rs_vand', allowNonMds: true });
    const shards = Array.from({ length: 6 }, (_, i) => prngBytes(i + 1, 64));
    const all = [...shards, ...rs.encode(shards)];
    const keep = [1, 2, 4, 6, 7, 10];
    expect(() => rs.reconstruct(all.map((s, i) => (keep.includes(i) ? s : null)))).toThrow(ECSingularMatrix);
    // Another loss of the same size is fine.
    const keep2 = [0, 1, 2, 3, 6, 7];
    expect(rs.reconstruct(all.map((s, i) => (keep2.includes(i) ? s : null)))).toEqual(all);
  });
});
