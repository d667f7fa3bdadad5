// Loads the codec's wasm: the relaxed-SIMD build where the runtime validates it (its
// i8x16.relaxed_swizzle is one pshufb on x64 where i8x16.swizzle is three instructions), else
// the SIMD128 build, else the scalar build. All three produce the same bytes.
//
// Where the builds come from is up to the entry point: fragmend/codec registers all three
// inlined as base64 (no file system, fetch or bundler support needed); the workerd entry
// registers them as WebAssembly.Module imports (workerd compiles no wasm at run time);
// fragmend/codec/core registers none, and init({ wasm }) takes bytes, URLs, Responses or
// Modules. Nothing here imports the inlined builds.
import { ECBackendNotSupported, ECError, ECInvalidParameter, ECWasmUnavailable } from './errors.js';
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

export const KERNEL_KINDS: readonly KernelKind[] = ['relaxed', 'simd', 'scalar'];

/**
 * Where one build comes from: its bytes; a WebAssembly.Module compiled elsewhere (a bundler's
 * or workerd's wasm import); a URL (or URL string) that init() fetches, file: URLs read from
 * disk where a file system is at hand; or a Response, or a promise of one, from fetch().
 */
export type WasmSource = Uint8Array | ArrayBuffer | WebAssembly.Module | URL | string | Response | PromiseLike<Response>;

/** Sources per build. Builds left out are not used. */
export type WasmSources = Partial<Record<KernelKind, WasmSource>>;

export interface InitOptions {
  /**
   * The builds to use, replacing those the entry point brought (fragmend/codec: all three
   * inlined; the workerd entry: all three as Modules; fragmend/codec/core: none).
   */
  wasm?: WasmSources;
  /** The build that codecs created without a `kernels` option use from now on ('auto' unless set). */
  kernels?: KernelPreference;
}

export interface InitResult {
  /** The build codecs created without a `kernels` option now run. */
  kernel: KernelKind;
  /** Whether this runtime validates the SIMD128 build (or SIMD128 code at all, before its bytes are at hand). */
  simd: boolean;
  /** Whether this runtime validates the relaxed-SIMD build (likewise). */
  relaxedSimd: boolean;
}

/** A build given as bytes or Module, or a function making one (the inlined builds, decoded when first needed). */
type LocalSource = Uint8Array<ArrayBuffer> | WebAssembly.Module;
type Registered = WasmSource | (() => LocalSource);

/** One build: its source as given, and what it has become so far. */
interface Slot {
  source: Registered;
  bytes?: Uint8Array<ArrayBuffer>;
  module?: WebAssembly.Module;
  loading?: Promise<void>;
  compiled?: Promise<WebAssembly.Module>;
  supported?: boolean;
}

const slots: Partial<Record<KernelKind, Slot>> = {};
let defaultPreference: KernelPreference = 'auto';
/** Set once init({ wasm }) chose the builds: entry points then add none of their own. */
let chosenByUser = false;

const runtimes: Partial<Record<KernelKind, Promise<WasmRuntime>>> = {};

const isModule = (x: unknown): x is WebAssembly.Module => typeof WebAssembly !== 'undefined' && x instanceof WebAssembly.Module;
const isArrayBuffer = (x: unknown): x is ArrayBuffer => x instanceof ArrayBuffer || Object.prototype.toString.call(x) === '[object ArrayBuffer]';

function setSlot(kind: KernelKind, source: Registered): void {
  const slot: Slot = { source };
  // Bytes and Modules are taken as they come; bytes are copied so later edits by the caller
  // cannot change a build that was already checked.
  if (isModule(source)) slot.module = source;
  else if (ArrayBuffer.isView(source)) {
    const view = source as ArrayBufferView;
    slot.bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
  } else if (isArrayBuffer(source)) slot.bytes = new Uint8Array((source as ArrayBuffer).slice(0));
  slots[kind] = slot;
  runtimes[kind] = undefined;
}

/**
 * Adds an entry point's builds for the kinds that have none yet (after init({ wasm }), none):
 * how fragmend/codec and the workerd entry bring theirs. A function is called when the build
 * is first needed.
 */
export function registerWasm(sources: Partial<Record<KernelKind, Registered>>): void {
  if (chosenByUser) return;
  for (const kind of KERNEL_KINDS) {
    const source = sources[kind];
    if (source !== undefined && !slots[kind]) setSlot(kind, source);
  }
}

