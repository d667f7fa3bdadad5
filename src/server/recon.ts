// The two middlewares a Swift object server's pipeline names before the app: healthcheck
// (GET /healthcheck: "OK", or 503 while its disable_path exists) and recon (GET /recon/...: the
// node's recon cache, devices, rings, load, memory and sockets as JSON, what swift-recon asks
// every storage node for). Each answer is what Swift's middleware gives, key order and number
// formatting included, except /recon/version, which names fragmend's version.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, opendirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isMountSync } from '../swift/fsutil.js';
import type { StoragePolicies } from '../swift/policies.js';
import { PyFloat, pyDumps, pyLoads, type PyDict, type PyJson } from '../swift/py-json.js';
import { FRAGMEND_VERSION } from '../version.js';

export interface HealthcheckOptions {
  /** While a file exists here, /healthcheck answers 503 (empty: never). */
  disablePath: string;
}

export interface ReconOptions {
  devices: string;
  swiftDir: string;
  reconCachePath: string;
}

export const DEFAULT_RECON_CACHE_PATH = '/var/cache/swift';

export interface MiddlewareReply {
  status: number;
  body: string;
  contentType: string;
}

const TEXT = 'text/plain';
const JSON_TYPE = 'application/json';

/** Swift's healthcheck middleware, for a request whose (unquoted) path is /healthcheck. */
export function healthcheck(o: HealthcheckOptions): MiddlewareReply {
  if (o.disablePath && existsSync(o.disablePath)) return { status: 503, body: 'DISABLED BY FILE', contentType: TEXT };
  return { status: 200, body: 'OK', contentType: TEXT };
}

/** Python's urllib.parse.quote_plus(s) === s: a device name check_mount accepts. */
const plainDriveName = (s: string) => /^[A-Za-z0-9_.\-~]*$/.test(s);

/** os.listdir: the names in the directory's own order (fs.readdirSync sorts them). */
function listdir(path: string): string[] {
  const dir = opendirSync(path);
  const names: string[] = [];
  try {
    for (let e = dir.readSync(); e; e = dir.readSync()) names.push(e.name);
  } finally {
    dir.closeSync();
  }
  return names;
}

/** The system's page size, from the auxiliary vector (AT_PAGESZ); 4096 where it cannot be read. */
let pageSizeCache: number | undefined;
function pageSize(): number {
  if (pageSizeCache !== undefined) return pageSizeCache;
  pageSizeCache = 4096;
  try {
    const auxv = readFileSync('/proc/self/auxv');
    for (let i = 0; i + 16 <= auxv.length; i += 16) {
      const type = auxv.readBigUInt64LE(i);
      if (type === 0n) break;
      if (type === 6n) {
        pageSizeCache = Number(auxv.readBigUInt64LE(i + 8));
        break;
      }
    }
  } catch {
    /* not Linux: the common size */
  }
  return pageSizeCache;
}

/**
 * time.time(), to the microsecond: swift-recon's time check wants it between the moments it sent
 * the request and read the answer, with no slack by default. Date.now() has only milliseconds;
 * the performance clock has more, but runs from the process's start and so keeps any step of the
 * system clock since out. It is used while it agrees with Date.now() to the millisecond.
 */
function wallClock(): number {
  const precise = performance.timeOrigin + performance.now();
  const coarse = Date.now();
  return (Math.abs(precise - coarse) <= 1 ? precise : coarse + 0.5) / 1000;
}

/** Swift's recon middleware. */
export class Recon {
  private readonly objectCache: string;
  private readonly containerCache: string;
  private readonly accountCache: string;
  private readonly driveCache: string;
  private readonly relinkerCache: string;
  private readonly rings: string[];

  constructor(
    private readonly o: ReconOptions,
    policies: StoragePolicies,
    private readonly swiftConfPath: string,
    private readonly log: Logger,
  ) {
    this.objectCache = join(o.reconCachePath, 'object.recon');
    this.containerCache = join(o.reconCachePath, 'container.recon');
    this.accountCache = join(o.reconCachePath, 'account.recon');
    this.driveCache = join(o.reconCachePath, 'drive.recon');
    this.relinkerCache = join(o.reconCachePath, 'relinker.recon');
    this.rings = [join(o.swiftDir, 'account.ring.gz'), join(o.swiftDir, 'container.ring.gz'), ...[...policies].map((p) => join(o.swiftDir, `${p.ringName}.ring.gz`))];
  }

