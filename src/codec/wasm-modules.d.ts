// A .wasm import is a compiled WebAssembly.Module (workerd, wrangler and most bundlers'
// wasm-module rules).
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
