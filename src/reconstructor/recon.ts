// object.recon, the recon cache Swift's daemons share (replicator, auditor, expirer and the
// reconstructor all write into it): one JSON line, read-modify-written under a lock on the file,
// replaced by rename, nested dicts merged and an empty dict deleting its key. swift-recon and
// the recon middleware read it.
import { closeSync, fstatSync, openSync, readSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomHex } from '../swift/lazy-crypto.js';
import { pyDumps } from '../swift/py-json.js';
import { tryLock } from '../swift/locks.js';

export const RECON_OBJECT_FILE = 'object.recon';
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Swift's put_recon_cache_entry. */
export function putReconCacheEntry(entry: Record<string, Json>, key: string, item: Json): void {
  if (item && typeof item === 'object' && !Array.isArray(item)) {
    if (!Object.keys(item).length) {
      delete entry[key];
      return;
    }
    const cur = entry[key];
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) entry[key] = {};
    const target = entry[key] as Record<string, Json>;
    for (const [k, v] of Object.entries(item)) {
      if (v && typeof v === 'object' && !Array.isArray(v) && !Object.keys(v).length) delete target[k];
      else target[k] = v;
    }
    return;
  }
  entry[key] = item;
}

async function lockFile(path: string, timeoutSeconds: number): Promise<number> {
  let fd = openSync(path, 'a+');
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    let locked: boolean;
    try {
      locked = tryLock(fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    if (locked) {
      // The holder before us may have renamed a new file over the path (the lock then guards
      // an orphaned inode, and what we would read is stale): lock the path's file anew.
      let current: number | null = null;
      try {
        current = statSync(path).ino;
      } catch {
        /* gone: reopened below */
      }
      if (current === fstatSync(fd).ino) return fd;
      closeSync(fd);
      fd = openSync(path, 'a+');
      continue;
    }
    if (Date.now() >= deadline) {
      closeSync(fd);
      throw new Error(`${timeoutSeconds} seconds: ${path}`);
    }
    await sleep(10);
  }
}

/** Swift's dump_recon_cache: merges the update into the file's one JSON line. */
export async function dumpReconCache(update: Record<string, Json>, cacheFile: string, lockTimeout = 2): Promise<void> {
  const fd = await lockFile(cacheFile, lockTimeout);
  try {
    // Plain reads and writes of a file of a few hundred bytes: each step through the thread pool
    // would be a wait of its own at the end of a pass, when the process has nothing else to do.
    const buf = Buffer.allocUnsafe(Math.min(fstatSync(fd).size, 1 << 20));
    const n = readSync(fd, buf, 0, buf.length, 0);
    const first = buf.subarray(0, n).toString('utf8').split('\n')[0] ?? '';
    let entry: Record<string, Json> = {};
    try {
      const parsed = first ? JSON.parse(first) : {};
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) entry = parsed;
    } catch {
      // Not a valid entry: it is rewritten from scratch, as Swift does.
    }
    for (const [k, v] of Object.entries(update)) putReconCacheEntry(entry, k, v);
    const tmp = join(dirname(cacheFile), `.${process.pid}.${randomHex(6)}.recon.tmp`);
    try {
      // json.dumps(entry, sort_keys=True), as Python writes recon files
      writeFileSync(tmp, pyDumps(entry, { sortKeys: true }) + '\n', 'ascii');
      renameSync(tmp, cacheFile);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        /* never written */
      }
      throw e;
    }
  } finally {
    closeSync(fd);
  }
}
