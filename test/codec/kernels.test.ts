// The wasm layer on its own: region kernels of the relaxed-SIMD, SIMD and scalar builds
// against each other and a reference built from single multiplications; generator matrices;
// CRC-32 against zlib.
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import * as zlib from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { kernelGroups } from '../../src/codec/coder.js';
import { crc32Short } from '../../src/codec/crc.js';
import { createRuntime, relaxedSimdSupported, setValidator, type WasmRuntime } from '../../src/codec/index.js';

// Node 20 validates relaxed SIMD only behind this flag; V8 reads it when it validates, so
// setting it here lets the relaxed build run in this process (Node 22 needs no flag).
setFlagsFromString('--experimental-wasm-relaxed-simd');
setValidator(null);

let relaxed: WasmRuntime | undefined;
let simd: WasmRuntime;
let scalar: WasmRuntime;
beforeAll(async () => {
  simd = await createRuntime('simd');
  scalar = await createRuntime('scalar');
  if (relaxedSimdSupported()) relaxed = await createRuntime('relaxed');
});

/**
 * Runs dot8 or dot16 on one runtime: out[r] = sum_j coef[r][j] * src[j]. With xor, row 0
 * must be all ones and runs as the kernel's XOR row.
 */
function runDot(rt: WasmRuntime, w: 8 | 16, coefs: number[][], srcs: Uint8Array[], len: number, misalign: number, xor: 0 | 1 = 0): Uint8Array[] {
  const k = srcs.length;
  const rows = coefs.length;
  const heap = rt.heap;
  const tbl = heap.alloc(Math.max(1, rows * k * (w === 16 ? 128 : 32)));
  const coefPtr = heap.alloc(rows * k * 4);
  const ptrs = heap.alloc(4 * (k + rows));
  const region = len + 64;
  const buf = heap.alloc((k + rows) * region);
  try {
    // Tables in kernel order: group by group, input-major inside a group.
    const ordered: number[] = [];
    let r0 = xor;
    for (const g of kernelGroups(rt, w, rows, xor)) {
      for (let j = 0; j < k; j++) for (let r = r0; r < r0 + g; r++) ordered.push(coefs[r]![j]!);
      r0 += g;
    }
    rt.writeU32(coefPtr, ordered);
    rt.exports.buildTables(w, ordered.length, coefPtr, tbl);
    const at = (i: number) => buf + i * region + misalign;
    srcs.forEach((s, j) => heap.u8.set(s, at(j)));
    rt.writeU32(ptrs, [...srcs.map((_, j) => at(j)), ...coefs.map((_, r) => at(k + r))]);
    (w === 16 ? rt.exports.dot16 : rt.exports.dot8)(len, k, rows, xor, tbl, ptrs, ptrs + 4 * k);
    return coefs.map((_, r) => heap.u8.slice(at(k + r), at(k + r) + len));
  } finally {
    [tbl, coefPtr, ptrs, buf].forEach((p) => heap.release(p));
  }
}

describe('relaxed SIMD', () => {
  it('is chosen by auto exactly where the runtime validates it', async () => {
    const { resolveKernel, wasmBytesOf } = await import('../../src/codec/wasm.js');
    try {
      setValidator(() => false);
      expect(resolveKernel('auto')).toBe('scalar');
      // A runtime with SIMD128 but not relaxed SIMD, as Node 20 is without its flag.
      setValidator((bytes) => bytes !== wasmBytesOf('relaxed'));
      expect(resolveKernel('auto')).toBe('simd');
      expect(() => resolveKernel('relaxed')).toThrow(/relaxed SIMD/);
      setValidator(() => true);
      expect(resolveKernel('auto')).toBe('relaxed');
    } finally {
      setValidator(null);
    }
  });

  it('enableRelaxedSimd turns it on where the runtime can (Node 20: the V8 flag)', async () => {
    const { enableRelaxedSimd } = await import('../../src/codec/wasm.js');
    expect(enableRelaxedSimd()).toBe(relaxedSimdSupported());
  });

  it.runIf(relaxedSimdSupported())('runs here (the flag took effect)', () => {
    expect(relaxed?.kind).toBe('relaxed');
    expect(relaxed?.exports.kernelKind()).toBe(2);
  });
});


function reference(rt: WasmRuntime, w: 8 | 16, coefs: number[][], srcs: Uint8Array[], len: number): Uint8Array[] {
  return coefs.map((row) => {
    const out = new Uint8Array(len);
    const step = w / 8;
    for (let i = 0; i < len; i += step) {
      let acc = 0;
      row.forEach((c, j) => {
        const x = w === 16 ? srcs[j]![i]! | (srcs[j]![i + 1]! << 8) : srcs[j]![i]!;
        acc ^= rt.exports.mul(w, c, x);
      });
      out[i] = acc & 0xff;
      if (w === 16) out[i + 1] = acc >> 8;
    }
    return out;
  });
}

