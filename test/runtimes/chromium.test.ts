// The built codec (dist/codec, as `fragmend/codec` through an import map) in headless
// Chromium: every golden vector made by real PyECLib, encoded, rebuilt and decoded in the page
// with each wasm build the browser validates, and the digests checked here. Also: 'auto'
// picks a SIMD build in Chromium.
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, no declarations.
import { startWebServer } from '../../scripts/serve-web.mjs';
import { chromiumEnabled, launchChromium, type Chromium } from '../helpers/browser.js';
import { digest } from '../helpers/digest.js';
import type { GoldenCase } from '../helpers/golden-subset.js';
import { prngBytes } from '../helpers/prng.js';

type Case = GoldenCase;

interface PageResult {
  kernel: string;
  fragment_length: number;
  header0: string;
  fragments: string[];
  reconstruct: Array<{ missing: number[]; rebuilt: string[] }>;
  decoded: string[];
  fromParity: string;
  tooFew: string;
}

const golden = JSON.parse(readFileSync(new URL('../fixtures/golden.json', import.meta.url), 'utf8')) as { cases: Case[] };

/**
 * A page on the served origin: its import map resolves the codec as a package would, and its
 * module script runs the vectors (inputs from golden-run.js's generator, the same as
 * test/helpers/prng.ts; Web Crypto for the digests), answering with what it got.
 */
const HARNESS = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>fragmend golden vectors</title>
<script type="importmap">{"imports":{"fragmend/codec":"/dist/codec/index.js"}}</script>
<script type="module">
import * as codec from 'fragmend/codec';
import { prngBytes as prng } from '/golden-run.js';
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const dig = async (b) => hex(new Uint8Array(await crypto.subtle.digest('SHA-256', b)).subarray(0, 8));
window.support = async () => {
  const ec = await codec.ECDriver.create({ ecType: 'isa_l_rs_vand', k: 4, m: 2 });
  return { relaxed: codec.relaxedSimdSupported(), simd: codec.simdSupported(), auto: ec.kernel, userAgent: navigator.userAgent };
};
window.runGolden = async (cases, kernels) => {
  const drivers = new Map();
  const out = [];
  for (const c of cases) {
    const key = c.ec_type + ' ' + c.k + ' ' + c.m;
    if (!drivers.has(key)) drivers.set(key, codec.ECDriver.create({ ecType: c.ec_type, k: c.k, m: c.m, kernels }));
    const ec = await drivers.get(key);
    const data = prng(c.seed, c.length);
    const frags = ec.encode(data);
    const r = {
      kernel: ec.kernel,
      fragment_length: frags[0].length,
      header0: hex(frags[0].subarray(0, 80)),
      fragments: await Promise.all(frags.map(dig)),
      reconstruct: [],
      decoded: [],
      fromParity: '',
      tooFew: '',
    };
    for (const p of c.reconstruct) {
      const survivors = frags.filter((_, i) => !p.missing.includes(i));
      r.reconstruct.push({ missing: p.missing, rebuilt: await Promise.all(ec.reconstruct(survivors, p.missing).map(dig)) });
      r.decoded.push(await dig(ec.decode([...survivors].reverse())));
    }
    // The last k fragments: every parity fragment in use.
    r.fromParity = await dig(ec.decode(frags.slice(c.m)));
    try {
      ec.decode(frags.slice(0, c.k - 1));
      r.tooFew = 'no error';
    } catch (e) {
      r.tooFew = e.name;
    }
    out.push(r);
  }
  return out;
};
window.harnessReady = true;
</script>
<body>golden vectors</body>`;

const enabled = chromiumEnabled('Chromium golden-vector checks');

describe.skipIf(!enabled)('the codec in headless Chromium', () => {
  let browser: Chromium;
  let server: { url: string; close(): Promise<void> };
  let page: Page;
  let support: { relaxed: boolean; simd: boolean; auto: string; userAgent: string };

  beforeAll(async () => {
    server = await startWebServer({ port: 0 });
    browser = await launchChromium();
    page = await browser.page();
    await page.route('**/golden.html', (route) => route.fulfill({ contentType: 'text/html', body: HARNESS }));
    await page.route('**/golden-run.js', (route) =>
      route.fulfill({ contentType: 'text/javascript', body: readFileSync(new URL('./golden-run.js', import.meta.url), 'utf8') }),
    );
    await page.goto(`${server.url}golden.html`);
    await page.waitForFunction(() => (window as { harnessReady?: boolean }).harnessReady === true);
    support = await page.evaluate(() => (window as unknown as { support(): Promise<typeof support> }).support());
    console.log(`Chromium (${support.userAgent.match(/Chrome\/[\d.]+/)?.[0]}): relaxed SIMD ${support.relaxed ? 'validates' : 'does not validate'}; 'auto' runs the ${support.auto} build`);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("'auto' picks a SIMD build", () => {
    expect(support.simd).toBe(true);
    expect(support.auto).toBe(support.relaxed ? 'relaxed' : 'simd');
  });

  // Every build Chromium validates, on every vector.
  const kernels = ['relaxed', 'simd', 'scalar'] as const;
  it.each(kernels)('golden vectors from PyECLib, %s build', async (kernel) => {
    if (kernel === 'relaxed' && !support.relaxed) {
      console.warn('[skipped] relaxed-SIMD golden vectors: this Chromium does not validate relaxed SIMD');
      return;
    }
    const cases = golden.cases;
    expect(cases.some((c) => c.length >= 1 << 20)).toBe(true);
    const results = await page.evaluate(
      ([cases, kernels]) => (window as unknown as { runGolden(c: Case[], k: string): Promise<PageResult[]> }).runGolden(cases, kernels),
      [cases, kernel] as const,
    );
    expect(results).toHaveLength(cases.length);
    expect(browser.errors).toEqual([]);
    for (const [i, c] of cases.entries()) {
      const name = `${c.ec_type} ${c.k}+${c.m} ${c.length} B`;
      const r = results[i]!;
      const want = digest(prngBytes(c.seed, c.length));
      expect(r, name).toEqual({
        kernel,
        fragment_length: c.fragment_length,
        header0: c.header0,
        fragments: c.fragments,
        reconstruct: c.reconstruct,
        decoded: c.reconstruct.map(() => want),
        fromParity: want,
        tooFew: 'ECInsufficientFragments',
      });
    }
  });
});
