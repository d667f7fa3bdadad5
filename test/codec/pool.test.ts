// CodecPool gives what ECDriver gives on the calling thread, whatever the batching, and
// brings worker errors back as the same typed errors. The workers run worker.ts compiled to
// JavaScript on the spot (a worker thread cannot load TypeScript).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecPool, ECDriver, ECInsufficientFragments, ECInvalidParameter, type WorkerFactory } from '../../src/codec/index.js';
import { sha } from '../helpers/digest.js';
import { prngBytes } from '../helpers/prng.js';

const root = new URL('../../', import.meta.url);
// Under node_modules so that the compiled files resolve the package's dependencies.
const outDir = new URL('node_modules/.cache/fragmend-test-codec/', root);

function compileCodec(): URL {
  mkdirSync(outDir, { recursive: true });
  const src = new URL('src/codec/', root);
  for (const f of readdirSync(src).filter((n) => n.endsWith('.ts'))) {
    const js = ts.transpileModule(readFileSync(new URL(f, src), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    writeFileSync(new URL(f.replace(/\.ts$/, '.js'), outDir), js);
  }
  writeFileSync(new URL('package.json', outDir), '{"type":"module"}\n');
  return new URL('worker.js', outDir);
}

let spawn: WorkerFactory;
const pools: CodecPool[] = [];
beforeAll(() => {
  const url = compileCodec();
  spawn = () => {
    const w = new Worker(url);
    return {
      postMessage: (m, t) => w.postMessage(m, t as never),
      onMessage: (h) => w.on('message', h),
      onError: (h) => w.on('error', h),
      terminate: () => w.terminate(),
    };
  };
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

async function pool(opts: Parameters<typeof CodecPool.create>[0]): Promise<CodecPool> {
  const p = await CodecPool.create({ spawn, ...opts });
  pools.push(p);
  return p;
}

describe.each(['liberasurecode_rs_vand', 'isa_l_rs_cauchy'] as const)('%s', (ecType) => {
  it('pool = ECDriver on this thread, for encode, decode and reconstruct', async () => {
    const k = 6;
    const m = 3;
    const ec = await ECDriver.create({ ecType, k, m });
    // Small batches, so that the segments spread over both workers in several messages.
    const p = await pool({ ecType, k, m, workers: 2, batchBytes: 20_000 });
    expect(p.size).toBe(2);
    for (const [len, segment] of [
      [0, 1000],
      [999, 1000],
      [1000, 1000],
      [123_457, 8192],
      [40_000, 65536],
    ] as const) {
      const data = prngBytes(len + 1, len);
      const want: Uint8Array[][] = [];
      for (let at = 0; at < len; at += segment) want.push(ec.encode(data.subarray(at, Math.min(at + segment, len))));
      const got = await p.encode(data, segment);
      expect(got.map((fs) => fs.map(sha))).toEqual(want.map((fs) => fs.map(sha)));
      const decoded = await p.decodeSegments(want.map((fs) => fs.slice(m).reverse()));
      expect(decoded.map(sha)).toEqual(want.map((fs) => sha(ec.decode(fs))));
      const rebuilt = await p.reconstructSegments(
        want.map((fs) => fs.filter((_, i) => i !== 1 && i !== k)),
        [k, 1],
      );
      expect(rebuilt.map((fs) => fs.map(sha))).toEqual(want.map((fs) => [sha(fs[1]!), sha(fs[k]!)]));
      // The *Each forms: in order, buffers reused between batches (so each view is read at once).
      const seen: string[][] = [];
      await p.encodeEach(data, segment, (frags, i) => {
        expect(i).toBe(seen.length);
        seen.push(frags.map(sha));
      });
      expect(seen).toEqual(want.map((fs) => fs.map(sha)));
      const segs: string[] = [];
      await p.decodeEach(want.map((fs) => fs.slice(m)), async (seg, i) => {
        await new Promise((r) => setTimeout(r, i % 3));
        segs.push(sha(seg));
      });
      expect(segs).toEqual(want.map((fs) => sha(ec.decode(fs))));
    }
  });
});

describe('pool errors and lifetime', () => {
  it('a worker error comes back typed, and the pool goes on', async () => {
    const p = await pool({ ecType: 'isa_l_rs_vand', k: 4, m: 2, workers: 1 });
    const ec = await ECDriver.create({ ecType: 'isa_l_rs_vand', k: 4, m: 2 });
    const frags = ec.encode(prngBytes(3, 5000));
    await expect(p.decodeSegments([frags.slice(0, 3)])).rejects.toBeInstanceOf(ECInsufficientFragments);
    expect(sha((await p.decodeSegments([frags.slice(2)]))[0]!)).toBe(sha(prngBytes(3, 5000)));
    await expect(p.decodeSegments([[frags[0]!, frags[1]!.subarray(1)]])).rejects.toBeInstanceOf(ECInvalidParameter);
    // A failing consumer stops the call; the pool still works after.
    const many = prngBytes(4, 300_000);
    await expect(
      p.encodeEach(many, 1000, (_, i) => {
        if (i === 7) throw new Error('consumer gave up');
      }),
    ).rejects.toThrow(/consumer gave up/);
    await expect(p.decodeEach([frags.slice(0, 2), frags.slice(2)], () => undefined)).rejects.toBeInstanceOf(ECInsufficientFragments);
    const again = await p.encode(many, 100_000);
    expect(again.length).toBe(3);
    expect(sha(again[1]![0]!)).toBe(sha(ec.encode(many.subarray(100_000, 200_000))[0]!));
  });

  it('bad options fail at create; close rejects what is queued and later calls', async () => {
    await expect(CodecPool.create({ spawn, ecType: 'nope', k: 4, m: 2, workers: 1 })).rejects.toThrow(/not a supported ec_type/);
    const p = await CodecPool.create({ spawn, ecType: 'liberasurecode_rs_vand', k: 4, m: 2, workers: 1 });
    const pending = expect(p.encode(prngBytes(1, 1 << 20), 4096)).rejects.toThrow(/closed/);
    await p.close();
    await pending;
    await expect(p.encode(new Uint8Array(10), 4)).rejects.toThrow(/closed/);
  });
});
