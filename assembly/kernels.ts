// Region kernels: every output row of a coefficient matrix computed in one pass over the
// input regions. The same source gives the SIMD128 build (split-nibble lookups with
// i8x16.swizzle, as ISA-L does with pshufb), the relaxed-SIMD build (i8x16.relaxed_swizzle,
// which V8 lowers to a bare pshufb instead of paddusb + pshufb) and the scalar build (the same
// tables, one byte or word at a time), chosen at compile time.
//
// Tables, per coefficient c:
//   w = 8:  32 bytes  lo[16] = c * i,  hi[16] = c * (i << 4)
//   w = 16: 128 bytes for nibble n = 0..3: L[16], H[16] = low and high byte of c * (i << 4n)
//
// Output rows are computed in groups that share one pass over the inputs (kernelGroupSize
// says how many rows a group holds). V8 gives wasm 15 xmm registers and schedules every load of
// a loop body ahead of the arithmetic, so a group is as large as its accumulators, nibble
// vectors and tables allow before they spill. Within a group the tables are input-major, (j, r) at group + (j * g + r) * size, so one
// pointer walks them with constant offsets. An all-ones row (the first parity row of
// liberasurecode_rs_vand, jerasure_rs_vand and isa_l_rs_vand, and many single-loss rebuild
// rows) has no tables: when `xor` is 1, output row 0 is the plain XOR of the inputs, computed
// beside a small group of table rows or in a pass of its own (see GX8), for two vector XORs per
// input instead of four lookups.
//
// srcs and dsts are arrays of u32 pointers.

import { gf8Mul } from './gf256';
import { gf16Mul } from './gf65536';

export const TABLE_BYTES_8: i32 = 32;
export const TABLE_BYTES_16: i32 = 128;

export function buildTables(w: i32, count: i32, coefs: usize, tbl: usize): void {
  for (let n = 0; n < count; n++) {
    const c = load<u32>(coefs + (<usize>n << 2));
    if (w == 16) {
      const t = tbl + (<usize>n << 7);
      for (let q = 0; q < 4; q++) {
        for (let i = 0; i < 16; i++) {
          const p = gf16Mul(c, <u32>i << (<u32>q << 2));
          store<u8>(t + (<usize>q << 5) + i, <u8>p);
          store<u8>(t + (<usize>q << 5) + 16 + i, <u8>(p >> 8));
        }
      }
    } else {
      const t = tbl + (<usize>n << 5);
      for (let i = 0; i < 16; i++) {
        store<u8>(t + i, <u8>gf8Mul(c, <u32>i));
        store<u8>(t + 16 + i, <u8>gf8Mul(c, <u32>i << 4));
      }
    }
  }
}

@inline function ptrAt(arr: usize, i: i32): usize {
  return <usize>load<u32>(arr + (<usize>i << 2));
}

@inline function swz(t: v128, i: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(t, i);
  return i8x16.swizzle(t, i);
}

// ---------------------------------------------------------------- plain XOR

// dst = src[0] ^ ... ^ src[k-1] over bytes [from, len).
@inline function xorScalar(from: i32, len: i32, k: i32, srcs: usize, d: usize): void {
  let i = from;
  for (; i + 8 <= len; i += 8) {
    let acc: u64 = 0;
    for (let j = 0; j < k; j++) acc ^= load<u64>(ptrAt(srcs, j) + <usize>i);
    store<u64>(d + <usize>i, acc);
  }
  for (; i < len; i++) {
    let acc: u32 = 0;
    for (let j = 0; j < k; j++) acc ^= <u32>load<u8>(ptrAt(srcs, j) + <usize>i);
    store<u8>(d + <usize>i, <u8>acc);
  }
}

