// `fragmend codec` on real files: archives decode from any k of them in any order, a lost
// archive is rebuilt byte-identical, and bad input exits non-zero with a clear message.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fragmend-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]) => run(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 });

describe('fragmend codec', () => {
  it('encode, decode from any k archives, reconstruct one, info', async () => {
    const obj = join(dir, 'obj');
    const data = randomBytes(2 * 1048576 + 12345);
    writeFileSync(obj, data);
    const policy = ['--ec-type', 'jerasure_rs_vand', '-k', '4', '-m', '2'];
    const enc = JSON.parse((await cli('codec', 'encode', ...policy, obj, dir)).stdout);
    expect(enc).toMatchObject({ bytes: data.length, segments: 3, archives: 6 });
    // Two full segments of 262,224-byte fragments and the remainder's.
    expect(statSync(`${obj}#3`).size).toBe(2 * 262224 + 80 + Math.ceil(12345 / 8) * 2);

    const some = [5, 0, 4, 2].map((i) => `${obj}#${i}`);
    await cli('codec', 'decode', ...policy, ...some, '-o', join(dir, 'back'));
    expect(readFileSync(join(dir, 'back')).equals(data)).toBe(true);

    await cli('codec', 'reconstruct', ...policy, '--index', '1', ...some, '-o', join(dir, 'r1'));
    expect(readFileSync(join(dir, 'r1')).equals(readFileSync(`${obj}#1`))).toBe(true);

    const info = JSON.parse((await cli('codec', 'info', ...policy, `${obj}#4`)).stdout);
    expect(info).toMatchObject({ fragments: 3, firstHeader: { index: 4, backendName: 'jerasure_rs_vand', origDataSize: 1048576 } });
  });

  it('refuses too few archives and foreign archives with a message and a non-zero exit', async () => {
    const obj = join(dir, 'small');
    writeFileSync(obj, randomBytes(5000));
    await cli('codec', 'encode', obj, dir);
    await expect(cli('codec', 'decode', `${obj}#0`, `${obj}#1`, '-o', join(dir, 'x'))).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/needs 4 distinct fragments, got 2/),
    });
    await expect(
      cli('codec', 'decode', '--ec-type', 'isa_l_rs_vand', ...[0, 1, 2, 3].map((i) => `${obj}#${i}`), '-o', join(dir, 'x')),
    ).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/written by liberasurecode_rs_vand, not isa_l_rs_vand/) });
  });
});
