// The zero-copy paths (FragmentSet, ShardSet, the *Into methods, arguments that are already
// views of wasm memory) give exactly the bytes of the copying API, which the golden vectors
// pin to PyECLib; and they stay right when the wasm memory grows under them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuntime, ECDriver, EC_TYPES, ReedSolomon, type ECType } from '../../src/codec/index.js';
import { sha } from '../helpers/digest.js';
import { prngBytes } from '../helpers/prng.js';

const SHAPES: Array<[number, number]> = [
  [4, 2],
  [10, 4],
  [6, 3],
];
const shapesFor = (t: ECType) => SHAPES.filter(([, m]) => t !== 'isa_l_rs_vand' || m <= 4);
const lossOf = (n: number, m: number) =>
  fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { minLength: 1, maxLength: m }).map((a) => a.sort((x, y) => x - y));

describe.each(EC_TYPES)('%s: ECDriver in place = copying', (ecType) => {
  it.each(shapesFor(ecType))('%i+%i', async (k, m) => {
    const ec = await ECDriver.create({ ecType, k, m });
    const cap = 5000;
    const set = ec.createFragmentSet(cap);
    const held = ec.createFragmentSet(cap);
    const out = ec.createFragmentSet(cap);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: cap }), fc.integer(), lossOf(k + m, m), fc.boolean(), (len, seed, lost, resident) => {
        const data = prngBytes(seed >>> 0, len);
        const want = ec.encode(data);
        // The segment from JS memory, or already in the set's segment region.
        let input = data;
        if (resident) {
          set.segment.set(data);
          input = set.segment.subarray(0, len);
        }
        expect(ec.encodeInto(input, set).map(sha)).toEqual(want.map(sha));
        ec.encodeInto(data, held);
        // Views of wasm memory are asked for again after other calls: any call may grow the
        // memory (a new erasure pattern's tables, say), which detaches earlier views.
        const fragsHeld = () => held.fragments();
        const survivors = (frags: Uint8Array[]) => frags.filter((_, i) => !lost.includes(i));
        // decodeInto: resident fragments or JS ones, into the set's segment or a JS array.
        const js = new Uint8Array(len + 7);
        expect(ec.decodeInto(survivors(want), js)).toBe(len);
        expect(js.subarray(0, len)).toEqual(data);
        expect(ec.decodeInto(survivors(fragsHeld()), out.segment)).toBe(len);
        expect(out.segment.subarray(0, len)).toEqual(data);
        expect(ec.decode(survivors(held.fragments()))).toEqual(data);
        // reconstructInto: views of the rebuilt fragments, the given ones copied alongside.
        const ask = [...lost, lost[0]!];
        const rebuilt = ec.reconstruct(survivors(want), ask);
        expect(ec.reconstructInto(survivors(held.fragments()), ask, out).map(sha)).toEqual(rebuilt.map(sha));
        expect(ec.reconstructInto(survivors(want), lost, out).map(sha)).toEqual(lost.map((i) => sha(want[i]!)));
        expect(out.fragment(lost[0]!)).toEqual(want[lost[0]!]);
      }),
      { numRuns: 25 },
    );
    for (const s of [set, held, out]) s.dispose();
  });
});

describe('ECDriver in place: limits and memory growth', () => {
  it('refuses a segment larger than the set, and another driver’s set', async () => {
    const ec = await ECDriver.create({ ecType: 'liberasurecode_rs_vand', k: 4, m: 2 });
    const other = await ECDriver.create({ ecType: 'liberasurecode_rs_vand', k: 6, m: 2 });
    const set = ec.createFragmentSet(100);
    expect(() => ec.encodeInto(new Uint8Array(101), set)).toThrow(/does not fit/);
    expect(() => other.encodeInto(new Uint8Array(10), set)).toThrow(/not made by a driver of this shape/);
    expect(() => ec.decodeInto(ec.encode(new Uint8Array(50)), new Uint8Array(49))).toThrow(/holds only 49/);
    set.dispose();
    expect(() => set.segment).toThrow(/disposed/);
  });

  it('arguments that are views of wasm memory survive the memory growing during the call', async () => {
    const rt = await createRuntime('simd');
    // Takes every free byte of the heap, so that the next allocation must grow the memory.
    const exhaust = () => {
      const free = (rt.heap as unknown as { free: Array<[number, number]> }).free;
      for (const [, size] of [...free]) rt.heap.alloc(size);
    };
    const big = await ECDriver.create({ ecType: 'isa_l_rs_vand', k: 10, m: 4, runtime: rt });
    const size = 1 << 20;
    const bigSet = big.createFragmentSet(size);
    const data = prngBytes(5, size);
    bigSet.segment.set(data);
    const held = big.encodeInto(bigSet.segment.subarray(0, size), bigSet);
    const want = held.map(sha);
    const grows = async <T>(fn: (ec: ECDriver) => T): Promise<T> => {
      const ec = await ECDriver.create({ ecType: 'isa_l_rs_vand', k: 10, m: 4, runtime: rt });
      exhaust();
      const before = rt.heap.byteLength;
      const out = fn(ec);
      expect(rt.heap.byteLength).toBeGreaterThan(before);
      return out;
    };
    expect((await grows((ec) => ec.encode(bigSet.segment.subarray(0, size)))).map(sha)).toEqual(want);
    expect(sha(await grows((ec) => ec.decode(bigSet.fragments().slice(3))))).toBe(sha(data));
    expect((await grows((ec) => ec.reconstruct(bigSet.fragments().slice(1), [0, 1]))).map(sha)).toEqual(want.slice(0, 2));
  });
});

describe.each(EC_TYPES)('%s: ReedSolomon in place = copying', (matrix) => {
  it('ShardSet, mixed resident and JS shards, reconstructInto', async () => {
    const k = 5;
    const m = 3;
    const rs = await ReedSolomon.create({ k, m, matrix, allowNonMds: true });
    const even = rs.w === 16 ? 2 : 1;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 600 }), fc.integer(), lossOf(k + m, m), (half, seed, lost) => {
        const len = half * even;
        const data = Array.from({ length: k }, (_, i) => prngBytes((seed >>> 0) + i, len));
        const parity = rs.encode(data);
        const all = [...data, ...parity];
        const set = rs.createShardSet(len);
        try {
          set.data.forEach((s, i) => s.set(data[i]!));
          rs.encodeInto(set.data, set.parity);
          expect(set.parity.map(sha)).toEqual(parity.map(sha));
          // Some inputs resident, some not; outputs in JS memory.
          const mixed = data.map((d, i) => (i % 2 ? set.shard(i) : d));
          const outs = Array.from({ length: m }, () => new Uint8Array(len));
          rs.encodeInto(mixed, outs);
          expect(outs.map(sha)).toEqual(parity.map(sha));
          // Rebuild the lost shards in place, after scribbling over them.
          for (const i of lost) set.shard(i).fill(0xa5);
          rs.reconstructInto(set.shards, lost);
          expect(set.shards.map(sha)).toEqual(all.map(sha));
          const copy = all.map((s) => s.slice());
          for (const i of lost) copy[i]!.fill(0);
          rs.reconstructInto(copy, lost);
          expect(copy.map(sha)).toEqual(all.map(sha));
        } finally {
          set.dispose();
        }
      }),
      { numRuns: 25 },
    );
  });
});
