// The command line's V8 code cache: written once, in a directory only this user can write to,
// used by the next start, and rewritten when it does not fit (a corrupt or foreign file is
// never trusted). The command's results are the same with and without it.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = new URL('../../bin/fragmend.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fragmend-code-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const object = join(dir, 'obj');
writeFileSync(object, Buffer.alloc(100_000, 7));

/** encodes the object into a fresh directory; returns what the command printed */
async function encode(env: Record<string, string | undefined>, nodeArgs: string[] = []): Promise<string> {
  // the same output directory every time, so the printed result can be compared
  const out = join(dir, 'out');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  const r = await run(process.execPath, [...nodeArgs, BIN, 'codec', 'encode', '--ec-type', 'liberasurecode_rs_vand', '-k', '4', '-m', '2', object, out], {
    env: { ...process.env, XDG_CACHE_HOME: undefined, ...env },
  });
  return r.stdout;
}

const cacheFiles = (d: string) => (statSync(d, { throwIfNoEntry: false }) ? readdirSync(d).filter((f) => f.endsWith('.v8')) : []);

describe('the code cache', () => {
  it('is written on the first start, 0600 in a 0700 directory, and used as it is by the next', async () => {
    const cache = join(dir, 'c1', 'fragmend');
    const first = await encode({ FRAGMEND_CACHE_DIR: cache });
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    const [file] = cacheFiles(cache);
    expect(file).toBeDefined();
    const path = join(cache, file!);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).size).toBeGreaterThan(100_000);
    const bytes = readFileSync(path);
    const mtime = statSync(path).mtimeMs;
    expect(await encode({ FRAGMEND_CACHE_DIR: cache })).toBe(first);
    // accepted: not written again
    expect(statSync(path).mtimeMs).toBe(mtime);
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it('a corrupt cache is not used: the command runs as before and the cache is made again', async () => {
    const cache = join(dir, 'c2');
    const reference = await encode({ FRAGMEND_CACHE_DIR: cache });
    const [file] = cacheFiles(cache);
    const path = join(cache, file!);
    const garbage = Buffer.alloc(statSync(path).size, 0x5a);
    writeFileSync(path, garbage);
    expect(await encode({ FRAGMEND_CACHE_DIR: cache })).toBe(reference);
    expect(readFileSync(path).equals(garbage)).toBe(false);
    expect(await encode({ FRAGMEND_CACHE_DIR: cache })).toBe(reference);
  });

  it('is not kept in a directory others can write to, nor when turned off', async () => {
    const open = join(dir, 'c3');
    mkdirSync(open, { mode: 0o700 });
    chmodSync(open, 0o777);
    await encode({ FRAGMEND_CACHE_DIR: open });
    expect(cacheFiles(open)).toEqual([]);

    const home = join(dir, 'home');
    mkdirSync(home);
    await encode({ FRAGMEND_CACHE_DIR: '', HOME: home });
    expect(statSync(join(home, '.cache'), { throwIfNoEntry: false })).toBeUndefined();
    // and by default it goes under $HOME/.cache/fragmend
    await encode({ FRAGMEND_CACHE_DIR: undefined, HOME: home });
    expect(cacheFiles(join(home, '.cache', 'fragmend'))).toHaveLength(1);
  });

  it('a profiling run uses the same cache; caches of other builds unused for a week are removed', async () => {
    const cache = join(dir, 'c4');
    mkdirSync(cache, { mode: 0o700 });
    const old = join(cache, 'cli-v0.0.0-deadbeef.v8');
    const recent = join(cache, 'cli-v0.0.1-deadbeef.v8');
    writeFileSync(old, 'x');
    writeFileSync(recent, 'x');
    const eightDaysAgo = Date.now() / 1000 - 8 * 86400;
    utimesSync(old, eightDaysAgo, eightDaysAgo);
    await encode({ FRAGMEND_CACHE_DIR: cache });
    expect(statSync(old, { throwIfNoEntry: false })).toBeUndefined();
    expect(statSync(recent, { throwIfNoEntry: false })).toBeDefined();
    const before = cacheFiles(cache).sort();
    expect(before).toHaveLength(2);
    const profiles = join(dir, 'profiles');
    await encode({ FRAGMEND_CACHE_DIR: cache }, ['--cpu-prof', `--cpu-prof-dir=${profiles}`]);
    expect(readdirSync(profiles).some((f) => f.endsWith('.cpuprofile'))).toBe(true);
    expect(cacheFiles(cache).sort()).toEqual(before);
  });

  it("an earlier build's cache for the same command goes as soon as the new build's is written", async () => {
    const cache = join(dir, 'c6');
    await encode({ FRAGMEND_CACHE_DIR: cache });
    const [file] = cacheFiles(cache);
    // cli-<node>-<slot>-<build>.v8: the slot names the bundle's path, Node, flags and command
    const m = /^(cli-v[^-]+-[0-9a-f]{8}-)([0-9a-f]{8})\.v8$/.exec(file!);
    expect(m).not.toBeNull();
    // as if the bundle had been rebuilt since: this build's cache is not there, an older one is
    const stale = `${m![1]}00000000.v8`;
    writeFileSync(join(cache, stale), readFileSync(join(cache, file!)));
    rmSync(join(cache, file!));
    // a recent cache of another slot (another path, or other flags) stays
    const other = 'cli-v20.0.0-ffffffff-00000000.v8';
    writeFileSync(join(cache, other), 'x');
    await encode({ FRAGMEND_CACHE_DIR: cache });
    expect(cacheFiles(cache).sort()).toEqual([file!, other].sort());
  });

  it("each command has its own cache, rewritten when a run compiled clearly more than its writer", async () => {
    const cache = join(dir, 'c5');
    const cli = (args: string[]) => run(process.execPath, [BIN, ...args], { env: { ...process.env, FRAGMEND_CACHE_DIR: cache } });
    const header = (f: string) => {
      const b = readFileSync(join(cache, f));
      return { magic: b.readUInt32LE(0), bytecode: b.readUInt32LE(4), size: b.length, mtime: statSync(join(cache, f)).mtimeMs };
    };
    // a light run of the codec command writes its cache
    await cli(['codec', '--help']);
    const [file] = cacheFiles(cache);
    const light = header(file!);
    expect(light.magic).toBe(0x31434d46);
    expect(light.bytecode).toBeGreaterThan(100_000);
    // an encode compiles much more: the cache is written again, bigger
    const reference = await encode({ FRAGMEND_CACHE_DIR: cache });
    expect(cacheFiles(cache)).toEqual([file]);
    const heavy = header(file!);
    expect(heavy.bytecode).toBeGreaterThan(light.bytecode * 1.05);
    expect(heavy.size).toBeGreaterThan(light.size);
    // the next encode finds what it needs and leaves it alone, with the same result
    expect(await encode({ FRAGMEND_CACHE_DIR: cache })).toBe(reference);
    expect(header(file!)).toEqual(heavy);
    // another command keeps a cache of its own
    await cli(['get-nodes', '--help']);
    expect(cacheFiles(cache)).toHaveLength(2);
    expect(header(file!)).toEqual(heavy);
  });
});
