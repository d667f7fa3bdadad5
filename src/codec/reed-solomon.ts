// ReedSolomon: the plain erasure code on equal-length shards, without liberasurecode's
// headers, for users who do not need Swift's fragment format. Any of the four backends'
// generator matrices can be chosen, so shards interoperate with those libraries' payloads.
import { BACKENDS, EC_TYPES, isECType, type ECType } from './backends.js';
import { MatrixCoder } from './coder.js';
import { ECBackendNotSupported, ECInsufficientFragments, ECInvalidParameter } from './errors.js';
import { loadRuntime, type KernelKind, type KernelPreference, type WasmRuntime } from './wasm.js';

export interface ReedSolomonOptions {
  k: number;
  m: number;
  /** Whose generator matrix (and field) to use; isa_l_rs_cauchy (GF(2^8), MDS) by default. */
  matrix?: ECType;
  allowNonMds?: boolean;
  kernels?: KernelPreference;
  runtime?: WasmRuntime;
}

/** Shards may be missing: null or undefined in their slot. */
export type Shards = ReadonlyArray<Uint8Array | null | undefined>;

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/**
 * k + m shards of one length in a coder's wasm memory: the zero-copy side of ReedSolomon.
 * Fill the data shards through their views, then encodeInto(set.data, set.parity) or
 * reconstructInto(set.shards, missing) works on them in place. Views are valid until the set
 * is disposed and until the wasm memory grows (which detaches them: ask again).
 */
export class ShardSet {
  readonly k: number;
  readonly m: number;
  readonly length: number;
  /** @internal */ readonly rt: WasmRuntime;
  private readonly base: number;
  private readonly stride: number;
  private disposed = false;

  /** @internal */
  constructor(rt: WasmRuntime, k: number, m: number, length: number) {
    this.rt = rt;
    this.k = k;
    this.m = m;
    this.length = length;
    this.stride = align(Math.max(length, 1), 64);
    this.base = rt.heap.alloc((k + m) * this.stride);
  }

  shard(i: number): Uint8Array {
    if (this.disposed) throw new ECInvalidParameter('this shard set has been disposed');
    if (!Number.isInteger(i) || i < 0 || i >= this.k + this.m) throw new ECInvalidParameter(`no shard ${String(i)} in a set of ${this.k + this.m}`);
    return new Uint8Array(this.rt.heap.buffer, this.base + i * this.stride, this.length);
  }

  get shards(): Uint8Array[] {
    return Array.from({ length: this.k + this.m }, (_, i) => this.shard(i));
  }

  get data(): Uint8Array[] {
    return this.shards.slice(0, this.k);
  }

  get parity(): Uint8Array[] {
    return this.shards.slice(this.k);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.rt.heap.release(this.base);
  }
}

export class ReedSolomon {
  readonly k: number;
  readonly m: number;
  readonly matrix: ECType;
  /** Field width: shards of a GF(2^16) matrix must have an even length. */
  readonly w: 8 | 16;
  private readonly rt: WasmRuntime;
  private readonly coder: MatrixCoder;
  private scratchPtr = -1;
  private scratchBytes = 0;

  private constructor(k: number, m: number, matrix: ECType, rt: WasmRuntime) {
    this.k = k;
    this.m = m;
    this.matrix = matrix;
    this.w = BACKENDS[matrix].w;
    this.rt = rt;
    this.coder = MatrixCoder.create(rt, BACKENDS[matrix].matrixKind, this.w, k, m);
  }

  static async create(opts: ReedSolomonOptions): Promise<ReedSolomon> {
    const { k, m } = opts;
    const matrix = opts.matrix ?? 'isa_l_rs_cauchy';
    if (!isECType(matrix)) throw new ECBackendNotSupported(`${String(matrix)} is not a known matrix (${EC_TYPES.join(', ')})`);
    const backend = BACKENDS[matrix];
    const maxN = backend.w === 8 ? 256 : 65536;
    if (!Number.isInteger(k) || k < 1) throw new ECInvalidParameter(`invalid number of data shards (k): ${String(k)}`);
    if (!Number.isInteger(m) || m < 0) throw new ECInvalidParameter(`invalid number of parity shards (m): ${String(m)}`);
    if (k + m > Math.min(maxN, 256)) throw new ECInvalidParameter(`k + m = ${k + m} exceeds the limit of ${Math.min(maxN, 256)} shards`);
    if (matrix === 'isa_l_rs_cauchy' && k + m > 256) throw new ECInvalidParameter('isa_l_rs_cauchy allows at most 256 shards');
    if (backend.mdsMaxParity !== undefined && m > backend.mdsMaxParity && !opts.allowNonMds) {
      throw new ECBackendNotSupported(
        `${matrix} with m=${m} is not MDS (some losses of up to m shards cannot be rebuilt); pass allowNonMds to use it anyway`,
      );
    }
    const rt = opts.runtime ?? (await loadRuntime(opts.kernels));
    return new ReedSolomon(k, m, matrix, rt);
  }

