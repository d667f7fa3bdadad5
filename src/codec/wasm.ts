// Loads the codec's wasm: the relaxed-SIMD build where the runtime validates it (its
// i8x16.relaxed_swizzle is one pshufb on x64 where i8x16.swizzle is three instructions), else
// the SIMD128 build, else the scalar build. All three are inlined as base64
// (src/codec/wasm-inline.ts, made by the build), so loading needs no file system, fetch or
// bundler support. All three produce the same bytes.
import { instantiate } from '@assemblyscript/loader';
import { RELAXED_WASM_BASE64, SCALAR_WASM_BASE64, SIMD_WASM_BASE64 } from './wasm-inline.js';
import { WasmHeap } from './heap.js';

export type KernelPreference = 'auto' | 'relaxed' | 'simd' | 'scalar';
export type KernelKind = 'relaxed' | 'simd' | 'scalar';

export interface CodecExports {
  memory: WebAssembly.Memory;
  init(): void;
  heapBase(): number;
  kernelKind(): number;
  mul(w: number, a: number, b: number): number;
  inv(w: number, a: number): number;
  generatorMatrix(kind: number, k: number, m: number, out: number): number;
  invertMatrix(w: number, n: number, mat: number, inv: number): number;
  rowTimesMatrix(w: number, k: number, row: number, mat: number, out: number): void;
  buildTables(w: number, count: number, coefs: number, tbl: number): void;
  dot8(len: number, k: number, rows: number, xor: number, tbl: number, srcs: number, dsts: number): void;
  dot16(len: number, k: number, rows: number, xor: number, tbl: number, srcs: number, dsts: number): void;
  xorRegions(len: number, k: number, srcs: number, dst: number): void;
  kernelGroupSize(w: number, xor: number): number;
  crc32(crc: number, ptr: number, len: number): number;
  crc32Legacy(crc: number, ptr: number, len: number): number;
}

/** One instantiated codec module and the heap over its memory. */
export class WasmRuntime {
  readonly exports: CodecExports;
  readonly heap: WasmHeap;
  readonly kind: KernelKind;

  constructor(exports: CodecExports, kind: KernelKind) {
    this.exports = exports;
    this.kind = kind;
    exports.init();
    this.heap = new WasmHeap(exports.memory, exports.heapBase());
  }

  /** Copies 32-bit values into the heap at ptr. */
  writeU32(ptr: number, values: ArrayLike<number>): void {
    const u8 = this.heap.u8;
    const dv = new DataView(u8.buffer, u8.byteOffset);
    for (let i = 0; i < values.length; i++) dv.setUint32(ptr + 4 * i, values[i]! >>> 0, true);
  }

  readU32(ptr: number, count: number): Uint32Array {
    const u8 = this.heap.u8;
    const dv = new DataView(u8.buffer, u8.byteOffset);
    const out = new Uint32Array(count);
    for (let i = 0; i < count; i++) out[i] = dv.getUint32(ptr + 4 * i, true);
    return out;
  }

  /** zlib's CRC-32 of bytes already in the heap. */
  crc32(ptr: number, len: number, legacy = false): number {
    return (legacy ? this.exports.crc32Legacy(0, ptr, len) : this.exports.crc32(0, ptr, len)) >>> 0;
  }

  /** CRC-32 of bytes anywhere: copies them into the heap first. */
  crc32Of(bytes: Uint8Array, legacy = false): number {
    return this.heap.with(bytes.length, (p) => {
      this.heap.u8.set(bytes, p);
      return this.crc32(p, bytes.length, legacy);
    });
  }
}

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const BASE64: Record<KernelKind, string> = {
  relaxed: RELAXED_WASM_BASE64,
  simd: SIMD_WASM_BASE64,
  scalar: SCALAR_WASM_BASE64,
};

const wasmBytes: Partial<Record<KernelKind, Uint8Array<ArrayBuffer>>> = {};

/** The bytes of one build, for callers that instantiate it elsewhere (a worker, say). */
export function wasmBytesOf(kind: KernelKind): Uint8Array<ArrayBuffer> {
  return (wasmBytes[kind] ??= decodeBase64(BASE64[kind]));
}

/** Answers whether a build validates here; WebAssembly.validate unless a test says otherwise. */
export type Validator = (bytes: Uint8Array<ArrayBuffer>) => boolean;
let validator: Validator = (bytes) => WebAssembly.validate(bytes);

/**
 * Replaces how builds are checked (and forgets earlier answers): tests use it to see the
 * choice made on a runtime without relaxed SIMD or without SIMD at all.
 */
export function setValidator(v: Validator | null): void {
  validator = v ?? ((bytes) => WebAssembly.validate(bytes));
  supported.relaxed = supported.simd = undefined;
}

const supported: Partial<Record<'relaxed' | 'simd', boolean | undefined>> = {};

/** True when this runtime validates the SIMD128 build. */
export function simdSupported(): boolean {
  return (supported.simd ??= validator(wasmBytesOf('simd')));
}

/**
 * True when this runtime validates the relaxed-SIMD build: browsers and Node 22 and later do;
 * Node 20 only with --experimental-wasm-relaxed-simd.
 */
export function relaxedSimdSupported(): boolean {
  return (supported.relaxed ??= validator(wasmBytesOf('relaxed')));
}

/**
 * Opt-in for Node 20, whose V8 validates relaxed SIMD only with --experimental-wasm-relaxed-simd:
 * sets that flag at run time (through process.getBuiltinModule, so nothing here imports
 * node:*) and says whether the relaxed build now validates. Call it before the first codec
 * is created. Node documents run-time flag changes as unsupported in general; this flag is
 * read when a module is validated, which is what the tests check (relaxed = SIMD = scalar,
 * byte for byte). Elsewhere it changes nothing and answers relaxedSimdSupported().
 */
export function enableRelaxedSimd(): boolean {
  if (relaxedSimdSupported()) return true;
  const v8 = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:v8') as
    | { setFlagsFromString?: (flags: string) => void }
    | undefined;
  if (!v8?.setFlagsFromString) return false;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  supported.relaxed = undefined;
  return relaxedSimdSupported();
}

export function resolveKernel(pref: KernelPreference = 'auto'): KernelKind {
  switch (pref) {
    case 'scalar':
      return 'scalar';
    case 'simd':
      if (!simdSupported()) throw new Error('this runtime does not support WebAssembly SIMD128');
      return 'simd';
    case 'relaxed':
      if (!relaxedSimdSupported()) throw new Error('this runtime does not support WebAssembly relaxed SIMD');
      return 'relaxed';
    default:
      return relaxedSimdSupported() ? 'relaxed' : simdSupported() ? 'simd' : 'scalar';
  }
}

const runtimes: Partial<Record<KernelKind, Promise<WasmRuntime>>> = {};

/**
 * The shared runtime of a kernel kind. Coders created from it share one memory, which is
 * safe because every call runs to completion synchronously.
 */
export function loadRuntime(pref: KernelPreference = 'auto'): Promise<WasmRuntime> {
  const kind = resolveKernel(pref);
  return (runtimes[kind] ??= instantiate<Record<string, unknown>>(wasmBytesOf(kind), {}).then(
    ({ exports }) => new WasmRuntime(exports as unknown as CodecExports, kind),
  ));
}

/** A runtime of its own (its own memory), for callers that want isolation. */
export async function createRuntime(pref: KernelPreference = 'auto'): Promise<WasmRuntime> {
  const kind = resolveKernel(pref);
  const { exports } = await instantiate<Record<string, unknown>>(wasmBytesOf(kind), {});
  return new WasmRuntime(exports as unknown as CodecExports, kind);
}
