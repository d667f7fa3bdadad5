// fragmend as a web developer gets it: the packed package installed into a fresh project next
// to Vite (the version this repository pins), a page that imports `fragmend/codec` built with
// `vite build`, and the built site, served as static files, run in headless Chromium on
// PyECLib's golden vectors with each wasm build.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumEnabled, launchChromium, serveDir, type Chromium } from '../helpers/browser.js';
import { expectGolden, goldenCases, type GoldenResult } from '../helpers/golden-subset.js';
import { freshProject, packFragmend, ROOT, tempProjectDir } from '../helpers/pack.js';

const run = promisify(execFile);
const VITE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'node_modules/vite/package.json'), 'utf8')) as { version: string }).version;
const cases = goldenCases();

const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><link rel="icon" href="data:," /><title>fragmend with Vite</title></head>
  <body>
    <p id="out">running</p>
    <script type="module" src="/main.js"></script>
  </body>
</html>
`;

// Every build this browser validates, on the same cases, and what 'auto' picked.
const MAIN_JS = `import * as codec from 'fragmend/codec';
import { runGolden } from './golden-run.js';
import cases from './cases.json';

const kernels = codec.relaxedSimdSupported() ? ['relaxed', 'simd', 'scalar'] : ['simd', 'scalar'];
window.golden = (async () => {
  const runs = {};
  let auto;
  for (const k of kernels) {
    const r = await runGolden(codec, cases, k);
    auto = r.auto;
    runs[k] = r.results;
  }
  document.getElementById('out').textContent = 'done';
  return { auto, runs };
})();
`;

const enabled = chromiumEnabled('Chromium checks of a Vite build');

describe.skipIf(!enabled)(`a fresh Vite ${VITE_VERSION} project importing fragmend/codec`, () => {
  let tarball: string;
  let dir: string;
  let browser: Chromium;
  let site: { url: string; close(): Promise<void> };
  let buildLog = '';

  beforeAll(async () => {
    tarball = await packFragmend();
    dir = await freshProject(tempProjectDir('fragmend-vite-'), tarball, {
      packages: [`vite@${VITE_VERSION}`],
      packageJson: { scripts: { build: 'vite build' } },
    });
    writeFileSync(join(dir, 'index.html'), INDEX_HTML);
    writeFileSync(join(dir, 'main.js'), MAIN_JS);
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
    copyFileSync(new URL('./golden-run.js', import.meta.url), join(dir, 'golden-run.js'));
    const { stdout, stderr } = await run('npm', ['run', 'build', '--silent'], { cwd: dir, maxBuffer: 16 << 20 });
    buildLog = stdout + stderr;
    site = await serveDir(join(dir, 'dist'));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (tarball) rmSync(dirname(tarball), { recursive: true, force: true });
  });

  it('vite build bundles it without complaint', () => {
    expect(existsSync(join(dir, 'dist/index.html'))).toBe(true);
    const assets = readdirSync(join(dir, 'dist/assets'));
    expect(assets.some((f) => f.endsWith('.js'))).toBe(true);
    // No bare import left for the browser to fail on.
    for (const f of assets.filter((a) => a.endsWith('.js'))) {
      expect(readFileSync(join(dir, 'dist/assets', f), 'utf8')).not.toMatch(/from\s*["'](@assemblyscript\/loader|fragmend)/);
    }
    expect(buildLog).not.toMatch(/\berror\b/i);
  });

  it('the built page matches PyECLib with every build Chromium validates', async () => {
    const page = await browser.page();
    await page.goto(site.url);
    await page.waitForSelector('#out:text("done")', { timeout: 60_000 }).catch(async (e: Error) => {
      throw new Error(`${e.message}\npage errors: ${browser.errors.join('; ') || 'none'}`);
    });
    const { auto, runs } = await page.evaluate(
      () => (window as unknown as { golden: Promise<{ auto: string; runs: Record<string, GoldenResult[]> }> }).golden,
    );
    expect(['relaxed', 'simd']).toContain(auto);
    expect(Object.keys(runs)).toEqual(auto === 'relaxed' ? ['relaxed', 'simd', 'scalar'] : ['simd', 'scalar']);
    for (const [kernel, results] of Object.entries(runs)) expectGolden(cases, results, kernel);
    expect(browser.errors).toEqual([]);
    await page.close();
  });
});
