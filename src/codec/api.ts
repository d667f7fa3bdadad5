// The codec's public API, shared by every entry point (index.ts, core.ts, workerd.ts), which
// differ only in the wasm builds they bring. Runtime-neutral: nothing here imports node:*
// modules, and nothing here brings a wasm build.
export { ECDriver, FragmentSet, MAX_FRAGMENTS, type ECDriverOptions } from './ec-driver.js';
export { ReedSolomon, ShardSet, type ReedSolomonOptions, type Shards } from './reed-solomon.js';
export { BACKENDS, EC_TYPES, backendName, isECType, type Backend, type ECType } from './backends.js';
export {
  ECError,
  ECInvalidParameter,
  ECBackendNotSupported,
  ECBadHeader,
  ECBadChecksum,
  ECInsufficientFragments,
  ECSingularMatrix,
  ECWasmUnavailable,
} from './errors.js';
export {
  HEADER_SIZE,
  FRAGMENT_MAGIC,
  DEFAULT_LIBEC_VERSION,
  readHeader,
  type FragmentMetadata,
  type ChecksumType,
} from './fragment.js';
export { crc32Short } from './crc.js';
export { segmentInfo, blockSize, alignedDataSize, type SegmentInfo } from './segments.js';
export {
  init,
  wasmSource,
  loadRuntime,
  createRuntime,
  simdSupported,
  relaxedSimdSupported,
  enableRelaxedSimd,
  resolveKernel,
  setValidator,
  wasmBytesOf,
  KERNEL_KINDS,
  type KernelPreference,
  type KernelKind,
  type Validator,
  type InitOptions,
  type InitResult,
  type WasmSource,
  type WasmSources,
  WasmRuntime,
} from './wasm.js';
export { CodecPool, defaultWorkerFactory, type CodecPoolOptions, type WorkerFactory, type WorkerPort } from './pool.js';
export {
  encodeSegments,
  encodeArchives,
  rebuildArchive,
  rebuildArchiveStream,
  type ByteSource,
  type EncodeStreamOptions,
  type ArchiveStreamOptions,
  type RebuildOptions,
} from './stream.js';