function checkKind(kind: string): asserts kind is KernelKind {
  if (!(KERNEL_KINDS as readonly string[]).includes(kind)) {
    throw new ECInvalidParameter(`unknown wasm build ${JSON.stringify(kind)} (relaxed, simd, scalar)`);
  }
}

function checkPreference(pref: unknown): asserts pref is KernelPreference {
  if (pref !== 'auto' && pref !== 'relaxed' && pref !== 'simd' && pref !== 'scalar') {
    throw new ECInvalidParameter(`invalid kernels option ${JSON.stringify(pref)} (auto, relaxed, simd, scalar)`);
  }
}

/** The build's bytes or Module if they are at hand without fetching. */
function localOf(kind: KernelKind): LocalSource | undefined {
  const slot = slots[kind];
  if (!slot) return undefined;
  if (!slot.bytes && !slot.module && typeof slot.source === 'function') {
    const made = slot.source();
    if (isModule(made)) slot.module = made;
    else slot.bytes = made;
  }
  return slot.module ?? slot.bytes;
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

function fileSystem(): { readFile(url: URL): Promise<Uint8Array> } | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  return proc?.getBuiltinModule?.('node:fs/promises') as { readFile(url: URL): Promise<Uint8Array> } | undefined;
}

function toURL(s: string | URL): URL {
  if (typeof s !== 'string') return s;
  const g = globalThis as { document?: { baseURI?: string }; location?: { href?: string } };
  try {
    return new URL(s, g.document?.baseURI ?? g.location?.href);
  } catch {
    throw new ECInvalidParameter(`${JSON.stringify(s)} is not a URL (pass an absolute URL, a file: URL, bytes or a WebAssembly.Module)`);
  }
}

/** Fetches (or reads) a remote source; every failure becomes an ECWasmUnavailable naming where it looked. */
async function loadRemote(kind: KernelKind, source: WasmSource): Promise<Uint8Array<ArrayBuffer>> {
  let where = 'a Response';
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    let response: Response;
    if (typeof source === 'string' || source instanceof URL) {
      const url = toURL(source);
      where = url.href;
      const fs = url.protocol === 'file:' ? fileSystem() : undefined;
      if (fs) {
        const b = await fs.readFile(url);
        bytes = new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
        return checkMagic(kind, where, bytes);
      }
      if (typeof fetch !== 'function') throw new Error('this runtime has no fetch()');
      response = await fetch(url);
    } else {
      response = await (source as PromiseLike<Response> | Response);
      if (!response || typeof (response as Response).arrayBuffer !== 'function') {
        throw new ECInvalidParameter(`the ${kind} wasm source is neither bytes, a Module, a URL nor a Response`);
      }
      if (response.url) where = response.url;
    }
    if (!response.ok) throw new ECWasmUnavailable(`could not fetch the ${kind} wasm build from ${where}: HTTP ${response.status} ${response.statusText}`.trimEnd());
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    if (e instanceof ECError) throw e;
    throw new ECWasmUnavailable(`could not load the ${kind} wasm build from ${where}: ${(e as Error)?.message ?? String(e)}`);
  }
  return checkMagic(kind, where, bytes);
}

function checkMagic(kind: KernelKind, where: string, bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  if (bytes.length < 8 || WASM_MAGIC.some((b, i) => bytes[i] !== b)) {
    const start = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new ECWasmUnavailable(`the ${kind} wasm build from ${where} is not a wasm module (it starts ${start || 'empty'})`);
  }
  return bytes;
}

/** Makes the build's bytes or Module available, fetching a remote source once. */
async function materialize(kind: KernelKind): Promise<void> {
  const slot = slots[kind];
  if (!slot || localOf(kind)) return;
  slot.loading ??= loadRemote(kind, slot.source as WasmSource).then(
    (bytes) => {
      slot.bytes = bytes;
      slot.supported = undefined;
    },
    (e: unknown) => {
      // A later init() may try again (the server may be back).
      slot.loading = undefined;
      throw e;
    },
  );
  await slot.loading;
}

