// ECDriver: PyECLib's ECDriver over fragmend's wasm engine. encode, decode and reconstruct
// produce the same bytes as PyECLib on liberasurecode 1.6.2 (headers included), and refuse
// bad input with a typed error rather than returning bytes that might be wrong.
import { BACKENDS, backendName, EC_TYPES, isECType, type Backend, type ECType } from './backends.js';
import { MatrixCoder } from './coder.js';
import {
  ECBackendNotSupported,
  ECBadChecksum,
  ECBadHeader,
  ECInsufficientFragments,
  ECInvalidParameter,
} from './errors.js';
import {
  DEFAULT_LIBEC_VERSION,
  HEADER_SIZE,
  readHeader,
  writeHeader,
  type FragmentMetadata,
} from './fragment.js';
import { blockSize, segmentInfo, type SegmentInfo } from './segments.js';
import { loadRuntime, type KernelPreference, type WasmRuntime } from './wasm.js';

/** liberasurecode 1.6.2's EC_MAX_FRAGMENTS: the largest k + m it (and so Swift 2.30) accepts. */
export const MAX_FRAGMENTS = 32;

export interface ECDriverOptions {
  k: number;
  m: number;
  ecType: ECType | string;
  /** 'inline_crc32' stores a CRC-32 of each payload in its header. Swift uses 'none'. */
  chksumType?: 'none' | 'inline_crc32';
  /** The libec_version written into headers; 1.6.2 (0x010602) by default. */
  libecVersion?: number;
  /** Write liberasurecode's legacy (pre-1.6.0) CRC, as LIBERASURECODE_WRITE_LEGACY_CRC does. */
  writeLegacyCrc?: boolean;
  /** Allow isa_l_rs_vand with 5 or more parity fragments, whose matrix is not MDS. */
  allowNonMds?: boolean;
  /** Which wasm build runs the kernels; 'auto' picks SIMD where the runtime has it. */
  kernels?: KernelPreference;
  /** Run on this wasm runtime instead of the shared one. */
  runtime?: WasmRuntime;
}

interface Parsed {
  fragment: Uint8Array;
  md: FragmentMetadata;
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

export class ECDriver {
  readonly k: number;
  readonly m: number;
  readonly ecType: ECType;
  readonly backend: Backend;
  readonly chksumType: 'none' | 'inline_crc32';
  readonly libecVersion: number;
  readonly writeLegacyCrc: boolean;
  private readonly rt: WasmRuntime;
  private readonly coder: MatrixCoder;
  private readonly crc = (bytes: Uint8Array, legacy: boolean): number => this.rt.crc32Of(bytes, legacy);

  private constructor(opts: Required<Omit<ECDriverOptions, 'kernels' | 'runtime' | 'allowNonMds'>> & { ecType: ECType }, rt: WasmRuntime) {
    this.k = opts.k;
    this.m = opts.m;
    this.ecType = opts.ecType;
    this.backend = BACKENDS[opts.ecType];
    this.chksumType = opts.chksumType;
    this.libecVersion = opts.libecVersion;
    this.writeLegacyCrc = opts.writeLegacyCrc;
    this.rt = rt;
    this.coder = MatrixCoder.create(rt, this.backend.matrixKind, this.backend.w, this.k, this.m);
  }

  static async create(opts: ECDriverOptions): Promise<ECDriver> {
    const { k, m, ecType } = opts;
    if (!isIndex(k) || k < 1) throw new ECInvalidParameter(`invalid number of data fragments (k): ${String(k)}`);
    if (!isIndex(m) || m < 1) throw new ECInvalidParameter(`invalid number of parity fragments (m): ${String(m)}`);
    if (k + m > MAX_FRAGMENTS) {
      throw new ECInvalidParameter(`k + m = ${k + m}: liberasurecode allows at most ${MAX_FRAGMENTS} fragments`);
    }
    if (typeof ecType !== 'string' || !isECType(ecType)) {
      throw new ECBackendNotSupported(`${String(ecType)} is not a supported ec_type (supported: ${EC_TYPES.join(', ')})`);
    }
    const backend = BACKENDS[ecType];
    if (backend.mdsMaxParity !== undefined && m > backend.mdsMaxParity && !opts.allowNonMds) {
      throw new ECBackendNotSupported(
        `${ecType} with m=${m}: its matrix is not MDS with more than ${backend.mdsMaxParity} parity fragments, ` +
          'so some losses cannot be rebuilt (Swift refuses such policies); pass allowNonMds to use it anyway',
      );
    }
    const chksumType = opts.chksumType ?? 'none';
    if (chksumType !== 'none' && chksumType !== 'inline_crc32') {
      throw new ECInvalidParameter(`${String(chksumType)} is not a valid chksum_type (none, inline_crc32)`);
    }
    const libecVersion = opts.libecVersion ?? DEFAULT_LIBEC_VERSION;
    if (!isIndex(libecVersion) || libecVersion < 1 || libecVersion > 0xffffffff) {
      throw new ECInvalidParameter(`invalid libecVersion: ${String(libecVersion)}`);
    }
    const rt = opts.runtime ?? (await loadRuntime(opts.kernels ?? 'auto'));
    return new ECDriver({ k, m, ecType, chksumType, libecVersion, writeLegacyCrc: !!opts.writeLegacyCrc }, rt);
  }

