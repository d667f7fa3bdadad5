// fragmend/codec: Swift-compatible Reed-Solomon erasure coding in WebAssembly, for Node,
// browsers, Deno and Bun. Brings its three wasm builds inlined as base64 (decoded when first
// used), so it needs no file system, fetch or bundler support; fragmend/codec/core is the
// same API without them. Runtime-neutral: nothing here imports node:* modules.
import { registerWasm } from './wasm.js';
import { RELAXED_WASM_BASE64, SCALAR_WASM_BASE64, SIMD_WASM_BASE64 } from './wasm-inline.js';

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
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
