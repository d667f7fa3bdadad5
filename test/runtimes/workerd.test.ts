// fragmend/codec in workerd (the Cloudflare Workers runtime), which compiles no wasm from
// bytes at run time: the workerd entry brings its builds as WebAssembly.Module imports. A
// worker bundled as wrangler bundles one (esbuild, the workerd condition, .wasm imports as
// wasm modules) runs PyECLib's golden cases with the SIMD build, with the scalar build and
// with whatever 'auto' picks. Skipped where the workerd binary is missing, except under CI,
// where that fails.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGolden, goldenCases, type GoldenResult } from '../helpers/golden-subset.js';
import { bundleWorker, startWorkerd, workerdBinary, type Workerd } from '../helpers/workerd.js';

const CI = process.env.CI === 'true';
const binary = await workerdBinary();

// Locally a missing binary only skips the suite below; under CI it fails here.
describe.runIf(!!binary || CI)('workerd', () => {
  it('is installed (npm install: the workerd package and its platform binary)', () => {
    expect(binary, 'no workerd binary: the workerd devDependency or its @cloudflare/workerd-* optional dependency is missing').toBeDefined();
  });
});

describe.runIf(binary)('fragmend/codec in workerd', () => {
  const cases = goldenCases();
  let dir: string;
  let server: Workerd | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fragmend-workerd-'));
    const bundle = await bundleWorker({
      entry: fileURLToPath(new URL('./workerd-golden-worker.js', import.meta.url)),
      outDir: dir,
      // The repository's own workerd entry (the package test covers the published one).
      alias: { 'fragmend/codec': fileURLToPath(new URL('../../src/codec/workerd.ts', import.meta.url)) },
    });
    expect(bundle.wasm.sort()).toEqual(['fragmend-relaxed.wasm', 'fragmend-scalar.wasm', 'fragmend-simd.wasm']);
    server = await startWorkerd(binary!, dir, bundle);
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function run(kernels: string): Promise<{ auto: string; kernel: string; kernelKind: number; moduleSource: boolean; results: GoldenResult[] }> {
    const res = await fetch(`${server!.url}/golden?kernels=${kernels}`, { method: 'POST', body: JSON.stringify({ cases }) });
    const body = (await res.json()) as { error?: string; stack?: string };
    expect(body.error, `${body.stack ?? ''}\n${server!.output()}`).toBeUndefined();
    return body as never;
  }

  it.each([
    ['simd', 1],
    ['scalar', 0],
  ] as const)('the %s build matches PyECLib', async (kernels, kernelKind) => {
    const out = await run(kernels);
    expect(out.kernel).toBe(kernels);
    // What the module itself says it is: 0 scalar, 1 SIMD128, 2 relaxed SIMD.
    expect(out.kernelKind).toBe(kernelKind);
    // The build came as a compiled Module, not as bytes workerd would refuse to compile.
    expect(out.moduleSource).toBe(true);
    expectGolden(cases, out.results, kernels);
  });

  it("'auto' picks the relaxed-SIMD build (workerd's V8 has it) and matches PyECLib", async () => {
    const out = await run('auto');
    expect(out.auto).toBe('relaxed');
    expect(out.kernel).toBe('relaxed');
    expect(out.kernelKind).toBe(2);
    expectGolden(cases, out.results, 'relaxed');
  });
});