  /** The m parity shards of k equal-length data shards. */
  encode(data: readonly Uint8Array[]): Uint8Array[] {
    this.checkData(data);
    const len = this.shardLength(data);
    const parity = Array.from({ length: this.m }, () => new Uint8Array(len));
    this.encodeInto(data, parity);
    return parity;
  }

  /**
   * Writes the parity of `data` into `parity` (m arrays of the shards' length). Shards that
   * are views of this coder's wasm memory (a ShardSet's, say) are read and written in place;
   * others go through scratch. Outputs must not overlap inputs.
   */
  encodeInto(data: readonly Uint8Array[], parity: readonly Uint8Array[]): void {
    this.checkData(data);
    if (!Array.isArray(parity) || parity.length !== this.m) {
      throw new ECInvalidParameter(`encodeInto takes exactly m=${this.m} parity arrays, got ${Array.isArray(parity) ? parity.length : typeof parity}`);
    }
    const len = this.shardLength([...data, ...parity]);
    this.inPlace(data, parity, len, (srcs, dsts) => this.coder.encode(srcs, dsts, len));
  }

  /** k + m shards of `length` bytes in this coder's wasm memory. */
  createShardSet(length: number): ShardSet {
    if (!Number.isInteger(length) || length < 0) throw new ECInvalidParameter(`invalid shard length ${String(length)}`);
    if (this.w === 16 && length % 2 !== 0) throw new ECInvalidParameter(`${this.matrix} works on 16-bit words: shard length ${length} must be even`);
    return new ShardSet(this.rt, this.k, this.m, length);
  }

  /**
   * All k + m shards: the given ones as they are, the missing ones rebuilt from the first k
   * present shards. With dataOnly, only missing data shards are rebuilt (parity stays null).
   */
  reconstruct(shards: Shards, opts: { dataOnly?: boolean } = {}): Array<Uint8Array | null> {
    const n = this.k + this.m;
    if (!Array.isArray(shards) || shards.length !== n) {
      throw new ECInvalidParameter(`reconstruct takes all k+m=${n} slots (null for a missing shard)`);
    }
    const present = shards.flatMap((s, i) => (s ? [i] : []));
    if (present.length < this.k) {
      throw new ECInsufficientFragments(`${present.length} shards present, k=${this.k} are needed`);
    }
    const len = this.shardLength(present.map((i) => shards[i]!));
    const want = shards.flatMap((s, i) => (!s && (!opts.dataOnly || i < this.k) ? [i] : []));
    const out: Array<Uint8Array | null> = shards.map((s) => s ?? null);
    for (const i of want) out[i] = new Uint8Array(len);
    if (want.length > 0) this.rebuild(out, present.slice(0, this.k), want, len);
    return out;
  }

  /**
   * Rebuilds shards `missing` in place: `shards` holds all k + m arrays of one length, and
   * the ones at `missing` are outputs (their contents are ignored). Shards in this coder's
   * wasm memory (a ShardSet's) are used with no copy.
   */
  reconstructInto(shards: readonly Uint8Array[], missing: readonly number[]): void {
    const n = this.k + this.m;
    if (!Array.isArray(shards) || shards.length !== n || shards.some((s) => !(s instanceof Uint8Array))) {
      throw new ECInvalidParameter(`reconstructInto takes all k+m=${n} shards`);
    }
    if (!Array.isArray(missing)) throw new ECInvalidParameter('reconstructInto takes a list of shard indexes to rebuild');
    for (const i of missing) {
      if (!Number.isInteger(i) || i < 0 || i >= n) throw new ECInvalidParameter(`shard index ${String(i)} is out of range 0..${n - 1}`);
    }
    const want = [...new Set(missing)].sort((a, b) => a - b);
    const present = [...Array(n).keys()].filter((i) => !want.includes(i));
    if (present.length < this.k) throw new ECInsufficientFragments(`${present.length} shards present, k=${this.k} are needed`);
    const len = this.shardLength(shards);
    if (want.length > 0) this.rebuild(shards, present.slice(0, this.k), want, len);
  }