// 64 bytes a step: four independent accumulators hide the load latency.
@inline function xorSimd(len: i32, k: i32, srcs: usize, d: usize): i32 {
  const end = len & ~63;
  for (let off = 0; off < end; off += 64) {
    let s = ptrAt(srcs, 0) + <usize>off;
    let a = v128.load(s), b = v128.load(s, 16), c = v128.load(s, 32), e = v128.load(s, 48);
    for (let j = 1; j < k; j++) {
      s = ptrAt(srcs, j) + <usize>off;
      a = v128.xor(a, v128.load(s));
      b = v128.xor(b, v128.load(s, 16));
      c = v128.xor(c, v128.load(s, 32));
      e = v128.xor(e, v128.load(s, 48));
    }
    v128.store(d + <usize>off, a);
    v128.store(d + <usize>off, b, 16);
    v128.store(d + <usize>off, c, 32);
    v128.store(d + <usize>off, e, 48);
  }
  return end;
}

export function xorRegions(len: i32, k: i32, srcs: usize, dst: usize): void {
  let done = 0;
  if (ASC_FEATURE_SIMD) done = xorSimd(len, k, srcs, dst);
  xorScalar(done, len, k, srcs, dst);
}

// ---------------------------------------------------------------- GF(2^8)

@inline function mul8(t: usize, x: u32): u32 {
  return <u32>load<u8>(t + (x & 15)) ^ <u32>load<u8>(t + 16 + (x >> 4));
}

// Bytes [from, len) of a group: x XOR rows (0 or 1) then g table rows, one byte at a time.
@inline function dot8Scalar(x: i32, g: i32, from: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  if (x) xorScalar(from, len, k, srcs, ptrAt(dsts, 0));
  const jstride = <usize>g << 5;
  for (let r = 0; r < g; r++) {
    const d = ptrAt(dsts, x + r);
    const tr = tbl + (<usize>r << 5);
    for (let i = from; i < len; i++) {
      let acc: u32 = 0;
      for (let j = 0; j < k; j++) {
        acc ^= mul8(tr + <usize>j * jstride, <u32>load<u8>(ptrAt(srcs, j) + <usize>i));
      }
      store<u8>(d + <usize>i, <u8>acc);
    }
  }
}

// acc ^= c * v for the vector whose nibbles are (lo, hi), with c's tables (tl, th) in registers.
@inline function mad8(acc: v128, tl: v128, th: v128, lo: v128, hi: v128): v128 {
  return v128.xor(acc, v128.xor(swz(tl, lo), swz(th, hi)));
}