  /** The wasm build running this driver's kernels. */
  get kernel(): 'simd' | 'scalar' {
    return this.rt.kind;
  }

  /** Smallest segment liberasurecode encodes without padding beyond one word per fragment. */
  get minSegmentSize(): number {
    return this.k * (this.backend.w / 8);
  }

  /** k data fragments then m parity fragments, each with its 80-byte header. */
  encode(data: Uint8Array): Uint8Array[] {
    if (!(data instanceof Uint8Array)) throw new ECInvalidParameter('encode takes a Uint8Array');
    const { k, m, rt } = this;
    const n = k + m;
    const bs = blockSize(data.length, k, this.backend.w);
    const fsize = HEADER_SIZE + bs;
    const stride = Math.ceil(fsize / 16) * 16;
    return rt.heap.with(n * stride, (base) => {
      const u8 = rt.heap.u8;
      const payload = (i: number): number => base + i * stride + HEADER_SIZE;
      for (let i = 0; i < k; i++) {
        const start = Math.min(i * bs, data.length);
        const end = Math.min(start + bs, data.length);
        u8.set(data.subarray(start, end), payload(i));
        u8.fill(0, payload(i) + (end - start), payload(i) + bs);
      }
      const dataPtrs = Array.from({ length: k }, (_, i) => payload(i));
      const parityPtrs = Array.from({ length: m }, (_, i) => payload(k + i));
      this.coder.encode(dataPtrs, parityPtrs, bs);
      const out: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        this.writeHeaderAt(base + i * stride, i, bs, data.length);
        out.push(rt.heap.u8.slice(base + i * stride, base + i * stride + fsize));
      }
      return out;
    });
  }

  /** The original bytes from any k or more fragments of one segment, in any order. */
  decode(fragments: readonly Uint8Array[]): Uint8Array {
    const parsed = this.parseFragments(fragments, 'decode');
    const byIndex = this.uniqueByIndex(parsed);
    const first = parsed[0]!.md;
    const { k } = this;
    const size = first.size;
    const out = new Uint8Array(first.origDataSize);
    const place = (i: number, bytes: Uint8Array): void => {
      const start = i * size;
      if (start >= out.length) return;
      out.set(bytes.subarray(0, Math.min(size, out.length - start)), start);
    };
    const missingData = [];
    for (let i = 0; i < k; i++) {
      const p = byIndex.get(i);
      if (p) place(i, p.fragment.subarray(HEADER_SIZE, HEADER_SIZE + size));
      else missingData.push(i);
    }
    if (missingData.length > 0) {
      const rebuilt = this.rebuildPayloads(byIndex, missingData, size, 'decode');
      missingData.forEach((idx, j) => place(idx, rebuilt[j]!));
    }
    return out;
  }

