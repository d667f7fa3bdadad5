// The page in web/, as `npm run web` serves it, in headless Chromium: the fragment archives of
// a Swift EC object (made here with the codec) dropped on it as files or fetched by URL, with
// junk among them; it must name what it found, say what is wrong with the junk, and hand back
// the object (bytes and MD5) and the missing archives, byte for byte. Writes
// docs/screenshot.png when the page's look changes.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, no declarations.
import { startWebServer } from '../../scripts/serve-web.mjs';
import { ECDriver } from '../../src/codec/index.js';
import { chromiumEnabled, launchChromium, type Chromium } from '../helpers/browser.js';
import { sha } from '../helpers/digest.js';
import { prngBytes } from '../helpers/prng.js';

const SEGMENT = 1 << 20;
const OBJECT_SIZE = 3 * SEGMENT + 524_309; // three whole segments and a part
const TIMESTAMP = '1712345678.12345';
const SCREENSHOT = new URL('../../docs/screenshot.png', import.meta.url);

/** An object's k + m fragment archives, cut into segments as Swift's proxy does. */
async function archivesOf(data: Uint8Array, ecType: string, k: number, m: number): Promise<Uint8Array[]> {
  const ec = await ECDriver.create({ ecType, k, m });
  const parts: Uint8Array[][] = Array.from({ length: k + m }, () => []);
  for (let off = 0; off < data.length; off += SEGMENT) {
    ec.encode(data.subarray(off, Math.min(off + SEGMENT, data.length))).forEach((f, i) => parts[i]!.push(f));
  }
  return parts.map((p) => new Uint8Array(Buffer.concat(p)));
}

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');
const texts = (page: Page, selector: string): Promise<string[]> => page.locator(selector).allInnerTexts();

const enabled = chromiumEnabled('Chromium page checks');

