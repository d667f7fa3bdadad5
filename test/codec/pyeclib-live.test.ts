// Live cross-check against real PyECLib / liberasurecode on fresh random data: fragmend's
// fragments equal PyECLib's byte for byte, PyECLib decodes and rebuilds from fragmend's
// fragments, and both rebuild the same bytes for random erasure patterns.
import { randomBytes, randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver, EC_TYPES, type ECType } from '../../src/codec/index.js';
import { sha } from '../helpers/digest.js';
import { b64, PyECLibOracle, pyeclibEnabled, unb64 } from '../helpers/pyeclib.js';

const SHAPES: Array<[number, number]> = [
  [2, 1],
  [4, 2],
  [6, 3],
  [8, 4],
  [10, 4],
  [12, 4],
];
const MiB = 1 << 20;

/** Sizes from 1 byte up: tiny, odd, around a segment, and several MiB for the common shapes. */
function lengthsFor(k: number, m: number): number[] {
  const big = (k === 10 && m === 4) || (k === 4 && m === 2);
  return [1, randomInt(2, 200), randomInt(200, 70_000), big ? randomInt(2 * MiB, 5 * MiB) : randomInt(70_000, 400_000)];
}

function randomLoss(n: number, m: number): number[] {
  const count = randomInt(1, m + 1);
  const lost = new Set<number>();
  while (lost.size < count) lost.add(randomInt(0, n));
  return [...lost].sort((a, b) => a - b);
}

function shuffled<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomInt(0, i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe.runIf(pyeclibEnabled())('live cross-check with PyECLib', () => {
  let py: PyECLibOracle;
  beforeAll(() => {
    py = new PyECLibOracle();
  });
  afterAll(async () => {
    await py.close();
  });

  const cases = EC_TYPES.flatMap((ecType) => SHAPES.map(([k, m]) => [ecType, k, m] as [ECType, number, number]));
  it.each(cases)('%s %i+%i', async (ecType, k, m) => {
    const ec = await ECDriver.create({ ecType, k, m });
    const base = { ec_type: ecType, k, m };
    for (const length of lengthsFor(k, m)) {
      const data = new Uint8Array(randomBytes(length));
      const ours = ec.encode(data);
      const theirs = (await py.call<string[]>({ ...base, op: 'encode', data: b64(data) })).map(unb64);
      const where = `${ecType} ${k}+${m}, ${length} bytes`;
      expect(ours.map(sha), `encode, ${where}`).toEqual(theirs.map(sha));

      for (let round = 0; round < 2; round++) {
        const lost = randomLoss(k + m, m);
        const survivors = shuffled(ours.filter((_, i) => !lost.includes(i)));
        const ctx = `${where}, lost [${lost.join(',')}]`;
        expect(sha(ec.decode(survivors)), `our decode, ${ctx}`).toBe(sha(data));
        const pyDecoded = unb64(await py.call<string>({ ...base, op: 'decode', fragments: survivors.map(b64) }));
        expect(sha(pyDecoded), `PyECLib decodes our fragments, ${ctx}`).toBe(sha(data));
        const ourRebuilt = ec.reconstruct(survivors, lost);
        const pyRebuilt = (await py.call<string[]>({ ...base, op: 'reconstruct', fragments: survivors.map(b64), missing: lost })).map(unb64);
        expect(ourRebuilt.map(sha), `reconstruct, ${ctx}`).toEqual(pyRebuilt.map(sha));
        expect(ourRebuilt.map(sha), `rebuilt = original, ${ctx}`).toEqual(lost.map((i) => sha(ours[i]!)));
      }
    }
  });

  it('PyECLib reads our inline_crc32 fragments and reports no checksum mismatch', async () => {
    for (const ecType of EC_TYPES) {
      const ec = await ECDriver.create({ ecType, k: 6, m: 3, chksumType: 'inline_crc32' });
      const data = new Uint8Array(randomBytes(randomInt(1, 300_000)));
      const frags = ec.encode(data);
      const base = { ec_type: ecType, k: 6, m: 3, chksum_type: 'inline_crc32' };
      const theirs = (await py.call<string[]>({ ...base, op: 'encode', data: b64(data) })).map(unb64);
      expect(frags.map(sha)).toEqual(theirs.map(sha));
      const md = await py.call<Record<string, unknown>>({ ...base, op: 'metadata', fragment: b64(frags[7]!) });
      expect(md).toMatchObject({ index: 7, chksum_mismatch: 0, chksum_type: 'crc32', orig_data_size: data.length });
    }
  });

  it('get_segment_info agrees for random sizes', async () => {
    for (const ecType of EC_TYPES) {
      for (const [k, m] of SHAPES) {
        const ec = await ECDriver.create({ ecType, k, m });
        for (let i = 0; i < 5; i++) {
          const segment = randomInt(1, 2 * MiB);
          const dataLen = randomInt(0, 20 * MiB);
          const info = ec.getSegmentInfo(dataLen, segment);
          const theirs = await py.call<Record<string, number>>({ ec_type: ecType, k, m, op: 'segment_info', data_len: dataLen, segment_size: segment });
          expect({
            segment_size: info.segmentSize,
            last_segment_size: info.lastSegmentSize,
            fragment_size: info.fragmentSize,
            last_fragment_size: info.lastFragmentSize,
            num_segments: info.numSegments,
          }).toEqual(theirs);
        }
      }
    }
  });
});