  /**
   * The fragments at `missing` (sorted, as PyECLib returns them), rebuilt from the given
   * ones, each with a fresh header. An index that was given is returned as a copy.
   */
  reconstruct(fragments: readonly Uint8Array[], missing: readonly number[]): Uint8Array[] {
    if (!Array.isArray(missing) || missing.length === 0) {
      throw new ECInvalidParameter('reconstruct needs a non-empty list of fragment indexes to rebuild');
    }
    for (const idx of missing) this.checkIndex(idx, 'index to reconstruct');
    const parsed = this.parseFragments(fragments, 'reconstruct');
    const byIndex = this.uniqueByIndex(parsed);
    const wanted = [...new Set(missing)].sort((a, b) => a - b).filter((i) => !byIndex.has(i));
    const first = [...byIndex.values()].sort((a, b) => a.md.index - b.md.index)[0]!.md;
    const fragLen = parsed[0]!.fragment.length;
    const rebuilt = new Map<number, Uint8Array>();
    if (wanted.length > 0) {
      const payloads = this.rebuildPayloads(byIndex, wanted, first.size, 'reconstruct');
      wanted.forEach((idx, j) => {
        const frag = new Uint8Array(fragLen);
        frag.set(payloads[j]!, HEADER_SIZE);
        const meta = this.headerFields(idx, first.size, first.origDataSize, payloads[j]!);
        writeHeader(frag, 0, meta, this.crc, this.writeLegacyCrc);
        rebuilt.set(idx, frag);
      });
    }
    return [...missing]
      .sort((a, b) => a - b)
      .map((idx) => rebuilt.get(idx) ?? byIndex.get(idx)!.fragment.slice());
  }

  /** Which fragments (the first k not missing nor excluded) rebuild `missing`. */
  fragmentsNeeded(missing: readonly number[], exclude: readonly number[] = []): number[] {
    for (const idx of missing) this.checkIndex(idx, 'missing index');
    for (const idx of exclude) this.checkIndex(idx, 'excluded index');
    const skip = new Set([...missing, ...exclude]);
    const needed: number[] = [];
    for (let i = 0; i < this.k + this.m && needed.length < this.k; i++) if (!skip.has(i)) needed.push(i);
    if (needed.length < this.k) {
      throw new ECInsufficientFragments(
        `${skip.size} of ${this.k + this.m} fragments missing or excluded; k=${this.k} are needed`,
      );
    }
    return needed;
  }

  /** The fragment's parsed header; throws ECBadHeader when it is not a valid header. */
  getMetadata(fragment: Uint8Array): FragmentMetadata {
    return readHeader(fragment, this.crc);
  }

  /** True when the fragment has a valid header of this driver's backend and an intact payload. */
  isValidFragment(fragment: Uint8Array): boolean {
    try {
      const md = readHeader(fragment, this.crc);
      this.checkBelongs(md, 'fragment');
      return !md.chksumMismatch;
    } catch {
      return false;
    }
  }

  getSegmentInfo(dataLen: number, segmentSize: number): SegmentInfo {
    if (!isIndex(dataLen) || dataLen < 0) throw new ECInvalidParameter(`invalid data length ${String(dataLen)}`);
    if (!isIndex(segmentSize) || segmentSize < 1) throw new ECInvalidParameter(`invalid segment size ${String(segmentSize)}`);
    return segmentInfo(dataLen, segmentSize, this.k, this.backend.w);
  }

  /** Frees this driver's tables in wasm memory. */
  dispose(): void {
    this.coder.dispose();
  }

  // ------------------------------------------------------------------ internals

  private headerFields(index: number, size: number, origDataSize: number, payload: Uint8Array | null, payloadPtr = -1) {
    let payloadChksum = 0;
    if (this.chksumType === 'inline_crc32') {
      payloadChksum =
        payloadPtr >= 0 ? this.rt.crc32(payloadPtr, size, this.writeLegacyCrc) : this.crc(payload!, this.writeLegacyCrc);
    }
    return {
      index,
      size,
      origDataSize,
      chksumType: this.chksumType === 'inline_crc32' ? ('crc32' as const) : ('none' as const),
      payloadChksum,
      backendId: this.backend.id,
      backendVersion: this.backend.version,
      libecVersion: this.libecVersion,
    };
  }

  private writeHeaderAt(ptr: number, index: number, size: number, origDataSize: number): void {
    const meta = this.headerFields(index, size, origDataSize, null, ptr + HEADER_SIZE);
    writeHeader(this.rt.heap.u8, ptr, meta, (bytes, legacy) => this.rt.crc32(bytes.byteOffset, bytes.length, legacy), this.writeLegacyCrc);
  }

  private checkIndex(idx: unknown, what: string): void {
    if (!isIndex(idx) || idx < 0 || idx >= this.k + this.m) {
      throw new ECInvalidParameter(`${what} ${String(idx)} is out of range 0..${this.k + this.m - 1}`);
    }
  }

