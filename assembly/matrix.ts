// Generator matrices of the four liberasurecode backends fragmend speaks, and Gauss-Jordan
// inversion. Matrices are row-major u32 arrays of (k+m) rows by k columns; the top k rows are
// the identity once a generator is systematic, so parity row r is row k + r.
//
// Each construction follows its library step for step (including where a pivot search may
// swap rows), because a different but equally valid matrix would give other parity bytes.

import { gfMul, gfInv } from './field';

export const MATRIX_LIBERASURECODE_RS_VAND: i32 = 0;
export const MATRIX_JERASURE_RS_VAND: i32 = 1;
export const MATRIX_ISA_L_RS_VAND: i32 = 2;
export const MATRIX_ISA_L_RS_CAUCHY: i32 = 3;

@inline function cell(p: usize, cols: i32, r: i32, c: i32): usize {
  return p + ((<usize>(r * cols + c)) << 2);
}

@inline function get(p: usize, cols: i32, r: i32, c: i32): u32 {
  return load<u32>(cell(p, cols, r, c));
}

@inline function put(p: usize, cols: i32, r: i32, c: i32, v: u32): void {
  store<u32>(cell(p, cols, r, c), v);
}

function swapRows(p: usize, cols: i32, a: i32, b: i32): void {
  for (let c = 0; c < cols; c++) {
    const t = get(p, cols, a, c);
    put(p, cols, a, c, get(p, cols, b, c));
    put(p, cols, b, c, t);
  }
}

// Multiplies rows [r0, r1) of column c by v.
function scaleColumn(w: i32, p: usize, cols: i32, c: i32, r0: i32, r1: i32, v: u32): void {
  for (let r = r0; r < r1; r++) put(p, cols, r, c, gfMul(w, get(p, cols, r, c), v));
}

function scaleRow(w: i32, p: usize, cols: i32, r: i32, v: u32): void {
  for (let c = 0; c < cols; c++) put(p, cols, r, c, gfMul(w, get(p, cols, r, c), v));
}

// column `to` ^= v * column `from`, over every row.
function addScaledColumn(w: i32, p: usize, rows: i32, cols: i32, from: i32, to: i32, v: u32): void {
  for (let r = 0; r < rows; r++) {
    put(p, cols, r, to, get(p, cols, r, to) ^ gfMul(w, get(p, cols, r, from), v));
  }
}

// row `to` ^= v * row `from`.
function addScaledRow(w: i32, p: usize, cols: i32, from: i32, to: i32, v: u32): void {
  for (let c = 0; c < cols; c++) {
    put(p, cols, to, c, get(p, cols, to, c) ^ gfMul(w, get(p, cols, from, c), v));
  }
}

// First row r >= i whose entry in column i is non-zero, or -1.
function pivotRow(p: usize, rows: i32, cols: i32, i: i32): i32 {
  for (let r = i; r < rows; r++) if (get(p, cols, r, i) != 0) return r;
  return -1;
}

// Column-reduces rows so the top cols x cols block is the identity, the way both
// liberasurecode's make_systematic_matrix and Jerasure's big Vandermonde distribution
// matrix do it (row 0 is already [1, 0, ..., 0] in both).
function columnReduce(w: i32, p: usize, rows: i32, cols: i32): i32 {
  for (let i = 1; i < cols; i++) {
    const r = pivotRow(p, rows, cols, i);
    if (r < 0) return -1;
    if (r != i) swapRows(p, cols, r, i);
    const d = get(p, cols, i, i);
    if (d != 1) scaleColumn(w, p, cols, i, 0, rows, gfInv(w, d));
    for (let j = 0; j < cols; j++) {
      const e = get(p, cols, i, j);
      if (j != i && e != 0) addScaledColumn(w, p, rows, cols, i, j, e);
    }
  }
  return 0;
}

// Scales each parity column so that the first parity row is all ones.
function normaliseFirstParityRow(w: i32, p: usize, rows: i32, cols: i32): void {
  for (let c = 0; c < cols; c++) {
    const v = get(p, cols, cols, c);
    if (v != 1) scaleColumn(w, p, cols, c, cols, rows, gfInv(w, v));
  }
}

function liberasurecodeRsVand(k: i32, m: i32, p: usize): i32 {
  const w = 16;
  const rows = k + m;
  put(p, k, 0, 0, 1);
  for (let c = 1; c < k; c++) put(p, k, 0, c, 0);
  for (let r = 1; r < rows; r++) {
    let acc: u32 = 1;
    for (let c = 0; c < k; c++) {
      put(p, k, r, c, acc);
      acc = gfMul(w, acc, <u32>r);
    }
  }
  if (columnReduce(w, p, rows, k) < 0) return -1;
  normaliseFirstParityRow(w, p, rows, k);
  return 0;
}

