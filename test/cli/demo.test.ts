// `npm run demo` end to end, smaller: a loopback cluster of fragmend object servers loses a
// device and the reconstructor brings back every archive byte-identical; nothing is left behind.
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;

describe('fragmend demo', () => {
  it('heals a wiped device and cleans up after itself', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'demo', '--objects', '60'], { maxBuffer: 1 << 24, timeout: 180_000 });
    expect(stdout).toMatch(/^healed\.$/m);
    const restored = /fragment archives restored byte-identical: (\d+)\/(\d+)/.exec(stdout)!;
    expect(Number(restored[2])).toBeGreaterThan(0);
    expect(restored[1]).toBe(restored[2]);
    expect(stdout).toMatch(/objects that decode to their original bytes: 60\/60/);
    expect(stdout).toMatch(/rebuilt \d+ archives, [\d.]+ MiB, in [\d.]+ s over \d pass/);
    // Its own cluster directory (other tests may have theirs in the same tmpdir) is gone.
    const dir = /loopback Swift EC cluster of 8 fragmend object servers in (\S+)/.exec(stdout)![1]!;
    expect(dir.startsWith(tmpdir())).toBe(true);
    expect(existsSync(dir)).toBe(false);
    // and it does not point to a log that went with it
    expect(stdout).toMatch(/reconstructor log: removed with the cluster/);
    expect(stdout).not.toContain(`reconstructor log: ${dir}`);
  });

  it('with FRAGMEND_DEMO_KEEP_DIR leaves its directory and log, and still exits', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'demo', '--objects', '12'], {
      maxBuffer: 1 << 24,
      timeout: 120_000,
      env: { ...process.env, FRAGMEND_DEMO_KEEP_DIR: '1' },
    });
    const dir = /loopback Swift EC cluster of 8 fragmend object servers in (\S+)/.exec(stdout)![1]!;
    try {
      expect(stdout).toMatch(/^healed\.$/m);
      expect(stdout).toContain(`reconstructor log: ${dir}/reconstructor.log`);
      expect(existsSync(`${dir}/reconstructor.log`)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
