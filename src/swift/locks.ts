// Swift's lock_path: an exclusive flock(2) on <dir>/.lock (or .lock-<name>), retried until a
// timeout. flock, not fcntl or OFD locks, because that is what Swift's object server, replicator
// and reconstructor take: a Swift process on the same disk must see our locks and we theirs.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';

interface FsExt {
  flockSync(fd: number, flags: 'ex' | 'exnb' | 'sh' | 'shnb' | 'un'): void;
}
let fsExtModule: FsExt | undefined;
/** fs-ext (flock), loaded when a lock is first taken */
const fsExt = (): FsExt => (fsExtModule ??= createRequire(import.meta.url)('fs-ext') as FsExt);

export const DEFAULT_LOCK_TIMEOUT = 10;

export class LockTimeout extends Error {
  constructor(
    readonly timeout: number,
    readonly path: string,
  ) {
    // Swift's Timeout wording: '1 second', '0.2 seconds'.
    super(`${timeout} second${timeout === 1 ? '' : 's'}: ${path}`);
    this.name = 'LockTimeout';
  }
}

/** flock(LOCK_EX | LOCK_NB): true when taken, false when another holds it. */
export function tryLock(fd: number): boolean {
  try {
    fsExt().flockSync(fd, 'exnb');
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false;
    throw e;
  }
}

export interface LockOptions {
  /** Seconds before LockTimeout; Swift's default is 10. */
  timeout?: number;
  /** Distinguishes kinds of lock in one directory (.lock-<name>), e.g. 'replication'. */
  name?: string;
  /** Up to this many holders at once (.lock, .lock.1, ...), as Swift's replication lock. */
  limit?: number;
}

/**
 * Who in this process waits for a lock (by its first file's path). A release here wakes them
 * at once: between processes the lock can only be polled, as Swift polls it, but a waiter in
 * the same process (an object server's sessions queueing for a device) need not sleep out its
 * poll interval while the lock sits free.
 */
const waiting = new Map<string, Set<() => void>>();

function pauseOrWake(base: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let set = waiting.get(base);
    if (!set) waiting.set(base, (set = new Set()));
    const wake = () => {
      clearTimeout(timer);
      set!.delete(wake);
      if (!set!.size && waiting.get(base) === set) waiting.delete(base);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    set.add(wake);
  });
}

function wakeWaiters(base: string): void {
  const set = waiting.get(base);
  if (set) for (const wake of [...set]) wake();
}

/** Takes the lock and returns its release function. */
export async function acquireLock(directory: string, opts: LockOptions = {}): Promise<() => void> {
  const timeout = opts.timeout ?? DEFAULT_LOCK_TIMEOUT;
  const limit = opts.limit ?? 1;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be greater than or equal to 1');
  mkdirSync(directory, { recursive: true });
  const base = `${directory}/.lock${opts.name ? `-${opts.name}` : ''}`;
  const fds = Array.from({ length: limit }, (_, i) => openSync(i === 0 ? base : `${base}.${i}`, 'a'));
  const closeAll = () => fds.forEach((fd) => closeSync(fd));
  // Swift polls every 10 ms, then every 1% of the timeout once 1% of it has passed.
  let pause = 10;
  const slower = Math.max(timeout * 10, pause);
  const slowdownAt = timeout * 10;
  const started = Date.now();
  try {
    for (;;) {
      const held = fds.find((fd) => tryLock(fd));
      if (held !== undefined) {
        let released = false;
        return () => {
          if (released) return;
          released = true;
          closeAll();
          wakeWaiters(base);
        };
      }
      const waited = Date.now() - started;
      if (waited >= timeout * 1000) throw new LockTimeout(timeout, base);
      if (waited > slowdownAt) pause = slower;
      await pauseOrWake(base, Math.min(pause, timeout * 1000 - waited + 1));
    }
  } catch (e) {
    closeAll();
    throw e;
  }
}

/** Runs fn under the lock of a directory. */
export async function withLock<T>(directory: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const release = await acquireLock(directory, opts);
  try {
    return await fn();
  } finally {
    release();
  }
}