  /** The answer to a request whose (unquoted) path starts with /recon/; `quoted` is for messages. */
  answer(path: string, quoted: string): MiddlewareReply {
    const rest = path.slice('/recon/'.length);
    const slash = rest.indexOf('/');
    const rcheck = slash < 0 ? rest : rest.slice(0, slash);
    const rtype = slash < 0 ? null : rest.slice(slash + 1);
    const content = this.content(rcheck, rtype);
    if (content === undefined) return { status: 404, body: `Invalid path: ${quoted}`, contentType: TEXT };
    return { status: 200, body: pyDumps(content), contentType: JSON_TYPE };
  }

  private content(rcheck: string, rtype: string | null): PyJson | undefined {
    const all = ['account', 'container', 'object'];
    switch (rcheck) {
      case 'mem':
        return this.mem();
      case 'load':
        return this.load();
      case 'async':
        return this.fromCache(['async_pending', 'async_pending_last'], this.objectCache);
      case 'replication':
        if (rtype === null) return this.replication('object');
        return all.includes(rtype) ? this.replication(rtype) : undefined;
      case 'devices':
        return this.devices();
      case 'updater':
        if (rtype === 'container') return this.fromCache(['container_updater_sweep'], this.containerCache);
        if (rtype === 'object') return this.fromCache(['object_updater_sweep'], this.objectCache);
        return undefined;
      case 'auditor':
        if (rtype === 'account') return this.fromCache(['account_audits_passed', 'account_auditor_pass_completed', 'account_audits_since', 'account_audits_failed'], this.accountCache);
        if (rtype === 'container') return this.fromCache(['container_audits_passed', 'container_auditor_pass_completed', 'container_audits_since', 'container_audits_failed'], this.containerCache);
        if (rtype === 'object') return this.fromCache(['object_auditor_stats_ALL', 'object_auditor_stats_ZBF'], this.objectCache);
        return undefined;
      case 'expirer':
        return rtype === 'object' ? this.fromCache(['object_expiration_pass', 'expired_last_pass'], this.objectCache) : undefined;
      case 'mounted':
        return this.mounted();
      case 'unmounted':
        return this.unmounted();
      case 'diskusage':
        return this.diskusage();
      case 'ringmd5':
        return this.ringMd5();
      case 'swiftconfmd5':
        return new Map([[this.swiftConfPath, this.md5OfFile(this.swiftConfPath, 'swift.conf')]]);
      case 'quarantined':
        return this.quarantined();
      case 'sockstat':
        return this.sockstat();
      case 'version':
        return new Map([['version', `fragmend-${FRAGMEND_VERSION}`]]);
      case 'driveaudit':
        return this.fromCache(['drive_audit_errors'], this.driveCache);
      case 'time':
        return new PyFloat(wallClock());
      case 'sharding':
        return this.fromCache(['sharding_stats', 'sharding_time', 'sharding_last'], this.containerCache);
      case 'relinker':
        return this.fromCache(['devices', 'workers'], this.relinkerCache, true);
      case 'reconstruction':
        return rtype === 'object' ? this.fromCache(['object_reconstruction_last', 'object_reconstruction_time'], this.objectCache) : undefined;
      default:
        return undefined;
    }
  }

  /** Swift's _from_recon_cache: the keys asked for, each null when the file lacks it or cannot be read. */
  private fromCache(keys: string[], file: string, ignoreMissing = false): PyDict {
    let data: PyJson = null;
    try {
      data = pyLoads(readFileSync(file, 'utf8'));
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      if (!(missing && ignoreMissing)) this.log.error({ err: e }, missing || (e as NodeJS.ErrnoException).code ? 'Error reading recon cache file' : 'Error parsing recon cache file');
    }
    const got = data instanceof Map ? data : null;
    if (data !== null && !got) this.log.error(`Error retrieving recon data: ${file} does not hold a dict`);
    return new Map(keys.map((k) => [k, got?.get(k) ?? null]));
  }

  private replication(type: string): PyDict {
    const keys = ['replication_time', 'replication_stats', 'replication_last'];
    if (type === 'account') return this.fromCache(keys, this.accountCache);
    if (type === 'container') return this.fromCache(keys, this.containerCache);
    return this.fromCache([...keys, 'object_replication_time', 'object_replication_last'], this.objectCache);
  }