function jerasureRsVand(k: i32, m: i32, p: usize): i32 {
  const w = 16;
  const rows = k + m;
  if (m < 1) return -1;
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) put(p, k, r, c, 0);
  // Extended Vandermonde: [1, 0, ...] on top, the point at infinity [0, ..., 0, 1] at the
  // bottom, and i^0 .. i^(k-1) for the rows between.
  put(p, k, 0, 0, 1);
  put(p, k, rows - 1, k - 1, 1);
  for (let r = 1; r < rows - 1; r++) {
    let acc: u32 = 1;
    for (let c = 0; c < k; c++) {
      put(p, k, r, c, acc);
      acc = gfMul(w, acc, <u32>r);
    }
  }
  if (columnReduce(w, p, rows, k) < 0) return -1;
  normaliseFirstParityRow(w, p, rows, k);
  // Then every later parity row is scaled so that its first column is 1.
  for (let r = k + 1; r < rows; r++) {
    const v = get(p, k, r, 0);
    if (v != 1) scaleRow(w, p, k, r, gfInv(w, v));
  }
  return 0;
}

function identityTop(k: i32, p: usize): void {
  for (let r = 0; r < k; r++) for (let c = 0; c < k; c++) put(p, k, r, c, r == c ? 1 : 0);
}

// ISA-L gf_gen_rs_matrix: parity row r holds the powers of 2^r.
function isaLRsVand(k: i32, m: i32, p: usize): i32 {
  const w = 8;
  identityTop(k, p);
  let gen: u32 = 1;
  for (let r = k; r < k + m; r++) {
    let acc: u32 = 1;
    for (let c = 0; c < k; c++) {
      put(p, k, r, c, acc);
      acc = gfMul(w, acc, gen);
    }
    gen = gfMul(w, gen, 2);
  }
  return 0;
}

// ISA-L gf_gen_cauchy1_matrix: parity entry (r, c) is 1 / (r xor c).
function isaLRsCauchy(k: i32, m: i32, p: usize): i32 {
  const w = 8;
  identityTop(k, p);
  for (let r = k; r < k + m; r++) {
    for (let c = 0; c < k; c++) put(p, k, r, c, gfInv(w, <u32>(r ^ c)));
  }
  return 0;
}

export function generatorMatrix(kind: i32, k: i32, m: i32, out: usize): i32 {
  if (k < 1 || m < 0) return -1;
  switch (kind) {
    case MATRIX_LIBERASURECODE_RS_VAND: return liberasurecodeRsVand(k, m, out);
    case MATRIX_JERASURE_RS_VAND: return jerasureRsVand(k, m, out);
    case MATRIX_ISA_L_RS_VAND: return isaLRsVand(k, m, out);
    case MATRIX_ISA_L_RS_CAUCHY: return isaLRsCauchy(k, m, out);
  }
  return -1;
}

// Gauss-Jordan inversion of the n x n matrix at mat (destroyed) into inv.
// Returns -1 when the matrix is singular.
export function invertMatrix(w: i32, n: i32, mat: usize, inv: usize): i32 {
  identityTop(n, inv);
  for (let i = 0; i < n; i++) {
    const r = pivotRow(mat, n, n, i);
    if (r < 0) return -1;
    if (r != i) {
      swapRows(mat, n, r, i);
      swapRows(inv, n, r, i);
    }
    const d = get(mat, n, i, i);
    if (d != 1) {
      const di = gfInv(w, d);
      scaleRow(w, mat, n, i, di);
      scaleRow(w, inv, n, i, di);
    }
    for (let j = 0; j < n; j++) {
      if (j == i) continue;
      const v = get(mat, n, j, i);
      if (v != 0) {
        addScaledRow(w, mat, n, i, j, v);
        addScaledRow(w, inv, n, i, j, v);
      }
    }
  }
  return 0;
}

// out[0..k) = row[0..k) x mat (k x k): a generator row expressed over another basis.
export function rowTimesMatrix(w: i32, k: i32, row: usize, mat: usize, out: usize): void {
  for (let c = 0; c < k; c++) {
    let acc: u32 = 0;
    for (let i = 0; i < k; i++) acc ^= gfMul(w, load<u32>(row + (<usize>i << 2)), get(mat, k, i, c));
    store<u32>(out + (<usize>c << 2), acc);
  }
}