  private checkBelongs(md: FragmentMetadata, what: string): void {
    if (md.backendId !== this.backend.id) {
      throw new ECBadHeader(`${what} was written by ${md.backendName}, not ${this.ecType}`);
    }
    if (md.backendVersion !== this.backend.version) {
      throw new ECBadHeader(
        `${what} has ${this.ecType} backend version 0x${md.backendVersion.toString(16)}, expected 0x${this.backend.version.toString(16)}`,
      );
    }
    if (md.index >= this.k + this.m) {
      throw new ECBadHeader(`${what} has index ${md.index}, out of range for k=${this.k}, m=${this.m}`);
    }
  }

  /** Validates a fragment set of one segment and drops fragments whose payload CRC fails. */
  private parseFragments(fragments: readonly Uint8Array[], op: string): Parsed[] {
    if (!Array.isArray(fragments) || fragments.length === 0) {
      throw new ECInsufficientFragments(`${op} got no fragments; it needs at least k=${this.k}`);
    }
    const len = fragments[0]?.length;
    const parsed: Parsed[] = fragments.map((fragment, i) => {
      const what = `fragment ${i}`;
      if (!(fragment instanceof Uint8Array)) throw new ECInvalidParameter(`${what} is not a Uint8Array`);
      if (fragment.length !== len) {
        throw new ECInvalidParameter(`fragments have mixed sizes: fragment 0 is ${len} bytes, ${what} is ${fragment.length}`);
      }
      const md = readHeader(fragment, this.crc, what);
      this.checkBelongs(md, what);
      return { fragment, md };
    });
    const ref = parsed[0]!.md;
    for (const { md } of parsed) {
      if (md.origDataSize !== ref.origDataSize || md.size !== ref.size) {
        throw new ECBadHeader(
          `fragments belong to different segments: index ${ref.index} has orig_data_size ${ref.origDataSize} and size ${ref.size}, ` +
            `index ${md.index} has ${md.origDataSize} and ${md.size}`,
        );
      }
    }
    if (ref.origDataSize > ref.size * this.k) {
      throw new ECBadHeader(`orig_data_size ${ref.origDataSize} exceeds k=${this.k} payloads of ${ref.size} bytes`);
    }
    if (this.backend.w === 16 && ref.size % 2 !== 0) {
      throw new ECBadHeader(`payload size ${ref.size} is odd, impossible for ${this.ecType}`);
    }
    const intact = parsed.filter((p) => !p.md.chksumMismatch);
    const distinct = new Set(intact.map((p) => p.md.index)).size;
    if (distinct < this.k) {
      const corrupt = parsed.length - intact.length;
      throw this.insufficient(op, distinct, corrupt);
    }
    return intact;
  }

  private insufficient(op: string, distinct: number, corrupt: number): Error {
    const msg =
      `${op} needs ${this.k} distinct fragments, got ${distinct}` +
      (corrupt > 0 ? ` (${corrupt} dropped for a payload checksum mismatch)` : '');
    return corrupt > 0 && distinct + corrupt >= this.k ? new ECBadChecksum(msg) : new ECInsufficientFragments(msg);
  }

  private uniqueByIndex(parsed: Parsed[]): Map<number, Parsed> {
    const byIndex = new Map<number, Parsed>();
    for (const p of parsed) if (!byIndex.has(p.md.index)) byIndex.set(p.md.index, p);
    return byIndex;
  }

  /** Rebuilds the payloads of `want` from the first k available fragments in index order. */
  private rebuildPayloads(byIndex: Map<number, Parsed>, want: number[], size: number, op: string): Uint8Array[] {
    const { k, rt } = this;
    const avail = [...byIndex.keys()].sort((a, b) => a - b).slice(0, k);
    if (avail.length < k) throw new ECInsufficientFragments(`${op} needs ${k} distinct fragments, got ${avail.length}`);
    const stride = Math.ceil(Math.max(size, 1) / 16) * 16;
    return rt.heap.with((k + want.length) * stride, (base) => {
      const u8 = rt.heap.u8;
      const src = avail.map((idx, j) => {
        u8.set(byIndex.get(idx)!.fragment.subarray(HEADER_SIZE, HEADER_SIZE + size), base + j * stride);
        return base + j * stride;
      });
      const dst = want.map((_, j) => base + (k + j) * stride);
      this.coder.rebuild(avail, src, want, dst, size);
      return dst.map((p) => rt.heap.u8.slice(p, p + size));
    });
  }
}

export { backendName };
