// fragmend/codec/core: the codec's API without any wasm build inside. Pass the builds to
// init() before creating a codec: URLs (fragmend/wasm/fragmend-simd.wasm and its siblings,
// served or as file: URLs), bytes, Responses or WebAssembly.Modules:
//
//   await init({ wasm: { simd: new URL('fragmend-simd.wasm', base), scalar: ... } });
export * from './api.js';
