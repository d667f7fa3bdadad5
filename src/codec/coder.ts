// The matrix engine under both APIs: a generator matrix, its expanded multiplication tables
// in wasm memory, and rebuild tables cached per erasure pattern. It works on regions that
// are already in the runtime's heap; ECDriver and ReedSolomon decide what to copy.
import { ECInvalidParameter, ECSingularMatrix } from './errors.js';
import type { WasmRuntime } from './wasm.js';

const REBUILD_CACHE_MAX = 64;

/**
 * Coefficient rows turned into what the kernel runs: tables in kernel order, and which output
 * row each kernel row is. An all-ones row needs no tables (it is a plain XOR of the inputs),
 * so the first one found runs as the kernel's XOR row.
 */
export interface Plan {
  readonly tbl: number;
  readonly rows: number;
  readonly xor: 0 | 1;
  /** order[i] = which of the caller's rows kernel row i computes. */
  readonly order: readonly number[];
}

/**
 * How the kernel splits `rows` output rows into groups of table rows; must match dot8 / dot16
 * in assembly/kernels.ts, which walk the tables group by group. Group sizes come from the
 * build (kernelGroupSize).
 */
export function kernelGroups(rt: WasmRuntime, w: 8 | 16, rows: number, xor: 0 | 1): number[] {
  const groups: number[] = [];
  let left = rows - xor;
  // The XOR row joins a small group of table rows, or else runs on its own with no tables.
  if (xor && left <= rt.exports.kernelGroupSize(w, 1)) {
    if (left > 0) groups.push(left);
    left = 0;
  }
  const size = rt.exports.kernelGroupSize(w, 0);
  while (left > 0) {
    const g = Math.min(left, size);
    groups.push(g);
    left -= g;
  }
  return groups;
}

export class MatrixCoder {
  readonly rt: WasmRuntime;
  readonly w: 8 | 16;
  readonly k: number;
  readonly m: number;
  readonly n: number;
  /** (k + m) x k, row-major; the top k rows are the identity. */
  readonly generator: Uint32Array;
  private readonly tableBytes: number;
  private readonly encodePlan: Plan;
  private readonly ptrs: number;
  private readonly rebuildPlans = new Map<string, Plan>();
  private disposed = false;

  private constructor(rt: WasmRuntime, w: 8 | 16, k: number, m: number, generator: Uint32Array) {
    this.rt = rt;
    this.w = w;
    this.k = k;
    this.m = m;
    this.n = k + m;
    this.generator = generator;
    this.tableBytes = w === 16 ? 128 : 32;
    // Room for k sources and up to k + m destinations (a rebuild may want every fragment).
    this.ptrs = rt.heap.alloc(4 * (k + this.n));
    this.encodePlan = this.planFor(generator.subarray(k * k));
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
  encode(dataPtrs: ArrayLike<number>, parityPtrs: ArrayLike<number>, len: number): void {
    this.run(this.encodePlan, dataPtrs, parityPtrs, len);
  }

  /**
   * Computes fragments `want` from the k fragments `avail` (their regions at srcPtrs) into
   * dstPtrs. The plan for each (avail, want) pattern is built once and kept.
   */
  rebuild(avail: readonly number[], srcPtrs: ArrayLike<number>, want: readonly number[], dstPtrs: ArrayLike<number>, len: number): void {
    this.run(this.rebuildPlan(avail, want), srcPtrs, dstPtrs, len);
  }

  rebuildPlan(avail: readonly number[], want: readonly number[]): Plan {
    const key = `${avail.join(',')}>${want.join(',')}`;
    let plan = this.rebuildPlans.get(key);
    if (plan === undefined) {
      plan = this.planFor(this.rebuildRows(avail, want));
      if (this.rebuildPlans.size >= REBUILD_CACHE_MAX) {
        const [oldKey, oldPlan] = this.rebuildPlans.entries().next().value as [string, Plan];
        this.rebuildPlans.delete(oldKey);
        this.rt.heap.release(oldPlan.tbl);
      }
    } else {
      // Re-inserted so that the map's order is least recently used first.
      this.rebuildPlans.delete(key);
    }
    this.rebuildPlans.set(key, plan);
    return plan;
  }

  /** Frees the tables in wasm memory. The coder is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const heap = this.rt.heap;
    for (const plan of this.rebuildPlans.values()) heap.release(plan.tbl);
    this.rebuildPlans.clear();
    heap.release(this.encodePlan.tbl);
    heap.release(this.ptrs);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private planFor(rows: Uint32Array): Plan {
    const { k, rt } = this;
    const count = rows.length / k;
    let ones = -1;
    for (let r = 0; r < count && ones < 0; r++) {
      let all = true;
      for (let j = 0; j < k && all; j++) all = rows[r * k + j] === 1;
      if (all) ones = r;
    }
    const xor: 0 | 1 = ones >= 0 ? 1 : 0;
    const order = xor ? [ones, ...[...Array(count).keys()].filter((r) => r !== ones)] : [...Array(count).keys()];
    // Coefficients in the order the kernel reads them: group by group, input-major inside.
    const coefs = new Uint32Array((count - xor) * k);
    let c = 0;
    let r0 = xor;
    for (const g of kernelGroups(rt, this.w, count, xor)) {
      for (let j = 0; j < k; j++) for (let r = r0; r < r0 + g; r++) coefs[c++] = rows[order[r]! * k + j]!;
      r0 += g;
    }
    const tbl = rt.heap.alloc(Math.max(coefs.length, 1) * this.tableBytes);
    if (coefs.length > 0) {
      rt.heap.with(4 * coefs.length, (p) => {
        rt.writeU32(p, coefs);
        rt.exports.buildTables(this.w, coefs.length, p, tbl);
      });
    }
    return { tbl, rows: count, xor, order };
  }

  private run(plan: Plan, srcPtrs: ArrayLike<number>, dstPtrs: ArrayLike<number>, len: number): void {
    if (this.disposed) throw new ECInvalidParameter('this coder has been disposed');
    if (srcPtrs.length !== this.k) throw new ECInvalidParameter(`expected ${this.k} input regions, got ${srcPtrs.length}`);
    if (dstPtrs.length !== plan.rows) throw new ECInvalidParameter(`expected ${plan.rows} output regions, got ${dstPtrs.length}`);
    if (this.w === 16 && len % 2 !== 0) {
      throw new ECInvalidParameter(`GF(2^16) regions are whole 16-bit words; ${len} bytes is odd`);
    }
    if (plan.rows === 0 || len === 0) return;
    const u32 = this.rt.heap.u32;
    const srcs = this.ptrs;
    const dsts = this.ptrs + 4 * this.k;
    let at = srcs >>> 2;
    for (let j = 0; j < this.k; j++) u32[at++] = srcPtrs[j]!;
    for (let i = 0; i < plan.rows; i++) u32[at++] = dstPtrs[plan.order[i]!]!;
    const dot = this.w === 16 ? this.rt.exports.dot16 : this.rt.exports.dot8;
    dot(len, this.k, plan.rows, plan.xor, plan.tbl, srcs, dsts);
  }
}