describe.each([8, 16] as const)('GF(2^%i) region kernels', (w) => {
  it('SIMD = scalar = reference, for any shape, length and alignment', () => {
    const maxCoef = w === 16 ? 0xffff : 0xff;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 15 }),
        fc.integer(),
        fc.boolean(),
        (k, rows, units, misalign, seed, withXor) => {
          const len = units * (w / 8);
          const [coefFlat, bytes] = fc.sample(
            fc.tuple(
              fc.array(fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: maxCoef })), { minLength: rows * k, maxLength: rows * k }),
              fc.uint8Array({ minLength: k * len, maxLength: k * len }),
            ),
            { seed, numRuns: 1 },
          )[0]!;
          const coefs = Array.from({ length: rows }, (_, r) => coefFlat.slice(r * k, (r + 1) * k));
          const xor = withXor ? 1 : 0;
          if (xor) coefs[0] = new Array(k).fill(1);
          const srcs = Array.from({ length: k }, (_, j) => bytes.subarray(j * len, (j + 1) * len));
          const want = reference(scalar, w, coefs, srcs, len);
          expect(runDot(simd, w, coefs, srcs, len, misalign, xor)).toEqual(want);
          expect(runDot(scalar, w, coefs, srcs, len, misalign, xor)).toEqual(want);
          if (relaxed) expect(runDot(relaxed, w, coefs, srcs, len, misalign, xor)).toEqual(want);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('multiplication is a field: a * inv(a) = 1 and it distributes over xor', () => {
    const max = w === 16 ? 0xffff : 0xff;
    fc.assert(
      fc.property(fc.integer({ min: 1, max }), fc.integer({ min: 0, max }), fc.integer({ min: 0, max }), (a, b, c) => {
        const { mul, inv } = simd.exports;
        expect(mul(w, a, inv(w, a))).toBe(1);
        expect(mul(w, a, b ^ c)).toBe(mul(w, a, b) ^ mul(w, a, c));
        expect(mul(w, a, b)).toBe(mul(w, b, a));
      }),
    );
  });
});

describe('generator matrices', () => {
  const kinds = [0, 1, 2, 3];
  it.each(kinds)('kind %i is systematic (identity on top) for k in 1..16', (kind) => {
    for (let k = 1; k <= 16; k++) {
      const m = 4;
      const n = k + m;
      const p = simd.heap.alloc(4 * n * k);
      try {
        expect(simd.exports.generatorMatrix(kind, k, m, p)).toBe(0);
        const g = simd.readU32(p, n * k);
        for (let r = 0; r < k; r++) for (let c = 0; c < k; c++) expect(g[r * k + c]).toBe(r === c ? 1 : 0);
        // The rs_vand and jerasure constructions make the first parity row all ones.
        if (kind === 0 || kind === 1) expect([...g.subarray(k * k, k * k + k)]).toEqual(new Array(k).fill(1));
      } finally {
        simd.heap.release(p);
      }
    }
  });
});

describe('CRC-32', () => {
  const zcrc = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
  it.runIf(!!zcrc)('equals zlib for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        expect(simd.crc32Of(bytes)).toBe(zcrc!(bytes) >>> 0);
        expect(scalar.crc32Of(bytes)).toBe(zcrc!(bytes) >>> 0);
      }),
    );
  });

  it('legacy CRC: liberasurecode_crc32_alt semantics (signed shift)', () => {
    // Reference model of liberasurecode_crc32_alt, written from its description.
    const table = new Uint32Array(256).map((_, n) => {
      let c = n;
      for (let b = 0; b < 8; b++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      return c;
    });
    const alt = (bytes: Uint8Array) => {
      let c = 0xffffffff | 0;
      for (const b of bytes) {
        const shifted = (c >>> 8) & 0x00ffffff;
        c = (table[(c ^ b) & 0xff]! ^ ((shifted ^ 0x00800000) - 0x00800000)) | 0;
      }
      return ~c >>> 0;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (bytes) => {
        expect(simd.crc32Of(bytes, true)).toBe(alt(bytes));
        expect(crc32Short(bytes, true)).toBe(alt(bytes));
        expect(crc32Short(bytes, false)).toBe(simd.crc32Of(bytes));
      }),
    );
    expect(simd.crc32Of(new Uint8Array(0), true)).toBe(0);
  });
});
