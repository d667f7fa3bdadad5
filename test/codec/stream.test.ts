// Streaming encode and rebuild give exactly what ECDriver gives segment by segment (whole
// segments, then the remainder, as Swift's proxy cuts an object), whatever the chunking.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ECBadHeader,
  ECDriver,
  ECInsufficientFragments,
  encodeArchives,
  encodeSegments,
  rebuildArchive,
  rebuildArchiveStream,
  type ByteSource,
} from '../../src/codec/index.js';
import { sha } from '../helpers/digest.js';
import { prngBytes } from '../helpers/prng.js';

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** What the archives must be: ECDriver.encode of each segment, fragment i appended to archive i. */
function expected(ec: ECDriver, data: Uint8Array, segmentSize: number): Uint8Array[] {
  const n = ec.k + ec.m;
  const parts: Uint8Array[][] = Array.from({ length: n }, () => []);
  for (let at = 0; at < data.length; at += segmentSize) {
    ec.encode(data.subarray(at, Math.min(at + segmentSize, data.length))).forEach((f, i) => parts[i]!.push(f));
  }
  return parts.map(concat);
}

/** data cut at the given points, as an async iterable. */
async function* chunked(data: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const c of [...cuts.filter((x) => x < data.length)].sort((a, b) => a - b)) {
    yield data.subarray(at, c);
    at = c;
  }
  yield data.subarray(at);
}

async function drain(s: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of s as AsyncIterable<Uint8Array>) parts.push(c);
  return concat(parts);
}

const toStream = (bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> => {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
};

describe.each(['liberasurecode_rs_vand', 'isa_l_rs_vand'] as const)('%s', (ecType) => {
  it('encodeArchives = ECDriver.encode per segment, for any length and chunking', async () => {
    const ec = await ECDriver.create({ ecType, k: 4, m: 2 });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 9000 }),
        fc.integer({ min: 8, max: 3000 }),
        fc.array(fc.integer({ min: 0, max: 9000 }), { maxLength: 8 }),
        fc.integer(),
        async (len, segmentSize, cuts, seed) => {
          const data = prngBytes(seed >>> 0, len);
          const want = expected(ec, data, segmentSize);
          const archives = encodeArchives(ec, chunked(data, cuts), { segmentSize, highWaterMark: 1 });
          const got = await Promise.all(archives.map(drain));
          expect(got.map(sha)).toEqual(want.map(sha));
          const segs: Uint8Array[][] = [];
          for await (const s of encodeSegments(ec, [data], { segmentSize })) segs.push(s);
          expect(segs.length).toBe(Math.ceil(len / segmentSize));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rebuildArchive from any k archives, in any order and chunking, = the lost archive', async () => {
    const ec = await ECDriver.create({ ecType, k: 4, m: 2 });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9000 }),
        fc.integer({ min: 8, max: 3000 }),
        fc.integer({ min: 0, max: 5 }),
        fc.shuffledSubarray([0, 1, 2, 3, 4, 5], { minLength: 4, maxLength: 5 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer(),
        async (len, segmentSize, lost, order, chunk, seed) => {
          const data = prngBytes(seed >>> 0, len);
          const archives = expected(ec, data, segmentSize);
          const sources = order.filter((i) => i !== lost).map((i) => toStream(archives[i]!, chunk));
          if (sources.length < 4) return;
          const got = await drain(rebuildArchive(ec, sources, lost, { segmentSize: 16 }));
          expect(sha(got)).toBe(sha(archives[lost]!));
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('streams: memory bounds and failures', () => {
  it('an unread archive holds encoding back: the source is read only highWaterMark segments ahead', async () => {
    const ec = await ECDriver.create({ ecType: 'liberasurecode_rs_vand', k: 4, m: 2 });
    let pulled = 0;
    const source: ByteSource = (function* () {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield prngBytes(i + 1, 1000);
      }
    })();
    const archives = encodeArchives(ec, source, { segmentSize: 1000, highWaterMark: 2 });
    // Archives 0..4 are read as far as they can be; archive 5 is not read at all.
    const readers = archives.slice(0, 5).map((s) => s.getReader());
    for (let round = 0; round < 2; round++) await Promise.all(readers.map((r) => r.read()));
    await new Promise((r) => setTimeout(r, 20));
    expect(pulled).toBeLessThanOrEqual(3);
    // Cancelling the stalled archive lets the rest finish.
    await archives[5]!.cancel();
    const rest = await Promise.all(
      readers.map(async (r) => {
        let n = 0;
        for (;;) {
          const x = await r.read();
          if (x.done) return n;
          n++;
        }
      }),
    );
    expect(rest.every((n) => n === 98)).toBe(true);
    expect(pulled).toBe(100);
  });

  it('a source error errors every archive', async () => {
    const ec = await ECDriver.create({ ecType: 'liberasurecode_rs_vand', k: 4, m: 2 });
    const source = (async function* () {
      yield new Uint8Array(3000);
      throw new Error('disk on fire');
    })();
    const archives = encodeArchives(ec, source, { segmentSize: 1000 });
    await Promise.all(archives.map((a) => expect(drain(a)).rejects.toThrow(/disk on fire/)));
  });

  it('rebuild drops a failing source while k remain, and fails with fewer', async () => {
    const ec = await ECDriver.create({ ecType: 'isa_l_rs_vand', k: 4, m: 2 });
    const data = prngBytes(9, 7000);
    const archives = expected(ec, data, 1000);
    const failing = (bytes: Uint8Array, after: number): ByteSource =>
      (async function* () {
        yield bytes.subarray(0, after);
        throw new Error('connection reset');
      })();
    const dropped: number[] = [];
    const five = [failing(archives[0]!, 1000), ...[1, 2, 3, 4].map((i) => toStream(archives[i]!, 333))];
    const got = await drain(rebuildArchive(ec, five, 5, { onSourceDropped: (j) => dropped.push(j) }));
    expect(sha(got)).toBe(sha(archives[5]!));
    expect(dropped).toEqual([0]);
    const four = [failing(archives[0]!, 1000), ...[1, 2, 3].map((i) => toStream(archives[i]!, 333))];
    await expect(drain(rebuildArchiveStream(ec, four, 5))).rejects.toBeInstanceOf(ECInsufficientFragments);
    await expect(drain(rebuildArchive(ec, [1, 2, 3].map((i) => toStream(archives[i]!, 100)), 0))).rejects.toBeInstanceOf(
      ECInsufficientFragments,
    );
    const garbage = [new Uint8Array(200).fill(7), ...[1, 2, 3].map((i) => archives[i]!)].map((b) => [b]);
    await expect(drain(rebuildArchive(ec, garbage, 0))).rejects.toBeInstanceOf(ECInsufficientFragments);
    await expect(rebuildArchive(ec, [], 9).next()).rejects.toThrow(/out of range/);
    // An archive cut inside a fragment is not a clean end.
    const cut = [archives[0]!.subarray(0, 1000), ...[1, 2, 3].map((i) => archives[i]!)].map((b) => [b]);
    const onlyFour = rebuildArchive(ec, cut, 5, { onSourceDropped: (_, e) => expect(e).toBeInstanceOf(ECBadHeader) });
    await expect(drain(onlyFour)).rejects.toBeInstanceOf(ECInsufficientFragments);
  });
});
