// The wasm module's exports. Memory is managed by the host: every pointer argument names
// a region the caller allocated in this module's memory above __heap_base.
import { gf8Init } from './gf256';
import { gf16Init } from './gf65536';
import { crc32Init } from './crc32';
import { gfMul, gfInv } from './field';

export { generatorMatrix, invertMatrix, rowTimesMatrix } from './matrix';
export { buildTables, dot8, dot16, xorRegions, kernelGroupSize } from './kernels';
export { crc32, crc32Legacy } from './crc32';

export function init(): void {
  gf8Init();
  gf16Init();
  crc32Init();
}

export function mul(w: i32, a: u32, b: u32): u32 {
  return gfMul(w, a, b);
}

export function inv(w: i32, a: u32): u32 {
  return gfInv(w, a);
}

// 0 scalar, 1 SIMD128, 2 relaxed SIMD: what this build's kernels use.
export function kernelKind(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 2 : ASC_FEATURE_SIMD ? 1 : 0;
}

// First byte the host may allocate: everything below holds this module's static tables.
export function heapBase(): usize {
  return __heap_base;
}