// Smallest modules that use SIMD128 (v128.const) and relaxed SIMD (i8x16.relaxed_swizzle):
// whether this runtime has the feature, asked before a remote build is fetched.
const PROBE_HEAD = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0];
const V128_ZERO = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
const PROBES: Record<'relaxed' | 'simd', Uint8Array<ArrayBuffer>> = {
  simd: new Uint8Array([...PROBE_HEAD, 0x0a, 0x16, 1, 0x14, 0, ...V128_ZERO, 0x0b]),
  relaxed: new Uint8Array([...PROBE_HEAD, 0x0a, 0x2b, 1, 0x29, 0, ...V128_ZERO, ...V128_ZERO, 0xfd, 0x80, 0x02, 0x0b]),
};

/** The bytes of one build, for callers that instantiate it elsewhere (a worker, say). */
export function wasmBytesOf(kind: KernelKind): Uint8Array<ArrayBuffer> {
  checkKind(kind);
  const local = localOf(kind);
  if (local && !isModule(local)) return local;
  if (local) throw new ECWasmUnavailable(`the ${kind} wasm build was given as a WebAssembly.Module: its bytes are not at hand`);
  if (slots[kind]) throw new ECWasmUnavailable(`the ${kind} wasm build is not loaded yet: await init() first`);
  throw new ECWasmUnavailable(noBuildMessage(kind));
}

function noBuildMessage(kind?: KernelKind): string {
  const what = kind ? `the ${kind} wasm build` : 'a wasm build';
  return `no source for ${what}: import fragmend/codec (builds inlined), or pass init({ wasm: { ${kind ?? 'simd'}: ... } }) bytes, a URL or a WebAssembly.Module (fragmend/wasm/fragmend-${kind ?? 'simd'}.wasm)`;
}

/** Answers whether a build validates here; WebAssembly.validate unless a test says otherwise. */
export type Validator = (bytes: Uint8Array<ArrayBuffer>) => boolean;
const defaultValidator: Validator = (bytes) => WebAssembly.validate(bytes);
let validator: Validator = defaultValidator;

function forgetSupport(): void {
  for (const kind of KERNEL_KINDS) if (slots[kind]) slots[kind].supported = undefined;
}

/**
 * Replaces how builds are checked (and forgets earlier answers): tests use it to see the
 * choice made on a runtime without relaxed SIMD or without SIMD at all.
 */
export function setValidator(v: Validator | null): void {
  validator = v ?? defaultValidator;
  forgetSupport();
}

/**
 * Whether this runtime runs a build: a Module source did compile; bytes are validated; a
 * remote source not fetched yet is judged by a probe of its feature. The scalar build needs
 * nothing beyond WebAssembly itself.
 */
function supports(kind: KernelKind): boolean {
  if (kind === 'scalar') return true;
  const slot = slots[kind];
  if (slot?.supported !== undefined) return slot.supported;
  // a compiled Module is proof enough
  if (slot && (slot.module || isModule(slot.source))) return (slot.supported = true);
  // then the tiny probe: a runtime without the feature is told so before a build is decoded
  if (!validator(PROBES[kind])) {
    if (slot) slot.supported = false;
    return false;
  }
  const local = localOf(kind);
  if (!local) return true;
  return (slot!.supported = isModule(local) || validator(local));
}

/** True when this runtime validates the SIMD128 build. */
export function simdSupported(): boolean {
  return supports('simd');
}

/**
 * True when this runtime validates the relaxed-SIMD build: browsers and Node 22 and later do;
 * Node 20 only with --experimental-wasm-relaxed-simd.
 */
export function relaxedSimdSupported(): boolean {
  return supports('relaxed');
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
  if (slots.relaxed) slots.relaxed.supported = undefined;
  return relaxedSimdSupported();
}

/**
 * The build a preference means here, from the builds at hand (those not fetched yet judged
 * by feature probes: init() and codec creation fetch before they decide).
 */
export function resolveKernel(pref: KernelPreference = defaultPreference): KernelKind {
  switch (pref) {
    case 'scalar':
    case 'simd':
    case 'relaxed':
      if (!slots[pref]) throw new ECWasmUnavailable(noBuildMessage(pref));
      if (!supports(pref)) {
        throw new ECBackendNotSupported(`this runtime does not support WebAssembly ${pref === 'simd' ? 'SIMD128' : 'relaxed SIMD'}`);
      }
      return pref;
    default: {
      checkPreference(pref);
      const kind = KERNEL_KINDS.find((k) => slots[k] && supports(k));
      if (kind) return kind;
      if (KERNEL_KINDS.some((k) => slots[k])) {
        throw new ECBackendNotSupported(
          `this runtime supports none of the wasm builds given (${KERNEL_KINDS.filter((k) => slots[k]).join(', ')}): add the scalar build`,
        );
      }
      throw new ECWasmUnavailable(noBuildMessage());
    }
  }
}