describe.skipIf(!enabled)('the web page rebuilds a Swift EC object', () => {
  let browser: Chromium;
  let server: { url: string; close(): Promise<void> };
  let dir: string;
  let object: Uint8Array;
  let archives: Uint8Array[];
  let jerasure: Uint8Array[];
  const file = (name: string): string => join(dir, name);
  const swiftName = (i: number): string => `${TIMESTAMP}#${i}#d.data`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fragmend-page-'));
    object = prngBytes(424242, OBJECT_SIZE);
    archives = await archivesOf(object, 'liberasurecode_rs_vand', 4, 2);
    for (const [i, a] of archives.entries()) await writeFile(file(swiftName(i)), a);
    // Junk beside them: a text file, a truncated archive, one with a corrupt header in its
    // second segment, and an archive of another object (another backend too).
    await writeFile(file('notes.txt'), 'these are the archives of /AUTH_test/photos/cat.jpg\n'.repeat(20));
    await writeFile(file(`${TIMESTAMP}#0#d.data.part`), archives[0]!.subarray(0, archives[0]!.length - 1000));
    const corrupt = archives[3]!.slice();
    const firstLen = new DataView(corrupt.buffer).getUint32(4, true) + 80;
    corrupt[firstLen + 13] ^= 0x40; // its orig_data_size, so the metadata checksum fails
    await writeFile(file('copy-of-3.data'), corrupt);
    jerasure = await archivesOf(object, 'jerasure_rs_vand', 4, 2);
    await writeFile(file('other-object#2#d.data'), (await archivesOf(prngBytes(7, 300_000), 'isa_l_rs_vand', 4, 2))[2]!);
    server = await startWebServer({ port: 0 });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Waits for the page to reach a state; on a timeout, says what the page reported. */
  async function state(page: Page, name: string): Promise<void> {
    try {
      await page.waitForSelector(`body[data-state=${name}]`, { timeout: 20_000 });
    } catch (e) {
      const shown = await page.textContent('#error').catch(() => null);
      throw new Error(`${(e as Error).message}\npage errors: ${browser.errors.join('; ') || 'none'}; page says: ${shown || 'nothing'}`);
    }
  }

  /** Clicks a download link; the downloaded bytes and the name offered. */
  async function download(page: Page, selector: string): Promise<{ name: string; bytes: Uint8Array }> {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
    const path = await dl.path();
    return { name: dl.suggestedFilename(), bytes: new Uint8Array(await readFile(path)) };
  }

  it('from dropped files: k archives and junk', async () => {
    const page = await browser.page();
    await page.goto(server.url);
    await state(page, 'ready');
    expect(await page.locator('#kernel').getAttribute('data-kernel')).toMatch(/^(relaxed|simd)$/);

    await page.setInputFiles('#files', [
      file(swiftName(1)),
      file(swiftName(5)),
      file('notes.txt'),
      file(swiftName(2)),
      file(`${TIMESTAMP}#0#d.data.part`),
      file('copy-of-3.data'),
      file(swiftName(4)),
      file('other-object#2#d.data'),
    ]);
    await state(page, 'analysed');

    expect(await page.textContent('#ec-type')).toBe('liberasurecode_rs_vand');
    expect(await page.inputValue('#k')).toBe('4');
    expect(await page.inputValue('#m')).toBe('2');
    expect(await page.textContent('#object-size')).toContain(`${OBJECT_SIZE.toLocaleString('en')} B`);
    expect(await page.textContent('#segments')).toBe('4: 3 × 1,048,576 B, then 524,309 B');
    expect(await texts(page, '#present .idx')).toEqual(['1', '2', '4', '5']);
    expect(await texts(page, '#missing .idx')).toEqual(['0', '3']);
    const status = async (name: string) => page.locator('#source-rows tr', { hasText: name }).locator('td.status').innerText();
    expect(await status(swiftName(1))).toBe('ok');
    expect(await status('notes.txt')).toMatch(/^not a fragment archive/);
    expect(await status('.part')).toMatch(/^truncated: the fragment at byte \d+ needs \d+ bytes/);
    expect(await status('copy-of-3.data')).toMatch(/fragment header at byte \d+ fails its checksum/);
    expect(await status('other-object')).toMatch(/segments differ from the other archives/);

    await page.click('#run');
    await state(page, 'done');
    expect(await page.textContent('#object-md5')).toBe(md5(object));
    expect(await page.textContent('#object-bytes')).toContain(`${OBJECT_SIZE.toLocaleString('en')} B`);

    const decoded = await download(page, '#object-link');
    expect(decoded.name).toBe('object.bin');
    expect(decoded.bytes.length).toBe(OBJECT_SIZE);
    expect(sha(decoded.bytes)).toBe(sha(object));
    for (const i of [0, 3]) {
      const rebuilt = await download(page, `#archive-${i}`);
      expect(rebuilt.name).toBe(swiftName(i));
      expect(sha(rebuilt.bytes)).toBe(sha(archives[i]!));
    }
    expect(browser.errors).toEqual([]);


    // Start over with a tidy set for the picture: k archives and one stray file.
    await page.click('#clear');
    await state(page, 'ready');
    expect(await page.locator('#sources').isHidden()).toBe(true);
    await page.setInputFiles('#files', [1, 2, 4, 5].map((i) => file(swiftName(i))).concat(file('notes.txt')));
    await state(page, 'analysed');
    await page.click('#run');
    await state(page, 'done');
    expect(await page.textContent('#object-md5')).toBe(md5(object));
    await page.setViewportSize({ width: 900, height: 600 });
    const png = await page.screenshot({ fullPage: true, animations: 'disabled' });
    expect(png.length).toBeLessThan(200 * 1024);
    if (!existsSync(SCREENSHOT) || !readFileSync(SCREENSHOT).equals(png)) writeFileSync(SCREENSHOT, png);
    await page.close();
  });

  it('fetched by URL and dropped on the drop zone, m corrected (jerasure_rs_vand, scalar build)', async () => {
    const page = await browser.page();
    await page.route('**/archives/**', async (route) => {
      const name = decodeURIComponent(new URL(route.request().url()).pathname.split('/').pop()!);
      const i = [...jerasure.keys()].find((j) => swiftName(j) === name);
      if (i === undefined) await route.fulfill({ status: 404, body: 'not found' });
      else await route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from(jerasure[i]!) });
    });
    await page.goto(`${server.url}?kernels=scalar`);
    await state(page, 'ready');
    expect(await page.locator('#kernel').getAttribute('data-kernel')).toBe('scalar');
    const url = (name: string) => `/archives/${encodeURIComponent(name)}`;
    await page.locator('#by-url summary').click();
    await page.fill('#urls', [0, 2, 3, 5, 4].map((i) => url(swiftName(i))).concat(url('gone.data')).join('\n'));
    await page.click('#fetch');
    await state(page, 'analysed');
    expect(await texts(page, '#present .idx')).toEqual(['0', '2', '3', '4', '5']);
    expect(await texts(page, '#missing .idx')).toEqual(['1']);
    expect(await page.locator('#source-rows tr', { hasText: 'gone.data' }).innerText()).toMatch(/HTTP 404/);
    expect(await page.locator('#check').getAttribute('class')).toBe('good');
    expect(await page.textContent('#check')).toMatch(/^index 5 rebuilt from 0, 2, 3, 4 matches its archive/);

    await page.click('#run');
    await state(page, 'done');
    expect(await page.textContent('#object-md5')).toBe(md5(object));
    const rebuilt = await download(page, '#archive-1');
    expect(rebuilt.name).toBe(swiftName(1));
    expect(sha(rebuilt.bytes)).toBe(sha(jerasure[1]!));
    expect(await page.textContent('#ec-type')).toBe('jerasure_rs_vand');

    // A wrong m is caught by the spare archive: jerasure_rs_vand's parity rows depend on m.
    await page.fill('#m', '3');
    await page.dispatchEvent('#m', 'change');
    await state(page, 'analysed');
    expect(await texts(page, '#missing .idx')).toEqual(['1', '6']);
    expect(await page.locator('#check').getAttribute('class')).toBe('bad');

    // Dropped on the drop zone, as from a file manager: any k archives will do.
    await page.click('#clear');
    const dropped = await page.evaluateHandle(async (names) => {
      const dt = new DataTransfer();
      for (const name of names) dt.items.add(new File([await (await fetch(`/archives/${encodeURIComponent(name)}`)).blob()], name));
      return dt;
    }, [3, 0, 4, 1].map(swiftName));
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped });
    await state(page, 'analysed');
    expect(await texts(page, '#present .idx')).toEqual(['0', '1', '3', '4']);
    // Index 4 is the highest present, so m=1 is all the page can infer: told m=2, it sees 5 missing.
    expect(await page.inputValue('#m')).toBe('1');
    expect(await texts(page, '#missing .idx')).toEqual(['2']);
    await page.fill('#m', '2');
    await page.dispatchEvent('#m', 'change');
    await state(page, 'analysed');
    expect(await texts(page, '#missing .idx')).toEqual(['2', '5']);
    await page.click('#run');
    await state(page, 'done');
    expect(await page.textContent('#object-md5')).toBe(md5(object));
    expect(sha((await download(page, '#archive-5')).bytes)).toBe(sha(jerasure[5]!));
    expect(browser.errors.filter((e) => !/404/.test(e))).toEqual([]);
    await page.close();
  });
});
