// fragmend/codec: Swift-compatible Reed-Solomon erasure coding in WebAssembly, for Node,
// browsers, Deno and Bun. Brings its three wasm builds inlined as base64 (decoded when first
// used), so it needs no file system, fetch or bundler support; fragmend/codec/core is the
// same API without them. Runtime-neutral: nothing here imports node:* modules.
import { registerWasm } from './wasm.js';
import { RELAXED_WASM_BASE64, SCALAR_WASM_BASE64, SIMD_WASM_BASE64 } from './wasm-inline.js';

type Base64Decoders = { fromBase64?: (s: string) => Uint8Array<ArrayBuffer> };
type BufferLike = { from(s: string, enc: 'base64'): Uint8Array };

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  // the runtime's own decoder when it has one (Uint8Array.fromBase64, Node's Buffer): a
  // charCodeAt loop costs a process that starts by the minute a millisecond or two
  const native = (Uint8Array as unknown as Base64Decoders).fromBase64;
  if (native) return native(b64);
  const NodeBuffer = (globalThis as { Buffer?: BufferLike }).Buffer;
  if (NodeBuffer) {
    const b = NodeBuffer.from(b64, 'base64');
    return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.length);
  }
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

registerWasm({
  relaxed: () => decodeBase64(RELAXED_WASM_BASE64),
  simd: () => decodeBase64(SIMD_WASM_BASE64),
  scalar: () => decodeBase64(SCALAR_WASM_BASE64),
});

export * from './api.js';
