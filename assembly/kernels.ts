// Region kernels: every output row of a coefficient matrix computed in one pass over the
// input regions. The same source gives the SIMD128 build (split-nibble lookups with
// i8x16.swizzle, as ISA-L does with pshufb) and the scalar build (the same tables, one
// byte or word at a time), chosen at compile time by ASC_FEATURE_SIMD.
//
// Tables, per coefficient c:
//   w = 8:  32 bytes  lo[16] = c * i,  hi[16] = c * (i << 4)
//   w = 16: 128 bytes for nibble n = 0..3: L[16], H[16] = low and high byte of c * (i << 4n)
// laid out row-major: coefficient (r, j) of a rows x k matrix at tbl + (r * k + j) * size.
//
// srcs and dsts are arrays of u32 pointers. Rows are processed four at a time.

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

// ---------------------------------------------------------------- GF(2^8)

@inline function mul8(t: usize, x: u32): u32 {
  return <u32>load<u8>(t + (x & 15)) ^ <u32>load<u8>(t + 16 + (x >> 4));
}

// Bytes [from, len) of `g` rows, one byte at a time.
@inline function dot8Scalar(g: i32, from: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  const stride = <usize>k << 5;
  for (let r = 0; r < g; r++) {
    const d = ptrAt(dsts, r);
    const tr = tbl + <usize>r * stride;
    for (let i = from; i < len; i++) {
      let acc: u32 = 0;
      for (let j = 0; j < k; j++) {
        acc ^= mul8(tr + (<usize>j << 5), <u32>load<u8>(ptrAt(srcs, j) + <usize>i));
      }
      store<u8>(d + <usize>i, <u8>acc);
    }
  }
}

// One product step: acc ^= c * x for a 16-byte vector x given as nibbles (lo, hi).
@inline function mad8(acc: v128, t: usize, lo: v128, hi: v128): v128 {
  return v128.xor(acc, v128.xor(swz(v128.load(t), lo), swz(v128.load(t, 16), hi)));
}

