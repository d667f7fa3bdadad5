// The matrix engine under both APIs: a generator matrix, its expanded multiplication tables
// in wasm memory, and rebuild tables cached per erasure pattern. It works on regions that
// are already in the runtime's heap; ECDriver and ReedSolomon do the copying.
import { ECInvalidParameter, ECSingularMatrix } from './errors.js';
import type { WasmRuntime } from './wasm.js';

const REBUILD_CACHE_MAX = 64;

export class MatrixCoder {
  readonly rt: WasmRuntime;
  readonly w: 8 | 16;
  readonly k: number;
  readonly m: number;
  readonly n: number;
  /** (k + m) x k, row-major; the top k rows are the identity. */
  readonly generator: Uint32Array;
  private readonly tableBytes: number;
  private readonly encodeTables: number;
  private readonly ptrs: number;
  private readonly rebuildTables = new Map<string, number>();
  private disposed = false;

  private constructor(rt: WasmRuntime, w: 8 | 16, k: number, m: number, generator: Uint32Array) {
    this.rt = rt;
    this.w = w;
    this.k = k;
    this.m = m;
    this.n = k + m;
    this.generator = generator;
    this.tableBytes = w === 16 ? 128 : 32;
    this.ptrs = rt.heap.alloc(8 * this.n);
    this.encodeTables = this.tablesFor(generator.subarray(k * k));
  }

  static create(rt: WasmRuntime, matrixKind: number, w: 8 | 16, k: number, m: number): MatrixCoder {
    const n = k + m;
    const generator = rt.heap.with(4 * n * k, (p) => {
      if (rt.exports.generatorMatrix(matrixKind, k, m, p) !== 0) {
        throw new ECInvalidParameter(`cannot build the generator matrix for k=${k}, m=${m}`);
      }
      return rt.readU32(p, n * k);
    });
    return new MatrixCoder(rt, w, k, m, generator);
  }

  /** Coefficient rows (each k long) that compute fragments `want` from fragments `avail`. */
  rebuildRows(avail: readonly number[], want: readonly number[]): Uint32Array {
    const { k, w, rt } = this;
    if (avail.length !== k) throw new ECInvalidParameter(`a rebuild needs exactly k=${k} inputs, got ${avail.length}`);
    const rows = new Uint32Array(want.length * k);
    const heap = rt.heap;
    const mat = heap.alloc(4 * k * k);
    const inv = heap.alloc(4 * k * k);
    const tmp = heap.alloc(8 * k);
    try {
      const d = new Uint32Array(k * k);
      avail.forEach((idx, r) => d.set(this.generator.subarray(idx * k, idx * k + k), r * k));
      rt.writeU32(mat, d);
      if (rt.exports.invertMatrix(w, k, mat, inv) !== 0) {
        throw new ECSingularMatrix(
          `the generator rows of fragments [${avail.join(', ')}] are not invertible: ` +
            'this matrix cannot rebuild from that set of fragments',
        );
      }
      const inverse = rt.readU32(inv, k * k);
      want.forEach((idx, r) => {
        if (idx < k) {
          rows.set(inverse.subarray(idx * k, idx * k + k), r * k);
        } else {
          rt.writeU32(tmp, this.generator.subarray(idx * k, idx * k + k));
          rt.exports.rowTimesMatrix(w, k, tmp, inv, tmp + 4 * k);
          rows.set(rt.readU32(tmp + 4 * k, k), r * k);
        }
      });
    } finally {
      heap.release(tmp);
      heap.release(inv);
      heap.release(mat);
    }
    return rows;
  }

  /** parity[r] = generator row (k + r) applied to data, for every parity row, in one pass. */
  encode(dataPtrs: readonly number[], parityPtrs: readonly number[], len: number): void {
    this.run(this.encodeTables, dataPtrs, parityPtrs, len);
  }

  /**
   * Computes fragments `want` from the k fragments `avail` (their regions at srcPtrs) into
   * dstPtrs. Tables for each (avail, want) pattern are built once and kept.
   */
  rebuild(avail: readonly number[], srcPtrs: readonly number[], want: readonly number[], dstPtrs: readonly number[], len: number): void {
    const key = `${avail.join(',')}>${want.join(',')}`;
    let tbl = this.rebuildTables.get(key);
    if (tbl === undefined) {
      tbl = this.tablesFor(this.rebuildRows(avail, want));
      if (this.rebuildTables.size >= REBUILD_CACHE_MAX) {
        const [oldKey, oldTbl] = this.rebuildTables.entries().next().value as [string, number];
        this.rebuildTables.delete(oldKey);
        this.rt.heap.release(oldTbl);
      }
    } else {
      this.rebuildTables.delete(key);
    }
    this.rebuildTables.set(key, tbl);
    this.run(tbl, srcPtrs, dstPtrs, len);
  }

  /** Frees the tables in wasm memory. The coder is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const heap = this.rt.heap;
    for (const tbl of this.rebuildTables.values()) heap.release(tbl);
    this.rebuildTables.clear();
    heap.release(this.encodeTables);
    heap.release(this.ptrs);
  }

  private tablesFor(rows: Uint32Array): number {
    const { rt } = this;
    const count = rows.length;
    const tbl = rt.heap.alloc(count * this.tableBytes);
    rt.heap.with(4 * count, (coefs) => {
      rt.writeU32(coefs, rows);
      rt.exports.buildTables(this.w, count, coefs, tbl);
    });
    return tbl;
  }

  private run(tbl: number, srcPtrs: readonly number[], dstPtrs: readonly number[], len: number): void {
    if (this.disposed) throw new ECInvalidParameter('this coder has been disposed');
    if (srcPtrs.length !== this.k) throw new ECInvalidParameter(`expected ${this.k} input regions, got ${srcPtrs.length}`);
    if (this.w === 16 && len % 2 !== 0) {
      throw new ECInvalidParameter(`GF(2^16) regions are whole 16-bit words; ${len} bytes is odd`);
    }
    if (dstPtrs.length === 0 || len === 0) return;
    const srcs = this.ptrs;
    const dsts = this.ptrs + 4 * this.n;
    this.rt.writeU32(srcs, srcPtrs);
    this.rt.writeU32(dsts, dstPtrs);
    const dot = this.w === 16 ? this.rt.exports.dot16 : this.rt.exports.dot8;
    dot(len, this.k, dstPtrs.length, tbl, srcs, dsts);
  }
}
