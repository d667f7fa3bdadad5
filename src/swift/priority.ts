// Swift's modify_priority and drop_privileges, which every Swift daemon applies at start:
// nice_priority, ionice_class and ionice_priority, so an operator can keep the reconstructor
// from competing with client traffic for the cores and the disks; and `user`, the account a
// daemon started as root goes on as, so that what it creates on the devices belongs to the
// account the object servers run as.
//
// Linux gives each thread its own nice value and I/O priority, and a thread starts with its
// creator's. Swift sets them for its process's main thread, before it starts any other; a Node
// process has started V8's and libuv's threads by then, so every thread of the process is set.
// Node has no ioprio_set: util-linux's ionice (in every Debian) makes the call.
import { ConfigError, type OptionReader } from './conf.js';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setPriority, userInfo } from 'node:os';
import type { Logger } from 'pino';

/** A helper command's outcome; node:child_process is loaded only when a setting needs one. */
function runTool(cmd: string, args: string[]): { ok: boolean; stdout: string; why: string } {
  const cp = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const r = cp.spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  const ok = !r.error && r.status === 0;
  return { ok, stdout: r.stdout ?? '', why: r.error ? r.error.message : (r.stderr || `exit status ${r.status}`).trim() };
}

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

/** The account and priorities every Swift daemon reads from its section (DEFAULT included). */
export interface ProcessSettings extends PrioritySettings {
  /** the account a process started as root goes on as (Swift's drop_privileges) */
  user: string;
}

/**
 * user, nice_priority, ionice_class and ionice_priority, with Swift's defaults. A value Swift
 * would warn about and ignore stops start-up here, naming the option, as every option does.
 */
export function readProcessSettings(r: OptionReader, where: string): ProcessSettings {
  const ioniceClass = r.has('ionice_class') ? r.str('ionice_class', '') : null;
  if (ioniceClass !== null && !Object.hasOwn(IO_CLASSES, ioniceClass)) {
    throw new ConfigError(`${where}: ionice_class must be one of ${Object.keys(IO_CLASSES).join(', ')}, not ${JSON.stringify(ioniceClass)}`);
  }
  return {
    user: r.str('user', 'swift'),
    nicePriority: r.has('nice_priority') ? r.int('nice_priority', 0, { min: -20, max: 19 }) : null,
    ioniceClass: ioniceClass as IoClass | null,
    ionicePriority: r.int('ionice_priority', 0, { min: 0, max: 7 }),
  };
}

/**
 * The threads of this process other than its main thread, as the kernel lists them. Listed after
 * the main thread is set: a thread started after that (the first log line starts libuv's pool)
 * takes the main thread's settings, one started before is in the list.
 */
function otherThreads(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number).filter((t) => Number.isInteger(t) && t > 0 && t !== process.pid);
  } catch {
    return [];
  }
}

/**
 * Sets this process's scheduling and I/O priority as configured. A setting the system refuses
 * (a negative nice value or the real-time class without the privilege for it) is logged, and the
 * process goes on unchanged, as Swift's does.
 */
export function modifyPriority(s: PrioritySettings, log: Logger): void {
  if (s.nicePriority !== null) {
    try {
      setPriority(process.pid, s.nicePriority);
      for (const tid of otherThreads()) {
        try {
          setPriority(tid, s.nicePriority);
        } catch {
          // a thread that ended meanwhile
        }
      }
      log.debug(`set nice priority to ${s.nicePriority}`);
    } catch (e) {
      log.warn({ err: e }, `Unable to modify scheduling priority of process (nice_priority = ${s.nicePriority}). Keeping unchanged! ${(e as Error).message}`);
    }
  }
  if (s.ioniceClass !== null) {
    const cls = IO_CLASSES[s.ioniceClass];
    // the idle class takes no priority within it (ionice warns if given one)
    const set = ['-c', String(cls), ...(cls === IO_CLASSES.IOPRIO_CLASS_IDLE ? [] : ['-n', String(s.ionicePriority)])];
    // The main thread first, where a refusal counts; then the others, any of which may have
    // ended meanwhile (-t: go on past a thread that is gone).
    const r = runTool('ionice', [...set, '-p', String(process.pid)]);
    if (!r.ok) {
      log.warn(`Unable to modify I/O scheduling class and priority of process (ionice_class = ${s.ioniceClass}, ionice_priority = ${s.ionicePriority}). Keeping unchanged! ${r.why}`);
    } else {
      const others = otherThreads();
      if (others.length) runTool('ionice', ['-t', ...set, '-p', ...others.map(String)]);
      log.debug(`set ionice class ${s.ioniceClass} priority ${s.ionicePriority}`);
    }
  }
}

/** A user's uid, primary gid and home, through the system's user database (getent, as NSS has it). */
function lookUpUser(user: string): { uid: number; gid: number; home: string } | null {
  const r = runTool('getent', ['passwd', user]);
  const f = r.ok ? r.stdout.split('\n')[0]!.split(':') : [];
  if (f.length < 7) return null;
  const [uid, gid] = [Number(f[2]), Number(f[3])];
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid, home: f[5]! } : null;
}

/**
 * Swift's drop_privileges(user): a process running as root takes on the user's groups, group
 * and id, and its HOME. One already running as that user has nothing to do; one running as
 * another user cannot switch, and stops (Swift's setgid fails the same way).
 */
export function dropPrivileges(user: string, log: Logger): void {
  let me = '';
  try {
    me = userInfo().username;
  } catch {
    // a uid with no entry in the user database (some containers): compared by id below
  }
  if (me === user) return;
  const getuid = process.getuid?.bind(process);
  if (!getuid) return; // not a POSIX system: nothing to drop
  const pw = lookUpUser(user);
  if (!pw) throw new ConfigError(`user = ${user}: no such user`);
  if (getuid() === pw.uid) return;
  if (process.geteuid?.() !== 0) {
    throw new ConfigError(`user = ${user}: running as ${me || `uid ${getuid()}`}, not as root, this process cannot become ${user}`);
  }
  // (initgroups: the groups listing the user as a member, as Swift's setgroups, and its own)
  (process as unknown as { initgroups(user: string, extraGroup: number): void }).initgroups(user, pw.gid);
  process.setgid!(pw.gid);
  process.setuid!(pw.uid);
  process.env.HOME = pw.home;
  log.debug(`running as ${user} (uid ${pw.uid}, gid ${pw.gid})`);
}