// One group, 32 bytes a step. x and g are constants after inlining, so every `if` on them
// folds away and each variant keeps only the registers it uses.
@inline function dot8Simd(x: i32, g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): i32 {
  const dx = x ? ptrAt(dsts, 0) : 0;
  const d0 = g > 0 ? ptrAt(dsts, x) : 0;
  const d1 = g > 1 ? ptrAt(dsts, x + 1) : 0;
  const d2 = g > 2 ? ptrAt(dsts, x + 2) : 0;
  const d3 = g > 3 ? ptrAt(dsts, x + 3) : 0;
  const jstride = <usize>g << 5;
  const end = len & ~31;
  for (let off = 0; off < end; off += 32) {
    const zero = i8x16.splat(0);
    let xa = zero, xb = zero;
    let a0 = zero, b0 = zero, a1 = zero, b1 = zero, a2 = zero, b2 = zero, a3 = zero, b3 = zero;
    let t = tbl;
    for (let j = 0; j < k; j++) {
      const s = ptrAt(srcs, j) + <usize>off;
      const v0 = v128.load(s);
      const v1 = v128.load(s, 16);
      if (x) {
        xa = v128.xor(xa, v0);
        xb = v128.xor(xb, v1);
      }
      if (g > 0) {
        // i16x8.shr_u + and: V8 lowers i8x16.shr_u to five instructions.
        const mask = i8x16.splat(0x0f);
        const l0 = v128.and(v0, mask);
        const h0 = v128.and(i16x8.shr_u(v0, 4), mask);
        const l1 = v128.and(v1, mask);
        const h1 = v128.and(i16x8.shr_u(v1, 4), mask);
        let tl = v128.load(t), th = v128.load(t, 16);
        a0 = mad8(a0, tl, th, l0, h0);
        b0 = mad8(b0, tl, th, l1, h1);
        if (g > 1) {
          tl = v128.load(t, 32);
          th = v128.load(t, 48);
          a1 = mad8(a1, tl, th, l0, h0);
          b1 = mad8(b1, tl, th, l1, h1);
        }
        if (g > 2) {
          tl = v128.load(t, 64);
          th = v128.load(t, 80);
          a2 = mad8(a2, tl, th, l0, h0);
          b2 = mad8(b2, tl, th, l1, h1);
        }
        if (g > 3) {
          tl = v128.load(t, 96);
          th = v128.load(t, 112);
          a3 = mad8(a3, tl, th, l0, h0);
          b3 = mad8(b3, tl, th, l1, h1);
        }
        t += jstride;
      }
    }
    if (x) {
      v128.store(dx + <usize>off, xa);
      v128.store(dx + <usize>off, xb, 16);
    }
    if (g > 0) {
      v128.store(d0 + <usize>off, a0);
      v128.store(d0 + <usize>off, b0, 16);
    }
    if (g > 1) {
      v128.store(d1 + <usize>off, a1);
      v128.store(d1 + <usize>off, b1, 16);
    }
    if (g > 2) {
      v128.store(d2 + <usize>off, a2);
      v128.store(d2 + <usize>off, b2, 16);
    }
    if (g > 3) {
      v128.store(d3 + <usize>off, a3);
      v128.store(d3 + <usize>off, b3, 16);
    }
  }
  return end;
}

@inline function dot8Group(x: i32, g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  let done = 0;
  if (ASC_FEATURE_SIMD) done = dot8Simd(x, g, len, k, tbl, srcs, dsts);
  dot8Scalar(x, g, done, len, k, tbl, srcs, dsts);
}

// Table rows per GF(2^8) group: four (8 accumulators) measured best. The XOR row rides along
// only with at most GX8 table rows (4+2: 1.6x faster than a pass of its own); beside three
// table rows it pushes V8 into spilling, and a separate XOR pass over the inputs is cheaper.
const G8: i32 = 4;
const GX8: i32 = 1;

@inline function dot8Rows(x: i32, g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  if (g == 1) dot8Group(x, 1, len, k, tbl, srcs, dsts);
  else if (g == 2) dot8Group(x, 2, len, k, tbl, srcs, dsts);
  else if (g == 3) dot8Group(x, 3, len, k, tbl, srcs, dsts);
  else dot8Group(x, 4, len, k, tbl, srcs, dsts);
}

// rows output regions; when xor is 1 the first of them is the XOR row and the rest have tables.
export function dot8(len: i32, k: i32, rows: i32, xor: i32, tbl: usize, srcs: usize, dsts: usize): void {
  let r = 0;
  let t = tbl;
  if (xor) {
    const g = rows - 1;
    if (g == 0 || g > GX8) xorRegions(len, k, srcs, ptrAt(dsts, 0));
    else if (g == 1) dot8Group(1, 1, len, k, t, srcs, dsts);
    else if (g == 2) dot8Group(1, 2, len, k, t, srcs, dsts);
    else dot8Group(1, 3, len, k, t, srcs, dsts);
    r = g > GX8 ? 1 : rows;
    if (g <= GX8) t += <usize>(g * k) << 5;
  }
  for (; r + G8 <= rows; r += G8) {
    dot8Rows(0, G8, len, k, t, srcs, dsts + (<usize>r << 2));
    t += <usize>(G8 * k) << 5;
  }
  if (r < rows) dot8Rows(0, rows - r, len, k, t, srcs, dsts + (<usize>r << 2));
}