  private mem(): PyDict {
    const out: PyDict = new Map();
    for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
      if (!line) continue;
      const parts = line.trimEnd().split(':');
      out.set(parts[0]!, (parts[1] ?? '').trim());
    }
    return out;
  }

  private load(): PyDict {
    const [one, five, fifteen, tasks, procs] = readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/) as string[];
    return new Map<string, PyJson>([
      ['1m', new PyFloat(Number(one))],
      ['5m', new PyFloat(Number(five))],
      ['15m', new PyFloat(Number(fifteen))],
      ['tasks', tasks ?? ''],
      ['processes', Number(procs)],
    ]);
  }

  private mounted(): PyJson[] {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [device, path] = line.trimEnd().split(/\s+/) as [string, string];
        return new Map([
          ['device', device],
          ['path', path],
        ]) as PyDict;
      });
  }

  private devices(): PyDict {
    try {
      return new Map([[this.o.devices, listdir(this.o.devices)]]);
    } catch (e) {
      this.log.error({ err: e }, 'Error listing devices');
      return new Map([[this.o.devices, null]]);
    }
  }

  /** The device directories under devices, each with whether check_mount passes. */
  private deviceDirs(): Array<{ name: string; path: string; mounted: boolean }> {
    const out: Array<{ name: string; path: string; mounted: boolean }> = [];
    for (const name of listdir(this.o.devices)) {
      const path = join(this.o.devices, name);
      try {
        if (!statSync(path).isDirectory()) continue;
      } catch {
        continue;
      }
      out.push({ name, path, mounted: plainDriveName(name) && isMountSync(path) });
    }
    return out;
  }

  private unmounted(): PyJson[] {
    return this.deviceDirs()
      .filter((d) => !d.mounted)
      .map(
        (d) =>
          new Map<string, PyJson>([
            ['device', d.name],
            ['mounted', false],
          ]),
      );
  }

  private diskusage(): PyJson[] {
    return this.deviceDirs().map((d) => {
      if (!d.mounted) {
        return new Map<string, PyJson>([
          ['device', d.name],
          ['mounted', false],
          ['size', ''],
          ['used', ''],
          ['avail', ''],
        ]);
      }
      const s = statfsSync(d.path);
      return new Map<string, PyJson>([
        ['device', d.name],
        ['mounted', true],
        ['size', s.bsize * s.blocks],
        ['used', s.bsize * (s.blocks - s.bavail)],
        ['avail', s.bsize * s.bavail],
      ]);
    });
  }

  private md5OfFile(path: string, what: string): string | null {
    try {
      return createHash('md5').update(readFileSync(path)).digest('hex');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error({ err: e }, `Error reading ${what}`);
      return null;
    }
  }

  private ringMd5(): PyDict {
    const sums: PyDict = new Map();
    for (const ring of this.rings) if (existsSync(ring)) sums.set(ring, this.md5OfFile(ring, 'ringfile'));
    return sums;
  }

  private quarantined(): PyDict {
    const policies: PyDict = new Map();
    const counts: PyDict = new Map<string, PyJson>([
      ['objects', 0],
      ['containers', 0],
      ['accounts', 0],
      ['policies', policies],
    ]);
    const add = (key: string, n: number) => counts.set(key, ((counts.get(key) as number | undefined) ?? 0) + n);
    for (const device of listdir(this.o.devices)) {
      const qpath = join(this.o.devices, device, 'quarantined');
      if (!existsSync(qpath)) continue;
      for (const qtype of listdir(qpath)) {
        const n = lstatSync(join(qpath, qtype)).nlink - 2;
        if (n <= 0) continue;
        if (qtype.startsWith('objects')) {
          const key = qtype.includes('-') ? qtype.slice(qtype.indexOf('-') + 1) : '0';
          const p = (policies.get(key) as PyDict | undefined) ?? new Map([['objects', 0]]);
          p.set('objects', (p.get('objects') as number) + n);
          policies.set(key, p);
          add('objects', n);
        } else {
          add(qtype, n);
        }
      }
    }
    return counts;
  }

  private sockstat(): PyDict {
    const out: PyDict = new Map();
    const read = (path: string): string | null => {
      try {
        return readFileSync(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    };
    for (const line of (read('/proc/net/sockstat') ?? '').split('\n')) {
      if (!line.startsWith('TCP: inuse')) continue;
      const f = line.split(/\s+/);
      out.set('tcp_in_use', Number(f[2]));
      out.set('orphan', Number(f[4]));
      out.set('time_wait', Number(f[6]));
      out.set('tcp_mem_allocated_bytes', Number(f[10]) * pageSize());
    }
    for (const line of (read('/proc/net/sockstat6') ?? '').split('\n')) {
      if (line.startsWith('TCP6: inuse')) out.set('tcp6_in_use', Number(line.split(/\s+/)[2]));
    }
    return out;
  }
}
