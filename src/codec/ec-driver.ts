// ECDriver: PyECLib's ECDriver over fragmend's wasm engine. encode, decode and reconstruct
// produce the same bytes as PyECLib on liberasurecode 1.6.2 (headers included), and refuse
// bad input with a typed error rather than returning bytes that might be wrong.
import { BACKENDS, backendName, EC_TYPES, isECType, type Backend, type ECType } from './backends.js';
import { MatrixCoder } from './coder.js';
import { crc32Short } from './crc.js';
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
import { loadRuntime, type KernelKind, type KernelPreference, type WasmRuntime } from './wasm.js';

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
  /**
   * Where the fragment sits in wasm memory, or -1. Taken when parsed: growing the memory for
   * scratch detaches views of it, but offsets stay good.
   */
  at: number;
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/**
 * A fresh copy of bytes [start, end) of wasm memory. new + set, not slice: V8's slice of a
 * view of wasm memory runs at about half the speed (measured on Node 20).
 */
export function copyOut(u8: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(u8.subarray(start, end));
  return out;
}

/**
 * Regions in a driver's wasm memory for the k + m fragments of one segment of up to
 * `capacity` bytes, and for that segment itself: the zero-copy side of ECDriver. encodeInto,
 * decodeInto and reconstructInto work on them in place and hand back views, so nothing is
 * copied out and nothing is allocated per call. The views are valid until the set is used
 * again or disposed, and until the wasm memory grows (which detaches them: ask again).
 */
export class FragmentSet {
  readonly k: number;
  readonly m: number;
  /** Largest segment the set holds. */
  readonly capacity: number;
  /** Bytes of the largest fragment (header included). */
  readonly fragmentCapacity: number;
  /** @internal */ readonly base: number;
  /** @internal */ readonly stride: number;
  /** @internal */ readonly segmentPtr: number;
  /** @internal */ readonly segmentBytes: number;
  /** @internal */ readonly lengths: number[];
  /** @internal */ readonly rt: WasmRuntime;
  private disposed = false;

  /** @internal */
  constructor(rt: WasmRuntime, k: number, m: number, capacity: number, w: 8 | 16) {
    this.rt = rt;
    this.k = k;
    this.m = m;
    this.capacity = capacity;
    const bs = blockSize(capacity, k, w);
    this.fragmentCapacity = HEADER_SIZE + bs;
    this.stride = align(this.fragmentCapacity, 64);
    // Room for k whole payloads, so that a decode can rebuild in place.
    this.segmentBytes = align(k * bs, 64);
    this.segmentPtr = rt.heap.alloc(this.segmentBytes + (k + m) * this.stride);
    this.base = this.segmentPtr + this.segmentBytes;
    this.lengths = new Array<number>(k + m).fill(0);
  }

  /**
   * A view of the segment region: write a segment here and pass `segment.subarray(0, len)` to
   * encodeInto, or pass it to decodeInto to have the segment rebuilt here.
   */
  get segment(): Uint8Array {
    this.check();
    return new Uint8Array(this.rt.heap.buffer, this.segmentPtr, this.segmentBytes);
  }

  /** Fragment i as last written into this set (empty if none was). */
  fragment(i: number): Uint8Array {
    this.check();
    return new Uint8Array(this.rt.heap.buffer, this.base + i * this.stride, this.lengths[i]!);
  }

  fragments(): Uint8Array[] {
    return this.lengths.map((_, i) => this.fragment(i));
  }

  /** @internal */
  slot(i: number): number {
    return this.base + i * this.stride;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.rt.heap.release(this.segmentPtr);
  }