// ---------------------------------------------------------------- GF(2^16)

@inline function mul16(t: usize, x: u32): u32 {
  const n0 = <usize>(x & 15), n1 = <usize>((x >> 4) & 15), n2 = <usize>((x >> 8) & 15), n3 = <usize>(x >> 12);
  const lo = <u32>load<u8>(t + n0) ^ <u32>load<u8>(t + 32 + n1) ^ <u32>load<u8>(t + 64 + n2) ^ <u32>load<u8>(t + 96 + n3);
  const hi = <u32>load<u8>(t + 16 + n0) ^ <u32>load<u8>(t + 48 + n1) ^ <u32>load<u8>(t + 80 + n2) ^ <u32>load<u8>(t + 112 + n3);
  return lo | (hi << 8);
}

// Words [from, len) (len even) of a group, one 16-bit little-endian word at a time.
@inline function dot16Scalar(x: i32, g: i32, from: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  if (x) xorScalar(from, len, k, srcs, ptrAt(dsts, 0));
  const jstride = <usize>g << 7;
  for (let r = 0; r < g; r++) {
    const d = ptrAt(dsts, x + r);
    const tr = tbl + (<usize>r << 7);
    for (let i = from; i + 1 < len; i += 2) {
      let acc: u32 = 0;
      for (let j = 0; j < k; j++) {
        acc ^= mul16(tr + <usize>j * jstride, <u32>load<u16>(ptrAt(srcs, j) + <usize>i));
      }
      store<u16>(d + <usize>i, <u16>acc);
    }
  }
}

// acc ^= (low or high bytes of) c * x for 16 words given as their four nibble vectors;
// o is 0 for the low-byte tables and 16 for the high-byte ones.
@inline function mad16(acc: v128, t: usize, o: usize, n0: v128, n1: v128, n2: v128, n3: v128): v128 {
  return v128.xor(acc, v128.xor(
    v128.xor(swz(v128.load(t + o), n0), swz(v128.load(t + o, 32), n1)),
    v128.xor(swz(v128.load(t + o, 64), n2), swz(v128.load(t + o, 96), n3))));
}