// g (1..4, a constant after inlining) rows, 32 bytes per step.
@inline function dot8Simd(g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): i32 {
  const mask = i8x16.splat(0x0f);
  const stride = <usize>k << 5;
  const d0 = ptrAt(dsts, 0);
  const d1 = g > 1 ? ptrAt(dsts, 1) : 0;
  const d2 = g > 2 ? ptrAt(dsts, 2) : 0;
  const d3 = g > 3 ? ptrAt(dsts, 3) : 0;
  const end = len & ~31;
  for (let off = 0; off < end; off += 32) {
    let a0 = i8x16.splat(0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
    let t = tbl;
    for (let j = 0; j < k; j++) {
      const s = ptrAt(srcs, j) + <usize>off;
      const x0 = v128.load(s);
      const x1 = v128.load(s, 16);
      const l0 = v128.and(x0, mask);
      const h0 = v128.and(i16x8.shr_u(x0, 4), mask);
      const l1 = v128.and(x1, mask);
      const h1 = v128.and(i16x8.shr_u(x1, 4), mask);
      a0 = mad8(a0, t, l0, h0);
      b0 = mad8(b0, t, l1, h1);
      if (g > 1) {
        a1 = mad8(a1, t + stride, l0, h0);
        b1 = mad8(b1, t + stride, l1, h1);
      }
      if (g > 2) {
        a2 = mad8(a2, t + stride * 2, l0, h0);
        b2 = mad8(b2, t + stride * 2, l1, h1);
      }
      if (g > 3) {
        a3 = mad8(a3, t + stride * 3, l0, h0);
        b3 = mad8(b3, t + stride * 3, l1, h1);
      }
      t += 32;
    }
    v128.store(d0 + <usize>off, a0);
    v128.store(d0 + <usize>off, b0, 16);
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

@inline function dot8Group(g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  let done = 0;
  if (ASC_FEATURE_SIMD) done = dot8Simd(g, len, k, tbl, srcs, dsts);
  dot8Scalar(g, done, len, k, tbl, srcs, dsts);
}

export function dot8(len: i32, k: i32, rows: i32, tbl: usize, srcs: usize, dsts: usize): void {
  const rowBytes = <usize>k << 5;
  let r = 0;
  for (; r + 4 <= rows; r += 4) dot8Group(4, len, k, tbl + <usize>r * rowBytes, srcs, dsts + (<usize>r << 2));
  const left = rows - r;
  const t = tbl + <usize>r * rowBytes;
  const d = dsts + (<usize>r << 2);
  if (left == 3) dot8Group(3, len, k, t, srcs, d);
  else if (left == 2) dot8Group(2, len, k, t, srcs, d);
  else if (left == 1) dot8Group(1, len, k, t, srcs, d);
}

// ---------------------------------------------------------------- GF(2^16)

@inline function mul16(t: usize, x: u32): u32 {
  const n0 = <usize>(x & 15), n1 = <usize>((x >> 4) & 15), n2 = <usize>((x >> 8) & 15), n3 = <usize>(x >> 12);
  const lo = <u32>load<u8>(t + n0) ^ <u32>load<u8>(t + 32 + n1) ^ <u32>load<u8>(t + 64 + n2) ^ <u32>load<u8>(t + 96 + n3);
  const hi = <u32>load<u8>(t + 16 + n0) ^ <u32>load<u8>(t + 48 + n1) ^ <u32>load<u8>(t + 80 + n2) ^ <u32>load<u8>(t + 112 + n3);
  return lo | (hi << 8);
}

// Words [from, len) (len even) of `g` rows, one 16-bit little-endian word at a time.
@inline function dot16Scalar(g: i32, from: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  const stride = <usize>k << 7;
  for (let r = 0; r < g; r++) {
    const d = ptrAt(dsts, r);
    const tr = tbl + <usize>r * stride;
    for (let i = from; i + 1 < len; i += 2) {
      let acc: u32 = 0;
      for (let j = 0; j < k; j++) {
        acc ^= mul16(tr + (<usize>j << 7), <u32>load<u16>(ptrAt(srcs, j) + <usize>i));
      }
      store<u16>(d + <usize>i, <u16>acc);
    }
  }
}

// acc (low bytes, high bytes) ^= c * x for 16 words given as their four nibble vectors.
@inline function mad16lo(acc: v128, t: usize, n0: v128, n1: v128, n2: v128, n3: v128): v128 {
  return v128.xor(acc, v128.xor(
    v128.xor(swz(v128.load(t), n0), swz(v128.load(t, 32), n1)),
    v128.xor(swz(v128.load(t, 64), n2), swz(v128.load(t, 96), n3))));
}

@inline function mad16hi(acc: v128, t: usize, n0: v128, n1: v128, n2: v128, n3: v128): v128 {
  return v128.xor(acc, v128.xor(
    v128.xor(swz(v128.load(t, 16), n0), swz(v128.load(t, 48), n1)),
    v128.xor(swz(v128.load(t, 80), n2), swz(v128.load(t, 112), n3))));
}

@inline function store16(d: usize, lo: v128, hi: v128): void {
  v128.store(d, i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
  v128.store(d, i8x16.shuffle(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), 16);
}

// g (1..4) rows, 16 words (32 bytes) per step, computed on de-interleaved low and high bytes.
@inline function dot16Simd(g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): i32 {
  const mask = i8x16.splat(0x0f);
  const lowByte = i16x8.splat(0x00ff);
  const stride = <usize>k << 7;
  const d0 = ptrAt(dsts, 0);
  const d1 = g > 1 ? ptrAt(dsts, 1) : 0;
  const d2 = g > 2 ? ptrAt(dsts, 2) : 0;
  const d3 = g > 3 ? ptrAt(dsts, 3) : 0;
  const end = len & ~31;
  for (let off = 0; off < end; off += 32) {
    let l0 = i8x16.splat(0), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
    let t = tbl;
    for (let j = 0; j < k; j++) {
      const s = ptrAt(srcs, j) + <usize>off;
      const x0 = v128.load(s);
      const x1 = v128.load(s, 16);
      const lo = i8x16.narrow_i16x8_u(v128.and(x0, lowByte), v128.and(x1, lowByte));
      const hi = i8x16.narrow_i16x8_u(i16x8.shr_u(x0, 8), i16x8.shr_u(x1, 8));
      const n0 = v128.and(lo, mask);
      const n1 = v128.and(i16x8.shr_u(lo, 4), mask);
      const n2 = v128.and(hi, mask);
      const n3 = v128.and(i16x8.shr_u(hi, 4), mask);
      l0 = mad16lo(l0, t, n0, n1, n2, n3);
      h0 = mad16hi(h0, t, n0, n1, n2, n3);
      if (g > 1) {
        l1 = mad16lo(l1, t + stride, n0, n1, n2, n3);
        h1 = mad16hi(h1, t + stride, n0, n1, n2, n3);
      }
      if (g > 2) {
        l2 = mad16lo(l2, t + stride * 2, n0, n1, n2, n3);
        h2 = mad16hi(h2, t + stride * 2, n0, n1, n2, n3);
      }
      if (g > 3) {
        l3 = mad16lo(l3, t + stride * 3, n0, n1, n2, n3);
        h3 = mad16hi(h3, t + stride * 3, n0, n1, n2, n3);
      }
      t += 128;
    }
    store16(d0 + <usize>off, l0, h0);
    if (g > 1) store16(d1 + <usize>off, l1, h1);
    if (g > 2) store16(d2 + <usize>off, l2, h2);
    if (g > 3) store16(d3 + <usize>off, l3, h3);
  }
  return end;
}

@inline function dot16Group(g: i32, len: i32, k: i32, tbl: usize, srcs: usize, dsts: usize): void {
  let done = 0;
  if (ASC_FEATURE_SIMD) done = dot16Simd(g, len, k, tbl, srcs, dsts);
  dot16Scalar(g, done, len, k, tbl, srcs, dsts);
}

// len must be even: regions are whole 16-bit words.
export function dot16(len: i32, k: i32, rows: i32, tbl: usize, srcs: usize, dsts: usize): void {
  const rowBytes = <usize>k << 7;
  let r = 0;
  for (; r + 4 <= rows; r += 4) dot16Group(4, len, k, tbl + <usize>r * rowBytes, srcs, dsts + (<usize>r << 2));
  const left = rows - r;
  const t = tbl + <usize>r * rowBytes;
  const d = dsts + (<usize>r << 2);
  if (left == 3) dot16Group(3, len, k, t, srcs, d);
  else if (left == 2) dot16Group(2, len, k, t, srcs, d);
  else if (left == 1) dot16Group(1, len, k, t, srcs, d);
}
