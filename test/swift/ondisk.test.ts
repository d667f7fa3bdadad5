// File names and locks: names parse to a value or a DiskFileError whatever the bytes; Swift's
// own lock_path and fragmend's lock exclude each other on the same directory.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock, LockTimeout } from '../../src/swift/locks.js';
import { DiskFileError, getOnDiskFiles, makeOnDiskFilename, parseOnDiskFilename } from '../../src/swift/ondisk.js';
import { Timestamp } from '../../src/swift/timestamp.js';
import { PYTHON, swiftPythonEnabled } from '../helpers/swift-python.js';

const root = mkdtempSync(join(tmpdir(), 'fragmend-ondisk-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('on-disk file names', () => {
  it('round-trip: make then parse', () => {
    const t = new Timestamp('1700000000.12345_00000000000000ff');
    expect(makeOnDiskFilename(t, '.data', { fragIndex: 3, durable: true })).toBe('1700000000.12345_00000000000000ff#3#d.data');
    const info = parseOnDiskFilename('1700000000.12345_00000000000000ff#3#d.data', { ndata: 4, nparity: 2 });
    expect(info).toMatchObject({ fragIndex: 3, durable: true, ext: '.data' });
    expect(() => parseOnDiskFilename('1700000000.12345#6.data', { ndata: 4, nparity: 2 })).toThrow(/less than 6/);
    const meta = makeOnDiskFilename(new Timestamp('1700000010.00000'), '.meta', { ctypeTimestamp: new Timestamp('1700000005.00000') });
    expect(meta).toBe('1700000010.00000-7a120.meta');
    expect(parseOnDiskFilename(meta).ctypeTimestamp?.internal).toBe('1700000005.00000');
  });

  it('arbitrary names give a FileInfo or a DiskFileError, and a file set never throws', () => {
    const name = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(fc.double({ min: 0, max: 2e9, noNaN: true }), fc.constantFrom('.data', '.ts', '.meta', '.durable', '', '.x'), fc.string({ maxLength: 6 })).map(([t, e, x]) => `${t.toFixed(5)}${x}${e}`),
    );
    fc.assert(
      fc.property(fc.array(name, { maxLength: 8 }), (names) => {
        for (const n of names) {
          try {
            parseOnDiskFilename(n);
          } catch (e) {
            expect(e).toBeInstanceOf(DiskFileError);
          }
        }
        const info = getOnDiskFiles(names);
        expect(info.unexpected.length).toBeLessThanOrEqual(names.length);
      }),
      { numRuns: 2000 },
    );
  });
});

describe.runIf(swiftPythonEnabled())("locks interoperate with Swift's lock_path", () => {
  it('Swift waits for our lock, and we time out on Swift\'s', async () => {
    const dir = join(root, 'part');
    const release = await acquireLock(dir);
    const py = (timeout: number) =>
      new Promise<string>((resolve) => {
        const p = spawn(PYTHON, [
          '-c',
          `from swift.common.utils import lock_path\nfrom swift.common.exceptions import LockTimeout\ntry:\n  with lock_path(${JSON.stringify(dir)}, timeout=${timeout}):\n    print('got', flush=True)\n    import time; time.sleep(1.5)\nexcept LockTimeout:\n  print('timeout', flush=True)`,
        ]);
        let out = '';
        p.stdout.on('data', (d) => {
          out += d;
          if (out.includes('got') || out.includes('timeout')) resolve(out.trim());
        });
      });
    expect(await py(0.5)).toBe('timeout');
    release();
    const held = py(5);
    expect(await held).toBe('got');
    await expect(acquireLock(dir, { timeout: 0.3 })).rejects.toBeInstanceOf(LockTimeout);
  });
});

describe('locks within one process', () => {
  it('a release hands the lock to a waiter in the same process at once, not at its next poll', async () => {
    const dir = join(root, 'wake');
    const release = await acquireLock(dir);
    // With a 60 s timeout the waiter polls every 10 ms for 600 ms, then every 600 ms: released
    // at 700 ms, a poll alone would find it free at about 1200 ms.
    const t0 = performance.now();
    const waiter = acquireLock(dir, { timeout: 60 }).then((r) => ({ r, at: performance.now() - t0 }));
    await new Promise((r) => setTimeout(r, 700));
    const releasedAt = performance.now() - t0;
    release();
    const { r, at } = await waiter;
    r();
    expect(at - releasedAt).toBeLessThan(250);
  });

  it('of several waiters woken by one release, exactly one gets the lock', async () => {
    const dir = join(root, 'slots');
    const first = await acquireLock(dir);
    const order: number[] = [];
    const waiters = [1, 2, 3].map((i) => acquireLock(dir, { timeout: 10 }).then((r) => (order.push(i), r)));
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]);
    first();
    for (let n = 1; n <= 3; n++) {
      while (order.length < n) await new Promise((r) => setTimeout(r, 5));
      // while it is held, nobody else gets in
      await new Promise((r) => setTimeout(r, 60));
      expect(order).toHaveLength(n);
      (await waiters[order[n - 1]! - 1]!)();
    }
  });
});