  /** True when the parity shards are those of the data shards. */
  verify(shards: readonly Uint8Array[]): boolean {
    const n = this.k + this.m;
    if (!Array.isArray(shards) || shards.length !== n || shards.some((s) => !s)) {
      throw new ECInvalidParameter(`verify takes all k+m=${n} shards`);
    }
    const parity = this.encode(shards.slice(0, this.k));
    return parity.every((p, r) => equalBytes(p, shards[this.k + r]!));
  }

  dispose(): void {
    this.coder.dispose();
    if (this.scratchPtr >= 0) this.rt.heap.release(this.scratchPtr);
    this.scratchPtr = -1;
    this.scratchBytes = 0;
  }

  /** The wasm build running this coder's kernels. */
  get kernel(): KernelKind {
    return this.rt.kind;
  }

  private shardLength(shards: readonly Uint8Array[]): number {
    const len = shards[0]!.length;
    shards.forEach((s, i) => {
      if (!(s instanceof Uint8Array)) throw new ECInvalidParameter(`shard ${i} is not a Uint8Array`);
      if (s.length !== len) throw new ECInvalidParameter(`shards have mixed lengths: ${len} and ${s.length} (shard ${i})`);
    });
    if (this.w === 16 && len % 2 !== 0) {
      throw new ECInvalidParameter(`${this.matrix} works on 16-bit words: shard length ${len} must be even`);
    }
    return len;
  }

  private checkData(data: readonly Uint8Array[]): void {
    if (!Array.isArray(data) || data.length !== this.k) {
      throw new ECInvalidParameter(`encode takes exactly k=${this.k} data shards, got ${Array.isArray(data) ? data.length : typeof data}`);
    }
  }

  private rebuild(shards: ReadonlyArray<Uint8Array | null>, avail: number[], want: number[], len: number): void {
    this.inPlace(
      avail.map((i) => shards[i]!),
      want.map((i) => shards[i]!),
      len,
      (srcs, dsts) => this.coder.rebuild(avail, srcs, want, dsts, len),
    );
  }

  /**
   * Runs fn on pointers for inputs and outputs: arrays already in wasm memory as they are,
   * the others through scratch (inputs copied in first, outputs copied out after).
   */
  private inPlace(inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], len: number, fn: (srcs: number[], dsts: number[]) => void): void {
    const heap = this.rt.heap;
    // Offsets first: scratch may grow the memory, which detaches views of it.
    const inAt = inputs.map((s) => heap.offsetOf(s));
    const outAt = outputs.map((s) => heap.offsetOf(s));
    const copies = inAt.filter((p) => p < 0).length + outAt.filter((p) => p < 0).length;
    const stride = align(Math.max(len, 1), 64);
    let spare = copies > 0 ? this.scratch(copies * stride) : 0;
    const u8 = heap.u8;
    const srcs = inputs.map((s, j) => {
      if (inAt[j]! >= 0) return inAt[j]!;
      const p = spare;
      spare += stride;
      u8.set(s, p);
      return p;
    });
    const dsts = outAt.map((p) => {
      if (p >= 0) return p;
      const q = spare;
      spare += stride;
      return q;
    });
    fn(srcs, dsts);
    const after = heap.u8;
    outputs.forEach((o, r) => {
      if (outAt[r]! < 0) o.set(after.subarray(dsts[r]!, dsts[r]! + len));
    });
  }

  private scratch(bytes: number): number {
    if (bytes > this.scratchBytes) {
      if (this.scratchPtr >= 0) this.rt.heap.release(this.scratchPtr);
      this.scratchBytes = align(Math.max(bytes, 4096), 65536);
      this.scratchPtr = this.rt.heap.alloc(this.scratchBytes);
    }
    return this.scratchPtr;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