  /** @internal */
  check(): void {
    if (this.disposed) throw new ECInvalidParameter('this fragment set has been disposed');
  }
}

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
  private scratchPtr = -1;
  private scratchBytes = 0;
  /** CRC-32 of bytes anywhere: in place when they are in wasm memory, in JS when short. */
  private readonly crc = (bytes: Uint8Array, legacy: boolean): number => {
    const at = this.rt.heap.offsetOf(bytes);
    if (at >= 0) return this.rt.crc32(at, bytes.length, legacy);
    if (bytes.length <= 512) return crc32Short(bytes, legacy);
    return this.rt.crc32Of(bytes, legacy);
  };

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
    const checked = ECDriver.checked(opts);
    const rt = opts.runtime ?? (await loadRuntime(opts.kernels));
    return new ECDriver(checked, rt);
  }

  /**
   * Throws what create() would throw for these options, without loading any wasm: for a
   * program that makes its drivers when first needed but wants bad settings refused up front.
   */
  static validate(opts: ECDriverOptions): void {
    ECDriver.checked(opts);
  }

  private static checked(opts: ECDriverOptions): Required<Omit<ECDriverOptions, 'kernels' | 'runtime' | 'allowNonMds'>> & { ecType: ECType } {
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
    return { k, m, ecType, chksumType, libecVersion, writeLegacyCrc: !!opts.writeLegacyCrc };
  }

  /** The wasm build running this driver's kernels. */
  get kernel(): KernelKind {
    return this.rt.kind;
  }

  /** Smallest segment liberasurecode encodes without padding beyond one word per fragment. */
  get minSegmentSize(): number {
    return this.k * (this.backend.w / 8);
  }

  /** k data fragments then m parity fragments, each with its 80-byte header. */
  encode(data: Uint8Array): Uint8Array[] {
    if (!(data instanceof Uint8Array)) throw new ECInvalidParameter('encode takes a Uint8Array');
    const n = this.k + this.m;
    const fsize = HEADER_SIZE + blockSize(data.length, this.k, this.backend.w);
    // Where and how long data is, before scratch may grow the memory and detach it.
    const src = this.rt.heap.offsetOf(data);
    const len = data.length;
    const base = this.scratch(n * fsize);
    this.encodeAt(data, src, len, (i) => base + i * fsize);
    // One allocation per fragment: below glibc's mmap threshold these come from a heap that is
    // reused, where one block of n fragments is a fresh mapping, page-faulted in, every call.
    const u8 = this.rt.heap.u8;
    return Array.from({ length: n }, (_, i) => copyOut(u8, base + i * fsize, base + (i + 1) * fsize));
  }

  /**
   * encode into a FragmentSet: its fragments, as views of wasm memory. When data is a view of
   * the set's segment (or of any wasm memory of this driver) it is not copied in either.
   */
  encodeInto(data: Uint8Array, set: FragmentSet): Uint8Array[] {
    if (!(data instanceof Uint8Array)) throw new ECInvalidParameter('encode takes a Uint8Array');
    this.checkSet(set);
    if (data.length > set.capacity) {
      throw new ECInvalidParameter(`a segment of ${data.length} bytes does not fit a fragment set for ${set.capacity}`);
    }
    const fsize = this.encodeAt(data, this.rt.heap.offsetOf(data), data.length, (i) => set.slot(i));
    set.lengths.fill(fsize);
    return set.fragments();
  }

  /** A FragmentSet for segments of up to `capacity` bytes, in this driver's wasm memory. */
  createFragmentSet(capacity: number): FragmentSet {
    if (!isIndex(capacity) || capacity < 1) throw new ECInvalidParameter(`invalid segment capacity ${String(capacity)}`);
    // Reserve the scratch that calls on segments of this size need (copying or not), so that
    // they do not grow the memory, and detach the views a caller holds, later.
    const bs = blockSize(capacity, this.k, this.backend.w);
    const n = this.k + this.m;
    this.scratch(Math.max(n * (HEADER_SIZE + bs), this.k * bs + this.k * align(bs, 16), n * (HEADER_SIZE + bs) + this.k * align(bs, 16)));
    return new FragmentSet(this.rt, this.k, this.m, capacity, this.backend.w);
  }

  /** The original bytes from any k or more fragments of one segment, in any order. */
  decode(fragments: readonly Uint8Array[]): Uint8Array {
    const parsed = this.parseFragments(fragments, 'decode');
    const { size, origDataSize } = parsed[0]!.md;
    const byIndex = this.uniqueByIndex(parsed);
    if (this.dataPresent(byIndex)) {
      const out = new Uint8Array(origDataSize);
      this.placeData(byIndex, size, out);
      return out;
    }
    const seg = this.scratch(this.k * size + this.k * align(size, 16));
    this.rebuildSegment(byIndex, size, seg, seg + this.k * size);
    return copyOut(this.rt.heap.u8, seg, seg + origDataSize);
  }

  /**
   * decode into `out` (at least the segment's size): returns the segment's size. When out is
   * in this driver's wasm memory and holds k whole payloads (a FragmentSet's segment does),
   * missing data is rebuilt straight into it.
   */
  decodeInto(fragments: readonly Uint8Array[], out: Uint8Array): number {
    if (!(out instanceof Uint8Array)) throw new ECInvalidParameter('decodeInto writes into a Uint8Array');
    const parsed = this.parseFragments(fragments, 'decode');
    const { size, origDataSize } = parsed[0]!.md;
    if (out.length < origDataSize) {
      throw new ECInvalidParameter(`the segment is ${origDataSize} bytes; the output holds only ${out.length}`);
    }
    const byIndex = this.uniqueByIndex(parsed);
    if (this.dataPresent(byIndex)) {
      this.placeData(byIndex, size, out.subarray(0, origDataSize));
      return origDataSize;
    }
    const at = this.rt.heap.offsetOf(out);
    if (at >= 0 && out.length >= this.k * size) {
      this.rebuildSegment(byIndex, size, at, this.scratch(this.k * align(size, 16)));
    } else {
      const seg = this.scratch(this.k * size + this.k * align(size, 16));
      this.rebuildSegment(byIndex, size, seg, seg + this.k * size);
      const u8 = this.rt.heap.u8;
      if (at >= 0) u8.copyWithin(at, seg, seg + origDataSize);
      else out.set(u8.subarray(seg, seg + origDataSize));
    }
    return origDataSize;
  }

  /**
   * The fragments at `missing` (sorted, as PyECLib returns them), rebuilt from the given
   * ones, each with a fresh header. An index that was given is returned as a copy.
   */
  reconstruct(fragments: readonly Uint8Array[], missing: readonly number[]): Uint8Array[] {
    const r = this.prepareReconstruct(fragments, missing);
    const { fragLen, wanted } = r;
    // Rebuilt fragments side by side in scratch, headers written in place, then copied out.
    const base = this.scratch(wanted.length * fragLen + this.k * align(r.size, 16));
    this.rebuildFragments(r, (j) => base + j * fragLen, base + wanted.length * fragLen);
    const u8 = this.rt.heap.u8;
    const rebuilt = new Map(wanted.map((idx, j) => [idx, copyOut(u8, base + j * fragLen, base + (j + 1) * fragLen)]));
    const given = (p: Parsed): Uint8Array => (p.at >= 0 ? copyOut(u8, p.at, p.at + fragLen) : p.fragment.slice());
    return r.order.map((idx) => rebuilt.get(idx) ?? given(r.byIndex.get(idx)!));
  }

  /**
   * reconstruct into a FragmentSet: fragment i goes to the set's slot i, and the result is
   * views of those slots. Indexes that were given are copied into their slots too.
   */
  reconstructInto(fragments: readonly Uint8Array[], missing: readonly number[], set: FragmentSet): Uint8Array[] {
    this.checkSet(set);
    const r = this.prepareReconstruct(fragments, missing);
    if (r.fragLen > set.stride) {
      throw new ECInvalidParameter(`fragments of ${r.fragLen} bytes do not fit a fragment set for ${set.capacity}-byte segments`);
    }
    this.rebuildFragments(r, (j) => set.slot(r.wanted[j]!), this.scratch(this.k * align(r.size, 16)));
    for (const idx of r.wanted) set.lengths[idx] = r.fragLen;
    const u8 = this.rt.heap.u8;
    for (const idx of r.order) {
      if (r.wanted.includes(idx)) continue;
      const p = r.byIndex.get(idx)!;
      if (p.at >= 0) u8.copyWithin(set.slot(idx), p.at, p.at + r.fragLen);
      else u8.set(p.fragment, set.slot(idx));
      set.lengths[idx] = r.fragLen;
    }
    return r.order.map((idx) => set.fragment(idx));
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

  /** Frees this driver's tables and scratch in wasm memory. */
  dispose(): void {
    this.coder.dispose();
    if (this.scratchPtr >= 0) this.rt.heap.release(this.scratchPtr);
    this.scratchPtr = -1;
    this.scratchBytes = 0;
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
      return { fragment, md, at: this.rt.heap.offsetOf(fragment) };
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

  /**
   * A region of at least `bytes` in wasm memory, kept from call to call: every call runs to
   * completion before the next, so one region serves them all.
   */
  private scratch(bytes: number): number {
    if (this.coder.isDisposed) throw new ECInvalidParameter('this driver has been disposed');
    if (bytes > this.scratchBytes) {
      if (this.scratchPtr >= 0) this.rt.heap.release(this.scratchPtr);
      this.scratchBytes = align(Math.max(bytes, 4096), 65536);
      this.scratchPtr = this.rt.heap.alloc(this.scratchBytes);
    }
    return this.scratchPtr;
  }

  private checkSet(set: FragmentSet): void {
    if (!(set instanceof FragmentSet) || set.rt !== this.rt || set.k !== this.k || set.m !== this.m) {
      throw new ECInvalidParameter('that fragment set was not made by a driver of this shape on this runtime');
    }
    set.check();
  }

  /** Encodes data into the fragment regions at slot(i); returns the fragment size. */
  private encodeAt(data: Uint8Array, src: number, len: number, slot: (i: number) => number): number {
    const { k, m, rt } = this;
    const n = k + m;
    const bs = blockSize(len, k, this.backend.w);
    const u8 = rt.heap.u8;
    const dataPtrs: number[] = [];
    const parityPtrs: number[] = [];
    for (let i = 0; i < k; i++) {
      const p = slot(i) + HEADER_SIZE;
      const start = Math.min(i * bs, len);
      const end = Math.min(start + bs, len);
      if (src >= 0) u8.copyWithin(p, src + start, src + end);
      else u8.set(data.subarray(start, end), p);
      if (end - start < bs) u8.fill(0, p + (end - start), p + bs);
      dataPtrs.push(p);
    }
    for (let i = k; i < n; i++) parityPtrs.push(slot(i) + HEADER_SIZE);
    this.coder.encode(dataPtrs, parityPtrs, bs);
    for (let i = 0; i < n; i++) this.writeHeaderAt(slot(i), i, bs, len);
    return HEADER_SIZE + bs;
  }

  /** True when every data fragment is there, so decoding is concatenation. */
  private dataPresent(byIndex: Map<number, Parsed>): boolean {
    for (let i = 0; i < this.k; i++) if (!byIndex.has(i)) return false;
    return true;
  }

  /** Copies the data payloads, trimmed to the segment's size, into out. */
  private placeData(byIndex: Map<number, Parsed>, size: number, out: Uint8Array): void {
    for (let i = 0; i < this.k; i++) {
      const start = i * size;
      if (start >= out.length) break;
      const frag = byIndex.get(i)!.fragment;
      out.set(frag.subarray(HEADER_SIZE, HEADER_SIZE + Math.min(size, out.length - start)), start);
    }
  }

  /** The first k fragments in index order: the ones liberasurecode rebuilds from. */
  private availOf(byIndex: Map<number, Parsed>, op: string): number[] {
    const avail = [...byIndex.keys()].sort((a, b) => a - b).slice(0, this.k);
    if (avail.length < this.k) throw new ECInsufficientFragments(`${op} needs ${this.k} distinct fragments, got ${avail.length}`);
    return avail;
  }

  /** Where a source payload is for the kernel: in place if it is in wasm memory, else copied to spare. */
  private sourcePtr(p: Parsed, size: number, spare: number): number {
    if (p.at >= 0) return p.at + HEADER_SIZE;
    this.rt.heap.u8.set(p.fragment.subarray(HEADER_SIZE, HEADER_SIZE + size), spare);
    return spare;
  }

  /**
   * The k data payloads laid end to end at seg (k * size bytes): present ones copied there,
   * missing ones rebuilt there. spare holds up to k payloads of parity copied in.
   */
  private rebuildSegment(byIndex: Map<number, Parsed>, size: number, seg: number, spare: number): void {
    const { k, rt } = this;
    const avail = this.availOf(byIndex, 'decode');
    const u8 = rt.heap.u8;
    const srcs: number[] = [];
    let spareAt = spare;
    for (const idx of avail) {
      const p = byIndex.get(idx)!;
      if (idx < k) {
        const dst = seg + idx * size;
        if (p.at >= 0) u8.copyWithin(dst, p.at + HEADER_SIZE, p.at + HEADER_SIZE + size);
        else u8.set(p.fragment.subarray(HEADER_SIZE, HEADER_SIZE + size), dst);
        srcs.push(dst);
      } else {
        srcs.push(this.sourcePtr(p, size, spareAt));
        spareAt += align(size, 16);
      }
    }
    const want: number[] = [];
    for (let i = 0; i < k; i++) if (!byIndex.has(i)) want.push(i);
    this.coder.rebuild(avail, srcs, want, want.map((i) => seg + i * size), size);
  }

  private prepareReconstruct(fragments: readonly Uint8Array[], missing: readonly number[]) {
    if (!Array.isArray(missing) || missing.length === 0) {
      throw new ECInvalidParameter('reconstruct needs a non-empty list of fragment indexes to rebuild');
    }
    for (const idx of missing) this.checkIndex(idx, 'index to reconstruct');
    const parsed = this.parseFragments(fragments, 'reconstruct');
    const byIndex = this.uniqueByIndex(parsed);
    const order = [...missing].sort((a, b) => a - b);
    const wanted = [...new Set(order)].filter((i) => !byIndex.has(i));
    const { size, origDataSize } = parsed[0]!.md;
    return { byIndex, order, wanted, size, origDataSize, fragLen: parsed[0]!.fragment.length };
  }

  /** Rebuilds fragments `wanted` (headers included) into the regions at slot(j). */
  private rebuildFragments(r: ReturnType<ECDriver['prepareReconstruct']>, slot: (j: number) => number, spare: number): void {
    if (r.wanted.length === 0) return;
    const { byIndex, wanted, size, origDataSize, fragLen } = r;
    const avail = this.availOf(byIndex, 'reconstruct');
    const srcs = avail.map((idx, j) => this.sourcePtr(byIndex.get(idx)!, size, spare + j * align(size, 16)));
    const dsts = wanted.map((_, j) => slot(j) + HEADER_SIZE);
    this.coder.rebuild(avail, srcs, wanted, dsts, size);
    const u8 = this.rt.heap.u8;
    wanted.forEach((idx, j) => {
      // A fragment longer than header + payload keeps its tail zero, as liberasurecode's does.
      if (fragLen > HEADER_SIZE + size) u8.fill(0, slot(j) + HEADER_SIZE + size, slot(j) + fragLen);
      this.writeHeaderAt(slot(j), idx, size, origDataSize);
    });
  }
}

export { backendName };
