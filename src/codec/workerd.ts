// fragmend/codec for workerd (Cloudflare Workers): workerd compiles no wasm from bytes at run
// time, so the three builds come in as WebAssembly.Module imports, which workerd (and
// wrangler, whose default rules make .wasm imports compiled modules) compiles when it loads
// the worker. The path is the same from src/codec and dist/codec.
import relaxed from '../../build/fragmend-relaxed.wasm';
import scalar from '../../build/fragmend-scalar.wasm';
import simd from '../../build/fragmend-simd.wasm';
import { registerWasm } from './wasm.js';

registerWasm({ relaxed, simd, scalar });

export * from './api.js';
