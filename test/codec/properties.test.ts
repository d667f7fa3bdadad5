// Properties over every backend and a spread of shapes: whatever up to m fragments are lost,
// reconstruct gives back the lost fragments and decode the data; SIMD and scalar kernels
// give identical bytes.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ECDriver, EC_TYPES, ReedSolomon, type ECType } from '../../src/codec/index.js';
import { sha } from '../helpers/digest.js';

const SHAPES: Array<[number, number]> = [
  [1, 1],
  [2, 1],
  [3, 2],
  [4, 2],
  [5, 3],
  [6, 3],
  [8, 4],
  [10, 4],
  [12, 4],
  [14, 6],
  [20, 12],
];

// isa_l_rs_vand is only MDS up to 4 parity fragments; wider shapes are for the others.
const shapesFor = (t: ECType) => SHAPES.filter(([, m]) => t !== 'isa_l_rs_vand' || m <= 4);

const drivers = new Map<string, { simd: ECDriver; scalar: ECDriver }>();
beforeAll(async () => {
  for (const t of EC_TYPES) {
    for (const [k, m] of shapesFor(t)) {
      drivers.set(`${t}/${k}/${m}`, {
        simd: await ECDriver.create({ ecType: t, k, m, kernels: 'simd' }),
        scalar: await ECDriver.create({ ecType: t, k, m, kernels: 'scalar' }),
      });
    }
  }
});

const lossOf = (n: number, m: number) =>
  fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { minLength: 1, maxLength: m }).map((a) => a.sort((x, y) => x - y));

describe.each(EC_TYPES)('%s', (ecType) => {
  it.each(shapesFor(ecType))('%i+%i: lose any <= m, get everything back; SIMD = scalar', (k, m) => {
    const { simd, scalar } = drivers.get(`${ecType}/${k}/${m}`)!;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), lossOf(k + m, m), (data, lost) => {
        const frags = simd.encode(data);
        expect(scalar.encode(data).map(sha)).toEqual(frags.map(sha));
        const survivors = frags.filter((_, i) => !lost.includes(i));
        expect(simd.decode(survivors)).toEqual(data);
        expect(scalar.decode(survivors)).toEqual(data);
        const rebuilt = simd.reconstruct(survivors, lost);
        expect(rebuilt.map(sha)).toEqual(lost.map((i) => sha(frags[i]!)));
        expect(scalar.reconstruct(survivors, lost).map(sha)).toEqual(rebuilt.map(sha));
      }),
      { numRuns: 40 },
    );
  });
});

describe('ReedSolomon on raw shards', () => {
  it.each(EC_TYPES)('%s: any <= m lost shards come back; SIMD = scalar', async (matrix) => {
    const k = 5;
    const m = 3;
    const allowNonMds = true;
    const simd = await ReedSolomon.create({ k, m, matrix, kernels: 'simd', allowNonMds });
    const scalar = await ReedSolomon.create({ k, m, matrix, kernels: 'scalar', allowNonMds });
    const even = simd.w === 16 ? 2 : 1;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 700 }), fc.integer(), lossOf(k + m, m), (half, seed, lost) => {
        const len = half * even;
        const rng = fc.sample(fc.uint8Array({ minLength: len * k, maxLength: len * k }), { seed, numRuns: 1 })[0]!;
        const data = Array.from({ length: k }, (_, i) => rng.subarray(i * len, (i + 1) * len));
        const parity = simd.encode(data);
        expect(scalar.encode(data).map(sha)).toEqual(parity.map(sha));
        const all = [...data, ...parity];
        expect(simd.verify(all)).toBe(true);
        const holed = all.map((s, i) => (lost.includes(i) ? null : s));
        const back = simd.reconstruct(holed);
        expect(back.map((s) => sha(s!))).toEqual(all.map(sha));
        expect(scalar.reconstruct(holed).map((s) => sha(s!))).toEqual(all.map(sha));
      }),
      { numRuns: 30 },
    );
  });
});