/** resolveKernel after fetching what it needs: remote builds in preference order, until one runs here. */
async function chooseKernel(pref: KernelPreference = defaultPreference): Promise<KernelKind> {
  checkPreference(pref);
  for (const kind of pref === 'auto' ? KERNEL_KINDS : [pref]) {
    if (!slots[kind] || !supports(kind)) continue;
    await materialize(kind);
    if (supports(kind)) break;
  }
  return resolveKernel(pref);
}

function compiledModule(kind: KernelKind): Promise<WebAssembly.Module> {
  const slot = slots[kind]!;
  const local = localOf(kind)!;
  return (slot.compiled ??= (isModule(local) ? Promise.resolve(local) : WebAssembly.compile(local)).catch((e: unknown) => {
    slot.compiled = undefined;
    throw new ECWasmUnavailable(
      `could not compile the ${kind} wasm build: ${(e as Error)?.message ?? String(e)} ` +
        '(runtimes that compile no wasm at run time, such as workerd, need WebAssembly.Module sources: the workerd entry of fragmend/codec brings them)',
    );
  }));
}

async function instantiateKind(kind: KernelKind): Promise<WasmRuntime> {
  // The builds import nothing (asconfig.json turns abort off), so a plain instantiate does.
  const instance = await WebAssembly.instantiate(await compiledModule(kind), {});
  return new WasmRuntime(instance.exports as unknown as CodecExports, kind);
}

/**
 * Sets where the builds come from and which one codecs use by default, fetches what that
 * needs and instantiates it; resolves to what it chose. Optional: creating a codec without
 * it uses the entry point's builds ('auto'). Throws ECWasmUnavailable when no build is given
 * or one cannot be fetched or compiled, ECBackendNotSupported when the runtime cannot run the
 * build asked for.
 */
export async function init(options: InitOptions = {}): Promise<InitResult> {
  if (options.kernels !== undefined) checkPreference(options.kernels);
  if (options.wasm) {
    const entries = Object.entries(options.wasm).filter(([, v]) => v !== undefined);
    for (const [kind] of entries) checkKind(kind);
    if (entries.length === 0) throw new ECWasmUnavailable('init({ wasm }) was given no builds');
    for (const kind of KERNEL_KINDS) delete slots[kind];
    for (const kind of KERNEL_KINDS) runtimes[kind] = undefined;
    for (const [kind, source] of entries) setSlot(kind as KernelKind, source as WasmSource);
    chosenByUser = true;
  }
  if (options.kernels !== undefined) defaultPreference = options.kernels;
  const runtime = await loadRuntime(defaultPreference);
  return { kernel: runtime.kind, simd: supports('simd'), relaxedSimd: supports('relaxed') };
}

/**
 * The chosen build's bytes (or its Module when no bytes were given), for instantiating it
 * elsewhere: CodecPool sends it to its workers.
 */
export async function wasmSource(pref: KernelPreference = defaultPreference): Promise<{ kind: KernelKind; source: Uint8Array<ArrayBuffer> | WebAssembly.Module }> {
  const kind = await chooseKernel(pref);
  return { kind, source: localOf(kind)! };
}

/**
 * The shared runtime of a kernel kind. Coders created from it share one memory, which is
 * safe because every call runs to completion synchronously.
 */
export async function loadRuntime(pref: KernelPreference = defaultPreference): Promise<WasmRuntime> {
  const kind = await chooseKernel(pref);
  const made = (runtimes[kind] ??= instantiateKind(kind));
  made.catch(() => {
    if (runtimes[kind] === made) runtimes[kind] = undefined;
  });
  return made;
}

/** A runtime of its own (its own memory), for callers that want isolation. */
export async function createRuntime(pref: KernelPreference = defaultPreference): Promise<WasmRuntime> {
  return instantiateKind(await chooseKernel(pref));
}
