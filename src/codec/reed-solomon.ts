// ReedSolomon: the plain erasure code on equal-length shards, without liberasurecode's
// headers, for users who do not need Swift's fragment format. Any of the four backends'
// generator matrices can be chosen, so shards interoperate with those libraries' payloads.
import { BACKENDS, EC_TYPES, isECType, type ECType } from './backends.js';
import { MatrixCoder } from './coder.js';
import { ECBackendNotSupported, ECInsufficientFragments, ECInvalidParameter } from './errors.js';
import { loadRuntime, type KernelPreference, type WasmRuntime } from './wasm.js';

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

export class ReedSolomon {
  readonly k: number;
  readonly m: number;
  readonly matrix: ECType;
  /** Field width: shards of a GF(2^16) matrix must have an even length. */
  readonly w: 8 | 16;
  private readonly rt: WasmRuntime;
  private readonly coder: MatrixCoder;

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
    const rt = opts.runtime ?? (await loadRuntime(opts.kernels ?? 'auto'));
    return new ReedSolomon(k, m, matrix, rt);
  }

  /** The m parity shards of k equal-length data shards. */
  encode(data: readonly Uint8Array[]): Uint8Array[] {
    if (!Array.isArray(data) || data.length !== this.k) {
      throw new ECInvalidParameter(`encode takes exactly k=${this.k} data shards, got ${Array.isArray(data) ? data.length : typeof data}`);
    }
    const len = this.shardLength(data);
    return this.withRegions(len, this.k + this.m, (ptr) => {
      const u8 = this.rt.heap.u8;
      data.forEach((s, i) => u8.set(s, ptr(i)));
      const parity = Array.from({ length: this.m }, (_, r) => ptr(this.k + r));
      this.coder.encode(data.map((_, i) => ptr(i)), parity, len);
      return parity.map((p) => this.rt.heap.u8.slice(p, p + len));
    });
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
    const avail = present.slice(0, this.k);
    const want = shards.flatMap((s, i) => (!s && (!opts.dataOnly || i < this.k) ? [i] : []));
    const out: Array<Uint8Array | null> = shards.map((s) => s ?? null);
    if (want.length === 0) return out;
    return this.withRegions(len, this.k + want.length, (ptr) => {
      const u8 = this.rt.heap.u8;
      avail.forEach((idx, j) => u8.set(shards[idx]!, ptr(j)));
      const dst = want.map((_, j) => ptr(this.k + j));
      this.coder.rebuild(avail, avail.map((_, j) => ptr(j)), want, dst, len);
      want.forEach((idx, j) => (out[idx] = this.rt.heap.u8.slice(dst[j]!, dst[j]! + len)));
      return out;
    });
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

  private withRegions<T>(len: number, count: number, fn: (ptr: (i: number) => number) => T): T {
    const stride = Math.ceil(Math.max(len, 1) / 16) * 16;
    return this.rt.heap.with(stride * count, (base) => fn((i) => base + i * stride));
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
