// Fragments made by real PyECLib / liberasurecode 1.6.2 (scripts/gen-golden.py), checked
// without Python: every byte of every fragment (as digests), the headers in full, rebuilds
// of random erasure patterns, get_segment_info and fragments_needed.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { ECDriver, relaxedSimdSupported, setValidator, type ECType } from '../../src/codec/index.js';
import { digest, hex, sha } from '../helpers/digest.js';
import type { GoldenCase } from '../helpers/golden-subset.js';
import { prngBytes } from '../helpers/prng.js';

type Case = GoldenCase & { ec_type: ECType };

const golden = JSON.parse(readFileSync(new URL('../fixtures/golden.json', import.meta.url), 'utf8')) as {
  cases: Case[];
  segment_info: Array<{ ec_type: ECType; k: number; m: number; data_len: number; segment_size: number; info: Record<string, number> }>;
  fragments_needed: Array<{ ec_type: ECType; k: number; m: number; missing: number[]; exclude: number[]; needed: number[] }>;
  checksummed: Array<{ ec_type: ECType; k: number; m: number; length: number; seed: number; fragments: string[]; rebuilt01: string[]; header0: string }>;
  legacy_crc: Array<{ ec_type: ECType; k: number; m: number; chksum_type: string; length: number; seed: number; fragments: string[]; headers: string[] }>;
};

// The relaxed-SIMD build too, where V8 can be told to validate it (Node 20 needs the flag).
setFlagsFromString('--experimental-wasm-relaxed-simd');
setValidator(null);
const KERNELS = relaxedSimdSupported() ? (['relaxed', 'simd', 'scalar'] as const) : (['simd', 'scalar'] as const);

const drivers = new Map<string, Promise<ECDriver>>();
function driver(ecType: ECType, k: number, m: number, extra: Partial<Parameters<typeof ECDriver.create>[0]> = {}, kernels: 'relaxed' | 'simd' | 'scalar' = 'simd') {
  const key = JSON.stringify([ecType, k, m, extra, kernels]);
  if (!drivers.has(key)) drivers.set(key, ECDriver.create({ ecType, k, m, kernels, ...extra }));
  return drivers.get(key)!;
}

describe.each(KERNELS)('golden vectors from PyECLib (%s kernels)', (kernels) => {
  const cases = kernels !== 'scalar' ? golden.cases : golden.cases.filter((c) => c.length < 70000);
  it.each(cases.map((c) => [`${c.ec_type} ${c.k}+${c.m} ${c.length} B`, c] as const))('%s', async (_name, c) => {
    const ec = await driver(c.ec_type, c.k, c.m, {}, kernels);
    expect(ec.kernel).toBe(kernels);
    const data = prngBytes(c.seed, c.length);
    const frags = ec.encode(data);
    expect(frags).toHaveLength(c.k + c.m);
    expect(frags[0]!.length).toBe(c.fragment_length);
    expect(hex(frags[0]!.subarray(0, 80))).toBe(c.header0);
    expect(frags.map(digest)).toEqual(c.fragments);
    for (const p of c.reconstruct) {
      const survivors = frags.filter((_, i) => !p.missing.includes(i));
      expect(ec.reconstruct(survivors, p.missing).map(digest)).toEqual(p.rebuilt);
      // Survivors in reverse order: decode takes any order.
      expect(sha(ec.decode([...survivors].reverse()))).toBe(sha(data));
    }
  });
});

describe('PyECLib numbers', () => {
  it('get_segment_info matches for every backend and shape', async () => {
    for (const s of golden.segment_info) {
      const ec = await driver(s.ec_type, s.k, s.m);
      const info = ec.getSegmentInfo(s.data_len, s.segment_size);
      expect({
        segment_size: info.segmentSize,
        last_segment_size: info.lastSegmentSize,
        fragment_size: info.fragmentSize,
        last_fragment_size: info.lastFragmentSize,
        num_segments: info.numSegments,
      }).toEqual(s.info);
    }
  });

  it('fragments_needed matches', async () => {
    for (const f of golden.fragments_needed) {
      const ec = await driver(f.ec_type, f.k, f.m);
      expect(ec.fragmentsNeeded(f.missing, f.exclude)).toEqual(f.needed);
    }
  });

  it('inline_crc32 fragments and their rebuilds match', async () => {
    for (const c of golden.checksummed) {
      const ec = await driver(c.ec_type, c.k, c.m, { chksumType: 'inline_crc32' });
      const frags = ec.encode(prngBytes(c.seed, c.length));
      expect(hex(frags[0]!.subarray(0, 80))).toBe(c.header0);
      expect(frags.map(digest)).toEqual(c.fragments);
      expect(ec.reconstruct(frags.slice(2), [0, 1]).map(digest)).toEqual(c.rebuilt01);
      expect(ec.getMetadata(frags[3]!).chksumMismatch).toBe(false);
    }
  });

  it('legacy-CRC headers (LIBERASURECODE_WRITE_LEGACY_CRC) match, and are read back', async () => {
    for (const c of golden.legacy_crc) {
      const chksumType = c.chksum_type === 'inline_crc32' ? 'inline_crc32' : 'none';
      const ec = await driver(c.ec_type, c.k, c.m, { chksumType, writeLegacyCrc: true });
      const data = prngBytes(c.seed, c.length);
      const frags = ec.encode(data);
      expect(frags.map((f) => hex(f.subarray(0, 80)))).toEqual(c.headers);
      expect(frags.map(digest)).toEqual(c.fragments);
      // A reader that writes zlib CRCs still accepts legacy ones.
      const reader = await driver(c.ec_type, c.k, c.m, { chksumType });
      expect(sha(reader.decode(frags.slice(1)))).toBe(sha(data));
      expect(reader.getMetadata(frags[0]!).chksumMismatch).toBe(false);
    }
  });
});
