// Swift's modify_priority: the nice_priority, ionice_class and ionice_priority options every
// Swift daemon reads, so an operator can keep the reconstructor from competing with client
// traffic for the cores and the disks. Applied at start, before the daemon starts its work.
//
// Linux gives each thread its own nice value and I/O priority, and a thread starts with its
// creator's. Swift sets them for its process's main thread, before it starts any other; a Node
// process has started V8's and libuv's threads by then, so every thread of the process is set.
// Node has no ioprio_set: util-linux's ionice (in every Debian) makes the call.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Logger } from 'pino';

/** Swift's IO_CLASS_ENUM */
export const IO_CLASSES = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 } as const;
export type IoClass = keyof typeof IO_CLASSES;

export interface PrioritySettings {
  /** nice_priority: -20 (most favoured) to 19; null leaves it alone */
  nicePriority: number | null;
  /** ionice_class; null leaves the I/O priority alone (ionice_priority alone does nothing, as in Swift) */
  ioniceClass: IoClass | null;
  /** ionice_priority: 0 (highest) to 7, within the class (the idle class has none) */
  ionicePriority: number;
}

/** The threads of this process (its main thread first), as the kernel lists them. */
function threadIds(): number[] {
  try {
    const tids = readdirSync('/proc/self/task').map(Number).filter((t) => Number.isInteger(t) && t > 0);
    return [process.pid, ...tids.filter((t) => t !== process.pid)];
  } catch {
    return [process.pid];
  }
}

/**
 * Sets this process's scheduling and I/O priority as configured. A setting the system refuses
 * (a negative nice value or the real-time class without the privilege for it) is logged, and the
 * process goes on unchanged, as Swift's does. Returns what was applied, for the caller's log.
 */
export function modifyPriority(s: PrioritySettings, log: Logger): { nice: boolean; ionice: boolean } {
  const done = { nice: false, ionice: false };
  if (s.nicePriority !== null) {
    try {
      for (const tid of threadIds()) {
        try {
          setPriority(tid, s.nicePriority);
        } catch (e) {
          // a thread that ended meanwhile is no reason to stop; the main thread's refusal is
          if (tid === process.pid) throw e;
        }
      }
      done.nice = true;
      log.debug(`set nice priority to ${s.nicePriority}`);
    } catch (e) {
      log.warn({ err: e }, `Unable to modify scheduling priority of process (nice_priority = ${s.nicePriority}). Keeping unchanged! ${(e as Error).message}`);
    }
  }
  if (s.ioniceClass !== null) {
    const cls = IO_CLASSES[s.ioniceClass];
    // the idle class takes no priority within it (ionice warns if given one)
    const set = ['-c', String(cls), ...(cls === IO_CLASSES.IOPRIO_CLASS_IDLE ? [] : ['-n', String(s.ionicePriority)])];
    const [main, ...others] = threadIds();
    // The main thread first, where a refusal counts; then the others, any of which may have
    // ended meanwhile (-t: go on past a thread that is gone).
    const r = spawnSync('ionice', [...set, '-p', String(main)], { encoding: 'utf8', timeout: 10_000 });
    if (r.error || r.status !== 0) {
      const why = r.error ? r.error.message : (r.stderr || `exit status ${r.status}`).trim();
      log.warn(`Unable to modify I/O scheduling class and priority of process (ionice_class = ${s.ioniceClass}, ionice_priority = ${s.ionicePriority}). Keeping unchanged! ${why}`);
    } else {
      if (others.length) spawnSync('ionice', ['-t', ...set, '-p', ...others.map(String)], { timeout: 10_000 });
      done.ionice = true;
      log.debug(`set ionice class ${s.ioniceClass} priority ${s.ionicePriority}`);
    }
  }
  return done;
}
