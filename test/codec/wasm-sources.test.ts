// Where the wasm comes from: fragmend/codec/core brings no build and takes bytes, file: URLs,
// Responses or Modules through init(); it fails with typed errors when it has none or cannot
// load one. (This file imports only core.ts, so the inlined builds are never registered.)
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  ECBackendNotSupported,
  ECDriver,
  ECInvalidParameter,
  ECWasmUnavailable,
  init,
  ReedSolomon,
  setValidator,
  wasmBytesOf,
  wasmSource,
} from '../../src/codec/core.js';
import { sha } from '../helpers/digest.js';
import { prngBytes } from '../helpers/prng.js';

setFlagsFromString('--experimental-wasm-relaxed-simd');
const build = (kind: string) => new URL(`../../build/fragmend-${kind}.wasm`, import.meta.url);
const bytesOf = (kind: string) => new Uint8Array(readFileSync(build(kind)));

async function roundTrip(kernels?: 'simd' | 'scalar' | 'relaxed') {
  const ec = await ECDriver.create({ ecType: 'isa_l_rs_vand', k: 4, m: 2, kernels });
  const data = prngBytes(7, 100_000);
  const frags = ec.encode(data);
  expect(sha(ec.decode(frags.slice(2)))).toBe(sha(data));
  expect(ec.reconstruct(frags.slice(2), [0, 1]).map(sha)).toEqual(frags.slice(0, 2).map(sha));
  return ec.kernel;
}

// In order: the module's state carries from one test to the next.
describe.sequential('fragmend/codec/core', () => {
  it('has no build until init() gives one', async () => {
    await expect(ECDriver.create({ ecType: 'isa_l_rs_vand', k: 4, m: 2 })).rejects.toThrow(ECWasmUnavailable);
    await expect(init()).rejects.toMatchObject({ name: 'ECWasmUnavailable', code: 'EBACKENDNOTAVAIL', message: /no source/ });
    expect(() => wasmBytesOf('simd')).toThrow(ECWasmUnavailable);
  });

  it('rejects bad options with typed errors', async () => {
    await expect(init({ kernels: 'fast' as never })).rejects.toThrow(ECInvalidParameter);
    await expect(init({ wasm: { avx: bytesOf('simd') } as never })).rejects.toThrow(ECInvalidParameter);
    await expect(init({ wasm: {} })).rejects.toThrow(ECWasmUnavailable);
    await expect(init({ wasm: { simd: 'not a url' } })).rejects.toThrow(ECInvalidParameter);
  });

  it('reports a build it cannot load, naming where it looked', async () => {
    const missing = new URL('../../build/no-such.wasm', import.meta.url);
    await expect(init({ wasm: { simd: missing } })).rejects.toMatchObject({ name: 'ECWasmUnavailable', message: expect.stringContaining(missing.href) });
    await expect(init({ wasm: { simd: new Response('gone', { status: 404, statusText: 'Not Found' }) } })).rejects.toThrow(/HTTP 404/);
    await expect(init({ wasm: { simd: Promise.resolve(new Response('<html>')) } })).rejects.toThrow(/not a wasm module/);
    // A fetch that fails outright (nothing listens on port 1).
    await expect(init({ wasm: { simd: 'http://127.0.0.1:1/fragmend-simd.wasm' } })).rejects.toThrow(ECWasmUnavailable);
  });

  it('takes file: URLs (read from disk), and picks SIMD over scalar', async () => {
    const chosen = await init({ wasm: { simd: build('simd'), scalar: build('scalar').href } });
    expect(chosen).toMatchObject({ kernel: 'simd', simd: true });
    expect(await roundTrip()).toBe('simd');
    expect(await roundTrip('scalar')).toBe('scalar');
    // Not given, so not available, even though this runtime could run it.
    await expect(ECDriver.create({ ecType: 'isa_l_rs_vand', k: 4, m: 2, kernels: 'relaxed' })).rejects.toThrow(ECWasmUnavailable);
  });

  it('takes Responses, and init({ kernels }) sets the default', async () => {
    const respond = (kind: string) => new Response(bytesOf(kind), { headers: { 'content-type': 'application/wasm' } });
    expect((await init({ wasm: { simd: respond('simd'), scalar: Promise.resolve(respond('scalar')) }, kernels: 'scalar' })).kernel).toBe('scalar');
    expect(await roundTrip()).toBe('scalar');
    expect(await roundTrip('auto' as never)).toBe('simd');
  });

  it('takes precompiled Modules, and counts them as supported', async () => {
    const module = await WebAssembly.compile(bytesOf('simd'));
    setValidator(() => false);
    try {
      expect((await init({ wasm: { simd: module }, kernels: 'auto' })).kernel).toBe('simd');
      expect(await roundTrip()).toBe('simd');
      expect((await createRuntime()).exports.kernelKind()).toBe(1);
      expect((await wasmSource()).source).toBe(module);
      expect(() => wasmBytesOf('simd')).toThrow(/Module/);
    } finally {
      setValidator(null);
    }
  });

  it('takes bytes, and falls back to scalar where SIMD does not validate', async () => {
    await init({ wasm: { relaxed: bytesOf('relaxed'), simd: bytesOf('simd').buffer, scalar: bytesOf('scalar') } });
    setValidator(() => false);
    try {
      expect((await init()).kernel).toBe('scalar');
      expect(await roundTrip()).toBe('scalar');
      await expect(ReedSolomon.create({ k: 4, m: 2, kernels: 'simd' })).rejects.toThrow(ECBackendNotSupported);
    } finally {
      setValidator(null);
    }
    expect((await init()).kernel).toBe('relaxed');
    expect(await roundTrip()).toBe('relaxed');
  });
});
