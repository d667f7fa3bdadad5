// File-system steps Swift takes with care: renames that create and fsync their directories,
// directory fsyncs, unlinks that tolerate a file already gone.
import { constants as fsc, statSync } from 'node:fs';
import { mkdir, open, rename, stat, unlink, type OpenFile } from './afs.js';
import { dirname, join } from 'node:path';

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

export async function fsyncDir(path: string): Promise<void> {
  let fh: OpenFile | undefined;
  try {
    fh = await open(path, fsc.O_RDONLY | fsc.O_DIRECTORY);
    await fh.sync();
  } catch (e) {
    if (errno(e) === 'ENOTDIR') throw e;
  } finally {
    await fh?.close();
  }
}

/** mkdir -p, returning the directories it created (outermost first). */
export async function makeDirs(path: string): Promise<string[]> {
  const made: string[] = [];
  let p = path;
  const missing: string[] = [];
  while (!(await stat(p).catch(() => null))) {
    missing.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const d of missing) {
    try {
      await mkdir(d);
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
  const made = await makeDirs(dir);
  await rename(oldPath, newPath);
  if (fsync) {
    await fsyncDir(dir);
    for (const d of made.reverse()) await fsyncDir(dirname(d));
  }
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
 * Swift's ismount, with two plain stat calls as Swift's check_drive makes: a request's device
 * check blocks for a stat rather than paying a thread-pool round trip for each.
 */
export function isMountSync(path: string): boolean {
  try {
    const a = statSync(path);
    const b = statSync(join(path, '..'));
    return a.dev !== b.dev || a.ino === b.ino;
  } catch {
    return false;
  }
}

