// File-system steps Swift takes with care: renames that create and fsync their directories,
// directory fsyncs, unlinks that tolerate a file already gone.
import { closeSync, constants as fsc, existsSync, fsync as fsyncCb, mkdirSync, lstatSync, openSync, renameSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { stat, unlink } from './afs.js';
import { dirname, join } from 'node:path';

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;
const fsync = promisify(fsyncCb);

export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

// Opening, creating and renaming are plain calls, as Swift makes them in the thread that
// writes the object: each is one quick system call, where a thread-pool round trip costs
// several, two thread switches and a promise. Only the fsyncs, which wait for the disk, go
// through the thread pool, so a slow disk does not hold up the server's other requests.

export async function fsyncDir(path: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECTORY);
    await fsync(fd);
  } catch (e) {
    if (errno(e) === 'ENOTDIR') throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** mkdir -p, returning the directories it created (outermost first). */
export function makeDirs(path: string): string[] {
  const made: string[] = [];
  let p = path;
  const missing: string[] = [];
  while (!existsSync(p)) {
    missing.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
      made.push(d);
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
    }
  }
  return made;
}

/** Swift's renamer: create the target's directories, rename, fsync what changed. */
export async function renamer(oldPath: string, newPath: string, fsync = true): Promise<void> {
  const dir = dirname(newPath);
  const made = makeDirs(dir);
  renameSync(oldPath, newPath);
  // The directory and the parents of those just made, all at once: Swift syncs them one after
  // another, and each is a journal commit on its own, where syncs issued together share one.
  // Either way none of them has reached the disk for sure until all have returned.
  if (fsync) await Promise.all([dir, ...made.map((d) => dirname(d))].map((d) => fsyncDir(d)));
}

export async function isFileOlder(path: string, ageSeconds: number): Promise<boolean> {
  try {
    const st = await stat(path);
    return Date.now() / 1000 - st.mtimeMs / 1000 > ageSeconds;
  } catch {
    return false;
  }
}

/**
 * Swift's ismount (ismount_raw, errors read as false), with plain calls as Swift's check_drive
 * makes them: a request's device check blocks for them rather than paying a thread-pool round
 * trip for each. A symlink is never a mount point, unless its target holds a `.ismount` file; a
 * directory is one when its parent is on another device or is itself (the root), or when it
 * holds a `.ismount` file (what operators place where device and inode numbers mislead, as in
 * containers).
 */
export function isMountSync(path: string): boolean {
  // (a missing stub, the usual case, is no exception: a request of an unmounted device asks)
  const stub = () => statSync(join(path, '.ismount'), { throwIfNoEntry: false })?.isFile() ?? false;
  try {
    const a = lstatSync(path);
    if (a.isSymbolicLink()) return stub();
    const b = lstatSync(join(path, '..'));
    return a.dev !== b.dev || a.ino === b.ino || stub();
  } catch {
    return false;
  }
}
