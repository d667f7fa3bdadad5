// The package as published: `npm pack`, installed into a fresh project, then used the way a
// user would. Node imports fragmend/codec (builds inlined) and fragmend/codec/core (given a
// file: URL to fragmend/wasm/fragmend-simd.wasm); workerd runs a worker bundled from the
// installed package with the workerd condition; a CodecPool runs the installed worker.js.
// publint and arethetypeswrong check the tarball and must find nothing.
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGolden, goldenCases, type GoldenResult } from '../helpers/golden-subset.js';
import { freshProject, packFragmend, tempProjectDir } from '../helpers/pack.js';
import { bundleWorker, startWorkerd, workerdBinary, type Workerd } from '../helpers/workerd.js';

const run = promisify(execFile);
const CI = process.env.CI === 'true';
const binary = await workerdBinary();
const cases = goldenCases();

// Runs in the consumer project: argv = entry, kernels; prints runGolden's answer as JSON.
const NODE_CHECK = `
import { readFileSync } from 'node:fs';
import { runGolden } from './golden-run.js';
const [entry, kernels] = process.argv.slice(2);
const codec = await import(entry);
let beforeInit = 'created';
if (entry === 'fragmend/codec/core') {
  // No build inside: creating a codec before init() must fail with a typed error.
  await codec.ECDriver.create({ ecType: 'isa_l_rs_vand', k: 4, m: 2 }).catch((e) => (beforeInit = e.name));
  await codec.init({ wasm: { simd: new URL(import.meta.resolve('fragmend/wasm/fragmend-simd.wasm')) } });
}
const cases = JSON.parse(readFileSync('cases.json', 'utf8'));
const out = await runGolden(codec, cases, kernels);
let pool;
if (entry === 'fragmend/codec') {
  // The pool's workers get their build from the pool, not from an import of their own.
  const c = cases.find((x) => x.length > 65536);
  const p = await codec.CodecPool.create({ ecType: c.ec_type, k: c.k, m: c.m, workers: 2 });
  const ec = await codec.ECDriver.create({ ecType: c.ec_type, k: c.k, m: c.m });
  const data = new Uint8Array(300_000).map((_, i) => (i * 131) >> 3);
  const [a, b] = [await p.encode(data, 65536), [0, 1, 2, 3, 4].map((s) => ec.encode(data.subarray(s * 65536, (s + 1) * 65536)))];
  pool = { kernel: p.kernel, same: JSON.stringify(a.map((f) => f.map((x) => [...x.subarray(0, 200)]))) === JSON.stringify(b.map((f) => f.map((x) => [...x.subarray(0, 200)]))) };
  await p.close();
}
console.log(JSON.stringify({ beforeInit, pool, ...out }));
`;

type Answer = { auto: string; kernel: string; kernelKind: number; moduleSource: boolean; beforeInit: string; pool?: { kernel: string; same: boolean }; results: GoldenResult[] };

describe('the packed package', () => {
  let tarball: string;
  let dir: string;
  let server: Workerd | undefined;

  beforeAll(async () => {
    tarball = await packFragmend();
    dir = await freshProject(tempProjectDir(), tarball);
    const here = new URL('./', import.meta.url);
    copyFileSync(new URL('golden-run.js', here), join(dir, 'golden-run.js'));
    copyFileSync(new URL('workerd-golden-worker.js', here), join(dir, 'workerd-golden-worker.js'));
    writeFileSync(join(dir, 'node-check.mjs'), NODE_CHECK);
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (tarball) rmSync(dirname(tarball), { recursive: true, force: true });
  });

  async function node(entry: string, kernels: string): Promise<Answer> {
    const { stdout } = await run(process.execPath, ['node-check.mjs', entry, kernels], { cwd: dir, maxBuffer: 16 << 20 });
    return JSON.parse(stdout) as Answer;
  }

  it('fragmend/codec in Node: inlined builds, PyECLib bytes, a worker pool', async () => {
    const out = await node('fragmend/codec', 'simd');
    expect(out.kernel).toBe('simd');
    expect(out.kernelKind).toBe(1);
    expect(out.moduleSource).toBe(false);
    expectGolden(cases, out.results, 'simd');
    expect(out.pool).toEqual({ kernel: out.auto, same: true });
  });

  it('fragmend/codec/core in Node: no build until init() gets a file: URL to fragmend/wasm/*.wasm', async () => {
    const out = await node('fragmend/codec/core', 'auto');
    expect(out.beforeInit).toBe('ECWasmUnavailable');
    // Only the SIMD build was given, so 'auto' can pick nothing else.
    expect(out.auto).toBe('simd');
    expect(out.kernelKind).toBe(1);
    expectGolden(cases, out.results, 'simd');
  });

  it.runIf(binary || CI)('fragmend/codec in workerd, bundled from node_modules with the workerd condition', async () => {
    expect(binary, 'no workerd binary: the workerd devDependency or its platform package is missing').toBeDefined();
    const bundle = await bundleWorker({
      entry: './workerd-golden-worker.js',
      absWorkingDir: dir,
      outDir: join(dir, 'out'),
      conditions: ['workerd', 'worker', 'browser'],
    });
    expect(bundle.wasm.sort()).toEqual(['fragmend-relaxed.wasm', 'fragmend-scalar.wasm', 'fragmend-simd.wasm']);
    server = await startWorkerd(binary!, join(dir, 'out'), bundle);
    const res = await fetch(`${server.url}/golden?kernels=simd`, { method: 'POST', body: JSON.stringify({ cases }) });
    const out = (await res.json()) as Answer & { error?: string };
    expect(out.error, server.output()).toBeUndefined();
    expect(out).toMatchObject({ kernel: 'simd', kernelKind: 1, moduleSource: true });
    expectGolden(cases, out.results, 'simd');
    await server.stop();
  });

  it('publint finds nothing to report (suggestions included)', async () => {
    const { publint } = await import('publint');
    const bytes = readFileSync(tarball);
    const { messages } = await publint({ pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) }, level: 'suggestion', strict: true });
    const { formatMessage } = await import('publint/utils');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(messages.map((m) => `${m.type}: ${formatMessage(m, pkg) ?? m.code}`)).toEqual([]);
  });

  // The ESM-only profile of the attw CLI: the package is ESM only ("type": "module", no
  // require condition), so the node10 and node16-cjs resolutions are out of scope; node16-esm
  // and bundler must be clean, for every entry point.
  it('arethetypeswrong (ESM-only profile) finds no problem', async () => {
    const { checkPackage, createPackageFromTarballData } = await import('@arethetypeswrong/core');
    const { problemAffectsResolutionKind } = await import('@arethetypeswrong/core/problems');
    const analysis = await checkPackage(createPackageFromTarballData(new Uint8Array(readFileSync(tarball))));
    if (!analysis.types) throw new Error('attw found no types in the package');
    expect(Object.keys(analysis.entrypoints).sort()).toEqual(['.', './codec', './codec/core', './package.json', './wasm/*.wasm']);
    const problems = analysis.problems.filter((p) =>
      (['node16-esm', 'bundler'] as const).some((kind) => problemAffectsResolutionKind(p, kind, analysis)),
    );
    expect(problems).toEqual([]);
  });
});