@inline function store16(d: usize, lo: v128, hi: v128): void {
  v128.store(d, i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
  v128.store(d, i8x16.shuffle(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), 16);
}

// One group, 16 words (32 bytes) a step, on de-interleaved low and high bytes.
@inline function dot16Simd(x: i32, g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): i32 {
  const dx = x ? ptrAt(dsts, 0) : 0;
  const d0 = g > 0 ? ptrAt(dsts, x) : 0;
  const d1 = g > 1 ? ptrAt(dsts, x + 1) : 0;
  const d2 = g > 2 ? ptrAt(dsts, x + 2) : 0;
  const d3 = g > 3 ? ptrAt(dsts, x + 3) : 0;
  const jstride = <usize>g << 7;
  const end = len & ~31;
  for (let off = 0; off < end; off += 32) {
    const zero = i8x16.splat(0);
    let xa = zero, xb = zero;
    let l0 = zero, h0 = zero, l1 = zero, h1 = zero, l2 = zero, h2 = zero, l3 = zero, h3 = zero;
    let t = tbl;
    for (let j = 0; j < k; j++) {
      const s = ptrAt(srcs, j) + <usize>off;
      const v0 = v128.load(s);
      const v1 = v128.load(s, 16);
      if (x) {
        xa = v128.xor(xa, v0);
        xb = v128.xor(xb, v1);
      }
      if (g > 0) {
        const lowByte = i16x8.splat(0x00ff);
        const mask = i8x16.splat(0x0f);
        const lo = i8x16.narrow_i16x8_u(v128.and(v0, lowByte), v128.and(v1, lowByte));
        const hi = i8x16.narrow_i16x8_u(i16x8.shr_u(v0, 8), i16x8.shr_u(v1, 8));
        const n0 = v128.and(lo, mask);
        const n1 = v128.and(i16x8.shr_u(lo, 4), mask);
        const n2 = v128.and(hi, mask);
        const n3 = v128.and(i16x8.shr_u(hi, 4), mask);
        l0 = mad16(l0, t, 0, n0, n1, n2, n3);
        h0 = mad16(h0, t, 16, n0, n1, n2, n3);
        if (g > 1) {
          l1 = mad16(l1, t + 128, 0, n0, n1, n2, n3);
          h1 = mad16(h1, t + 128, 16, n0, n1, n2, n3);
        }
        if (g > 2) {
          l2 = mad16(l2, t + 256, 0, n0, n1, n2, n3);
          h2 = mad16(h2, t + 256, 16, n0, n1, n2, n3);
        }
        if (g > 3) {
          l3 = mad16(l3, t + 384, 0, n0, n1, n2, n3);
          h3 = mad16(h3, t + 384, 16, n0, n1, n2, n3);
        }
        t += jstride;
      }
    }
    if (x) {
      v128.store(dx + <usize>off, xa);
      v128.store(dx + <usize>off, xb, 16);
    }
    if (g > 0) store16(d0 + <usize>off, l0, h0);
    if (g > 1) store16(d1 + <usize>off, l1, h1);
    if (g > 2) store16(d2 + <usize>off, l2, h2);
    if (g > 3) store16(d3 + <usize>off, l3, h3);
  }
  return end;
}

@inline function dot16Group(x: i32, g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  let done = 0;
  if (ASC_FEATURE_SIMD) done = dot16Simd(x, g, len, k, tbl, srcs, dsts);
  dot16Scalar(x, g, done, len, k, tbl, srcs, dsts);
}

// Table rows per GF(2^16) group. Each row holds two accumulators (low and high bytes) beside
// the four nibble vectors; past two V8's register allocator spills accumulators every step.
// The XOR row, which needs no nibbles, rides along with up to three table rows.
const G16: i32 = 2;
const GX16: i32 = 3;

@inline function dot16Rows(x: i32, g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  if (g == 1) dot16Group(x, 1, len, k, tbl, srcs, dsts);
  else if (g == 2) dot16Group(x, 2, len, k, tbl, srcs, dsts);
  else if (g == 3) dot16Group(x, 3, len, k, tbl, srcs, dsts);
  else dot16Group(x, 4, len, k, tbl, srcs, dsts);
}

// As dot8; len must be even: regions are whole 16-bit words.
export function dot16(len: i32, k: i32, rows: i32, xor: i32, tbl: usize, srcs: usize, dsts: usize): void {
  let r = 0;
  let t = tbl;
  if (xor) {
    const g = rows - 1;
    if (g == 0 || g > GX16) xorRegions(len, k, srcs, ptrAt(dsts, 0));
    else if (g == 1) dot16Group(1, 1, len, k, t, srcs, dsts);
    else if (g == 2) dot16Group(1, 2, len, k, t, srcs, dsts);
    else dot16Group(1, 3, len, k, t, srcs, dsts);
    r = g > GX16 ? 1 : rows;
    if (g <= GX16) t += <usize>(g * k) << 7;
  }
  for (; r + G16 <= rows; r += G16) {
    dot16Rows(0, G16, len, k, t, srcs, dsts + (<usize>r << 2));
    t += <usize>(G16 * k) << 7;
  }
  if (r < rows) dot16Rows(0, rows - r, len, k, t, srcs, dsts + (<usize>r << 2));
}

/**
 * How many table rows share one pass over the inputs (xor = 0), and how many table rows at
 * most the XOR row joins (xor = 1; with more, it runs as a pass of its own). The host lays out
 * tables group by group to match, so it asks the build rather than assuming.
 */
export function kernelGroupSize(w: i32, xor: i32): i32 {
  if (w == 16) return xor ? GX16 : G16;
  return xor ? GX8 : G8;
}
