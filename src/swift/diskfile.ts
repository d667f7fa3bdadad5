// Swift's EC DiskFile layer on its own disk layout: devices/<dev>/objects-N/<part>/<suffix>/
// <hash>/<files>, with tmp-N for writes in flight and quarantined/objects-N for bad objects.
// Writes are atomic (temp file, xattrs, fsync, rename, directory fsync); EC data becomes
// durable by a rename to #d; cleanup, reclaim and purge follow ECDiskFileManager.
import { openSync, readdirSync, renameSync, statSync, writeSync } from 'node:fs';
import { open, readdir, rmdir, OpenFile } from './afs.js';
import { fsyncDir, isFileOlder, isMountSync, makeDirs, removeFile, renamer } from './fsutil.js';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { hashPath } from './hash-path.js';
import { randomHex } from './lazy-crypto.js';
import { Md5 } from './md5.js';
import { withLock } from './locks.js';
import {
  DiskFileError,
  getOnDiskFiles,
  makeOnDiskFilename,
  validateFragmentIndex,
  verifyOnDiskFiles,
  type ECShape,
  type FileInfo,
  type FragPref,
  type OnDiskInfo,
} from './ondisk.js';
import { formatContentCheck, parseContentCheck } from './content-check.js';
import { DiskFileBadMetadataChecksum, DiskFileNotExist, encodeSurrogateEscape, readMetadataAndCheck, writeMetadata, type Metadata } from './metadata.js';
import { policyString, type StoragePolicy } from './policies.js';
import { Timestamp } from './timestamp.js';
import { consolidateHashes, hashesEqual, invalidateHash, readHashes, sameSuffixHashes, writeHashes, type SuffixHashes } from './hashes.js';


/**
 * Directory listings on the hot paths (a partition per job, a hash directory per object
 * opened) are made with plain calls, as Swift makes them: a listing is one getdents, cheaper
 * than a round trip through the thread pool.
 */
function listdirOrEmpty(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

export { DiskFileError, DiskFileNotExist, renamer };
export class DiskFileDeleted extends DiskFileNotExist {
  constructor(readonly metadata: Metadata) {
    super(`object deleted at ${metadata['X-Timestamp']}`);
  }
  get timestamp(): Timestamp {
    return new Timestamp(this.metadata['X-Timestamp'] ?? '0');
  }
}
export class DiskFileExpired extends DiskFileDeleted {}
export class DiskFileQuarantined extends DiskFileError {}
export class DiskFileCollision extends DiskFileError {}
export class DiskFileDeviceUnavailable extends DiskFileError {}
export class PathNotDir extends Error {}

export const DEFAULT_RECLAIM_AGE = 7 * 24 * 3600;
export const DEFAULT_COMMIT_WINDOW = 60;
const RESERVED_DATAFILE_META = new Set(['content-length', 'deleted', 'etag']);
const DATAFILE_SYSTEM_META = new Set(['x-static-large-object']);

export interface DiskFileManagerOptions {
  devices: string;
  mountCheck?: boolean;
  reclaimAge?: number;
  commitWindow?: number;
  hashPrefix: string;
  hashSuffix: string;
  /** Where problems worth an operator's attention go; silent by default. */
  warn?: (msg: string) => void;
}

export const dataDir = (policy: StoragePolicy | number) => policyString('objects', typeof policy === 'number' ? policy : policy.index);
export const tmpDir = (policy: StoragePolicy | number) => policyString('tmp', typeof policy === 'number' ? policy : policy.index);

function shapeOf(policy: StoragePolicy): ECShape | undefined {
  return policy.ec ? { ndata: policy.ec.ndata, nparity: policy.ec.nparity } : undefined;
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

export interface CleanupResult extends OnDiskInfo {
  /** Files left in the directory, reverse sorted. */
  files: string[];
}

export type { SuffixHashes };

export class ECDiskFileManager {
  readonly devices: string;
  readonly mountCheck: boolean;
  readonly reclaimAge: number;
  readonly commitWindow: number;
  readonly hashPrefix: string;
  readonly hashSuffix: string;
  private readonly warn: (msg: string) => void;

  constructor(opts: DiskFileManagerOptions) {
    this.devices = opts.devices;
    this.mountCheck = opts.mountCheck ?? true;
    this.reclaimAge = opts.reclaimAge ?? DEFAULT_RECLAIM_AGE;
    this.commitWindow = opts.commitWindow ?? DEFAULT_COMMIT_WINDOW;
    this.hashPrefix = opts.hashPrefix;
    this.hashSuffix = opts.hashSuffix;
    this.warn = opts.warn ?? (() => undefined);
  }

  /** The device's path, or null when mount_check is on and it is not mounted. */
  async getDevPath(device: string, mountCheck = this.mountCheck): Promise<string | null> {
    if (!device || device.includes('/') || device === '.' || device === '..') return null;
    const p = join(this.devices, device);
    // plain stat calls, as Swift's check_drive makes: this runs for every request
    if (mountCheck) return isMountSync(p) ? p : null;
    return statSync(p, { throwIfNoEntry: false })?.isDirectory() ? p : null;
  }

  partPath(devPath: string, policy: StoragePolicy, partition: number | string): string {
    return join(devPath, dataDir(policy), String(partition));
  }

  hashOf(account: string, container: string, obj: string): string {
    return hashPath(this.hashPrefix, this.hashSuffix, encodeSurrogateEscape(account), encodeSurrogateEscape(container), encodeSurrogateEscape(obj));
  }

  /** Removes obsolete and reclaimable files and reports what remains (cleanup_ondisk_files). */
  async cleanupOnDiskFiles(hashDir: string, opts: { fragIndex?: number | null; fragPrefs?: FragPref[] | null; policy?: StoragePolicy } = {}): Promise<CleanupResult> {
    let files: string[];
    try {
      files = readdirSync(hashDir);
    } catch (e) {
      if (errno(e) === 'ENOENT') return { ...getOnDiskFiles([], { fragIndex: opts.fragIndex, fragPrefs: opts.fragPrefs }), files: [] };
      throw e;
    }
    files.sort().reverse();
    const shape = opts.policy ? shapeOf(opts.policy) : undefined;
    const info = getOnDiskFiles(files, { fragIndex: opts.fragIndex, fragPrefs: opts.fragPrefs, shape });
    const now = Date.now() / 1000;
    const reclaimable = (t: Timestamp) => now - t.timestamp > this.reclaimAge;
    const remove = (name: string) => files.splice(files.indexOf(name), 1);
    if (info.tsInfo && reclaimable(info.tsInfo.timestamp)) {
      await removeFile(join(hashDir, info.tsInfo.filename));
      remove(info.tsInfo.filename);
      delete info.tsInfo;
    }
    for (const f of info.possibleReclaim) {
      if (
        reclaimable(f.timestamp) &&
        (f.durable || this.commitWindow <= 0 || (await isFileOlder(join(hashDir, f.filename), this.commitWindow)))
      ) {
        info.obsolete.push(f);
      }
    }
    for (const f of info.obsolete) {
      if (!files.includes(f.filename)) continue;
      await removeFile(join(hashDir, f.filename));
      remove(f.filename);
    }
    if (!files.length) await rmdir(hashDir).catch(() => undefined);
    return { ...info, files };
  }

  /** Per-fragment-index md5s of a suffix directory (_hash_suffix_dir), after cleanup. */
  async hashSuffixDir(suffixDir: string, policy: StoragePolicy): Promise<SuffixHashes> {
    const hashers = new Map<number | null, Md5>();
    const update = (key: number | null, s: string) => {
      if (!hashers.has(key)) hashers.set(key, new Md5());
      hashers.get(key)!.update(s);
    };
    let entries: string[];
    try {
      entries = (await readdir(suffixDir)).sort();
    } catch (e) {
      if (errno(e) === 'ENOTDIR' || errno(e) === 'ENOENT') throw new PathNotDir(suffixDir);
      throw e;
    }
    const devicePath = dirname(dirname(dirname(suffixDir)));
    for (const hsh of entries) {
      const hashDir = join(suffixDir, hsh);
      let info: CleanupResult;
      try {
        info = await this.cleanupOnDiskFiles(hashDir, { policy });
      } catch (e) {
        if (errno(e) === 'ENOTDIR' || errno(e) === 'ENODATA') {
          const to = await this.quarantineRenamer(devicePath, join(hashDir, 'made-up-filename'));
          this.warn(`Quarantined ${hashDir} to ${to} because it is not a directory`);
          continue;
        }
        throw e;
      }
      if (!info.files.length) continue;
      if (info.metaInfo) update(null, info.metaInfo.timestamp.internal + info.metaInfo.ext);
      if (info.tsInfo) update(null, info.tsInfo.timestamp.internal + info.tsInfo.ext);
      for (const set of info.fragSets.values()) for (const f of set) update(f.fragIndex, f.timestamp.internal);
      if (info.durableFragSet) update(null, info.durableFragSet[0]!.timestamp.internal + '.durable');
      if (info.ctypeInfo) update(null, info.ctypeInfo.ctypeTimestamp!.internal + '_ctype');
    }
    try {
      await rmdir(suffixDir);
    } catch (e) {
      if (errno(e) === 'ENOENT') throw new PathNotDir(suffixDir);
      return new Map([...hashers].map(([k, h]) => [k, h.hex()]));
    }
    throw new PathNotDir(suffixDir);
  }

  async quarantineRenamer(devicePath: string, corruptedFilePath: string): Promise<string> {
    const m = /\/(objects(?:-(\d+))?)\/[^/]+\/[^/]+\/[^/]+\/[^/]+$/.exec(corruptedFilePath) ?? /\/(objects(?:-(\d+))?)\//.exec(corruptedFilePath);
    const objectsDir = m ? m[1]! : 'objects';
    const fromDir = dirname(corruptedFilePath);
    let toDir = join(devicePath, 'quarantined', objectsDir, basename(fromDir));
    await invalidateHash(basename(fromDir).length === 3 ? fromDir : dirname(fromDir));
    try {
      await renamer(fromDir, toDir, false);
    } catch (e) {
      if (errno(e) !== 'EEXIST' && errno(e) !== 'ENOTEMPTY') throw e;
      toDir = `${toDir}-${randomHex(16)}`;
      await renamer(fromDir, toDir, false);
    }
    return toDir;
  }

  /**
   * Suffix hashes of a partition (Swift's get_hashes): hashes.pkl consolidated with
   * hashes.invalid, missing and invalidated suffixes rehashed, the result written back.
   * Returns the number of suffixes hashed and { suffix: { null|fi: md5 } }.
   */
  async getHashes(devPath: string, partition: number | string, policy: StoragePolicy, recalculate: string[] = [], doListdir = false): Promise<{ hashed: number; hashes: Map<string, SuffixHashes> }> {
    return (await this.hashesOf(devPath, partition, policy, recalculate, doListdir, false))!;
  }

  /**
   * getHashes for a partition whose hashes.pkl is there and valid (only its invalidated
   * suffixes to rehash), else null: what costs a file read or two, never a whole partition's
   * listing and hashing.
   */
  async cachedHashes(devPath: string, partition: number | string, policy: StoragePolicy): Promise<{ hashed: number; hashes: Map<string, SuffixHashes> } | null> {
    return this.hashesOf(devPath, partition, policy, [], false, true);
  }

  private async hashesOf(
    devPath: string,
    partition: number | string,
    policy: StoragePolicy,
    recalculate: string[],
    doListdir: boolean,
    ifValid: boolean,
  ): Promise<{ hashed: number; hashes: Map<string, SuffixHashes> } | null> {
    const partPath = this.partPath(devPath, policy, partition);
    let hashed = 0;
    let modified = false;
    let orig = await consolidateHashes(partPath).catch((e) => {
      this.warn(`Unable to read ${join(partPath, 'hashes.pkl')}: ${(e as Error).message}`);
      return null;
    });
    if (ifValid && (!orig || !orig.valid)) return null;
    let hashes: Map<string, SuffixHashes | null>;
    if (!orig || !orig.valid) {
      doListdir = true;
      modified = true;
      hashes = new Map();
      orig = await readHashes(partPath);
    } else {
      hashes = new Map(orig.suffixes);
    }
    if (doListdir) {
      // Swift rewrites hashes.pkl (and fsyncs it) after every listing, even when the listing
      // found nothing new, so each pass costs every partition a write. Only a new suffix (or
      // a missing or invalid hashes.pkl) changes what the file would say.
      for (const suff of listdirOrEmpty(partPath)) {
        if (suff.length === 3 && !hashes.has(suff)) {
          hashes.set(suff, null);
          modified = true;
        }
      }
    }
    for (const s of recalculate) hashes.set(s, null);
    for (const [suffix, h] of [...hashes]) {
      if (h) continue;
      const before = orig.valid ? orig.suffixes.get(suffix) : undefined;
      try {
        const now = await this.hashSuffixDir(join(partPath, suffix), policy);
        hashes.set(suffix, now);
        hashed++;
        // Swift writes hashes.pkl (and fsyncs it) whenever it hashed a suffix. A suffix asked
        // to be recalculated that hashes as hashes.pkl already says changes nothing in the
        // file: a sync job recalculates every suffix its partner disagrees with, and a
        // partner that lacks them is no reason to rewrite this node's hashes.
        if (!before || !sameSuffixHashes(before, now)) modified = true;
      } catch (e) {
        if (e instanceof PathNotDir) hashes.delete(suffix);
        else this.warn(`Error hashing suffix ${suffix}: ${(e as Error).message}`);
        modified = true;
      }
    }
    if (!modified) return { hashed, hashes: hashes as Map<string, SuffixHashes> };
    const written = await withLock(partPath, async () => {
      const now = await readHashes(partPath);
      if (!hashesEqual(now, orig!)) return false;
      await writeHashes(partPath, { valid: true, updated: Date.now() / 1000, suffixes: hashes });
      return true;
    });
    if (written) return { hashed, hashes: hashes as Map<string, SuffixHashes> };
    return this.hashesOf(devPath, partition, policy, recalculate, doListdir, ifValid);
  }

  /**
   * Every object of a partition (or of some suffixes) with its timestamps, as Swift's
   * yield_hashes gives them to SSYNC: ts_data (data or tombstone), ts_meta, ts_ctype, durable.
   */
  async *yieldHashes(
    devPath: string,
    partition: number | string,
    policy: StoragePolicy,
    opts: { suffixes?: string[]; fragIndex?: number | null; fragPrefs?: FragPref[] | null } = {},
  ): AsyncGenerator<[string, { tsData: Timestamp; tsMeta?: Timestamp; tsCtype?: Timestamp; durable?: boolean }]> {
    const partPath = this.partPath(devPath, policy, partition);
    const suffixes = opts.suffixes ?? listdirOrEmpty(partPath).filter((s) => /^[0-9a-f]{3}$/i.test(s) && s.length === 3);
    for (const suffix of suffixes) {
      const suffixPath = join(partPath, suffix);
      let found = false;
      for (const hsh of listdirOrEmpty(suffixPath)) {
        const objectPath = join(suffixPath, hsh);
        let info: CleanupResult;
        try {
          info = await this.cleanupOnDiskFiles(objectPath, { fragIndex: opts.fragIndex, fragPrefs: opts.fragPrefs, policy });
        } catch (e) {
          if (e instanceof DiskFileError) continue;
          throw e;
        }
        if (info.files.length) found = true;
        if (!verifyOnDiskFiles(info, opts.fragPrefs)) continue;
        const tsData = info.dataInfo?.timestamp ?? info.tsInfo?.timestamp;
        if (!tsData) continue;
        const result: { tsData: Timestamp; tsMeta?: Timestamp; tsCtype?: Timestamp; durable?: boolean } = { tsData };
        if (info.metaInfo) result.tsMeta = info.metaInfo.timestamp;
        if (info.ctypeInfo) result.tsCtype = info.ctypeInfo.ctypeTimestamp!;
        if (info.dataInfo) result.durable = info.dataInfo.durable;
        yield [hsh, result];
      }
      if (!found) await invalidateHash(suffixPath);
    }
  }

  diskFile(devPath: string, partition: number | string, account: string, container: string, obj: string, policy: StoragePolicy, opts: DiskFileOptions = {}): ECDiskFile {
    const name = `/${account}/${container}/${obj}`;
    return new ECDiskFile(this, devPath, partition, policy, this.hashOf(account, container, obj), name, opts);
  }

  /** A diskfile known only by its hash: its name is taken from its metadata and checked. */
  diskFileFromHash(devPath: string, partition: number | string, hash: string, policy: StoragePolicy, opts: DiskFileOptions = {}): ECDiskFile {
    return new ECDiskFile(this, devPath, partition, policy, hash, null, opts);
  }
}


export interface DiskFileOptions {
  fragIndex?: number | null;
  fragPrefs?: Array<{ timestamp: string | Timestamp; exclude: number[] }> | null;
  /** Open objects whose X-Delete-At has passed (replication does). */
  openExpired?: boolean;
}

export class ECDiskFile {
  readonly datadir: string;
  readonly fragIndex: number | null;
  readonly fragPrefs: FragPref[] | null;
  private name: string | null;
  private info: OnDiskInfo | null = null;
  private md: Metadata | null = null;
  private datafileMd: Metadata | null = null;
  private metafileMd: Metadata = {};
  dataFile: string | null = null;
  contentLength = 0;
  /**
   * The CRC-32 fragmend recorded of the data file's bytes when it wrote them (content-check.ts),
   * when the record names the file's size and ETag; otherwise null.
   */
  contentCrc32: number | null = null;

  constructor(
    readonly mgr: ECDiskFileManager,
    readonly devPath: string,
    readonly partition: number | string,
    readonly policy: StoragePolicy,
    readonly hash: string,
    name: string | null,
    private readonly opts: DiskFileOptions = {},
  ) {
    this.name = name;
    this.datadir = join(mgr.partPath(devPath, policy, partition), hash.slice(-3), hash);
    const shape = shapeOf(policy);
    this.fragIndex = opts.fragIndex === undefined || opts.fragIndex === null ? null : validateFragmentIndex(opts.fragIndex, shape);
    this.fragPrefs = opts.fragPrefs
      ? opts.fragPrefs.map((p) => {
          try {
            return { timestamp: new Timestamp(p.timestamp as string), exclude: p.exclude.map((fi) => validateFragmentIndex(fi)) };
          } catch (e) {
            throw new DiskFileError(`Bad frag_prefs: ${JSON.stringify(opts.fragPrefs)}: ${(e as Error).message}`);
          }
        })
      : null;
  }

  get metadata(): Metadata {
    if (!this.md) throw new DiskFileError('diskfile not open');
    return this.md;
  }
  get datafileMetadata(): Metadata {
    if (!this.datafileMd) throw new DiskFileError('diskfile not open');
    return this.datafileMd;
  }
  get metafileMetadata(): Metadata {
    return this.metafileMd;
  }
  get timestamp(): Timestamp {
    return new Timestamp(this.metadata['X-Timestamp']!);
  }
  get dataTimestamp(): Timestamp {
    return new Timestamp(this.datafileMetadata['X-Timestamp']!);
  }
  get durableTimestamp(): Timestamp | null {
    return this.info?.durableFragSet?.[0]?.timestamp ?? null;
  }
  /** Fragment indexes present, by internal timestamp. */
  get fragments(): Map<string, number[]> {
    return new Map([...(this.info?.fragSets ?? new Map<string, FileInfo[]>())].map(([ts, set]) => [ts, set.map((f) => f.fragIndex!)]));
  }
  get contentType(): string | undefined {
    return this.metadata['Content-Type'];
  }
  get onDisk(): OnDiskInfo | null {
    return this.info;
  }

  /** Opens the object: its data file and merged metadata, or the reason there is none. */
  async open(currentTime = Date.now() / 1000): Promise<this> {
    let files: string[];
    try {
      files = readdirSync(this.datadir);
    } catch (e) {
      if (errno(e) === 'ENOTDIR') throw await this.quarantine(join(this.datadir, 'made-up-filename'), `Expected directory, found file at ${this.datadir}`);
      if (errno(e) !== 'ENOENT') throw new DiskFileError(`Error listing directory ${this.datadir}: ${(e as Error).message}`);
      files = [];
    }
    files.sort().reverse();
    const info = getOnDiskFiles(files, { fragIndex: this.fragIndex, fragPrefs: this.fragPrefs, shape: shapeOf(this.policy) });
    this.info = info;
    if (!info.dataInfo) {
      if (!info.tsInfo) throw new DiskFileNotExist(`${this.datadir}: no object`);
      let md: Metadata;
      try {
        md = await this.failsafeReadMetadata(join(this.datadir, info.tsInfo.filename));
      } catch (e) {
        if (e instanceof DiskFileQuarantined) throw new DiskFileNotExist(`${this.datadir}: no object`);
        throw e;
      }
      throw new DiskFileDeleted(md);
    }
    const dataFile = join(this.datadir, info.dataInfo.filename);
    this.dataFile = dataFile;
    const { md: dataMd, contentCheck } = await this.failsafeReadMetadataAndCheck(dataFile);
    this.datafileMd = dataMd;
    let md: Metadata = {};
    if (info.metaInfo) {
      this.metafileMd = await this.failsafeReadMetadata(join(this.datadir, info.metaInfo.filename));
      if (info.ctypeInfo && info.ctypeInfo !== info.metaInfo) await this.mergeContentType(join(this.datadir, info.ctypeInfo.filename), dataMd);
      const sys = Object.entries(dataMd).filter(([k]) => RESERVED_DATAFILE_META.has(k.toLowerCase()) || DATAFILE_SYSTEM_META.has(k.toLowerCase()) || k.toLowerCase().startsWith('x-object-sysmeta-'));
      md = { ...this.metafileMd, ...Object.fromEntries(sys) };
      delete this.metafileMd.name;
      const ctts = this.metafileMd['Content-Type-Timestamp'];
      if ('Content-Type' in dataMd && (ctts === undefined || new Timestamp(dataMd['X-Timestamp']!).compare(new Timestamp(ctts)) > 0)) {
        md['Content-Type'] = dataMd['Content-Type']!;
        delete md['Content-Type-Timestamp'];
      }
    } else {
      md = { ...dataMd };
    }
    this.md = md;
    if (this.name === null) {
      this.name = md.name ?? null;
      const fromName = this.name ? hashPath(this.mgr.hashPrefix, this.mgr.hashSuffix, encodeSurrogateEscape(this.name.replace(/^\/+/, ''))) : null;
      if (fromName !== this.hash) throw await this.quarantine(dataFile, 'Hash of name in metadata does not match directory name');
    }
    await this.verifyDataFile(dataFile, currentTime);
    const check = contentCheck === null ? null : parseContentCheck(contentCheck);
    this.contentCrc32 = check && check.size === this.contentLength && check.etag === dataMd.ETag ? check.crc32 : null;
    return this;
  }

  private async failsafeReadMetadata(path: string): Promise<Metadata> {
    return (await this.failsafeReadMetadataAndCheck(path)).md;
  }

  /** The file's metadata, quarantining it when that cannot be read, and its content check record as stored. */
  private async failsafeReadMetadataAndCheck(path: string): Promise<{ md: Metadata; contentCheck: string | null }> {
    try {
      return await readMetadataAndCheck(path);
    } catch (e) {
      if (e instanceof DiskFileNotExist) throw e;
      if (e instanceof DiskFileBadMetadataChecksum) throw await this.quarantine(path, e.message);
      throw await this.quarantine(path, `Exception reading metadata: ${(e as Error).message}`);
    }
  }

  private async mergeContentType(ctypeFile: string, dataMd: Metadata): Promise<void> {
    const c = await this.failsafeReadMetadata(ctypeFile);
    const cts = c['Content-Type-Timestamp'] ?? '';
    if ('Content-Type' in c && cts > (this.metafileMd['Content-Type-Timestamp'] ?? '') && cts > new Timestamp(dataMd['X-Timestamp']!).internal) {
      this.metafileMd['Content-Type'] = c['Content-Type']!;
      this.metafileMd['Content-Type-Timestamp'] = cts;
    }
  }

  private async verifyDataFile(dataFile: string, currentTime: number): Promise<void> {
    const md = this.md!;
    if (md.name === undefined) throw await this.quarantine(dataFile, 'missing name metadata');
    if (md.name !== this.name) throw new DiskFileCollision('Client path does not match path stored in object metadata');
    if (md['X-Delete-At'] !== undefined) {
      const at = Number(md['X-Delete-At']);
      if (!/^\s*[+-]?\d+\s*$/.test(md['X-Delete-At'])) throw await this.quarantine(dataFile, `bad metadata x-delete-at value ${md['X-Delete-At']}`);
      if (at <= currentTime && !this.opts.openExpired) throw new DiskFileExpired(md);
    }
    const cl = md['Content-Length'];
    if (cl === undefined) throw await this.quarantine(dataFile, 'missing content-length in metadata');
    if (!/^\s*[+-]?\d+\s*$/.test(cl)) throw await this.quarantine(dataFile, `bad metadata content-length value ${cl}`);
    const st = statSync(dataFile);
    if (st.size !== Number(cl)) {
      throw await this.quarantine(dataFile, `metadata content-length ${cl} does not match actual object size ${st.size}`);
    }
    this.contentLength = st.size;
  }

  /** Moves this object's directory to quarantined/ and returns the error to throw. */
  async quarantine(dataFile: string, msg: string): Promise<DiskFileQuarantined> {
    await this.mgr.quarantineRenamer(this.devPath, dataFile);
    return new DiskFileQuarantined(msg);
  }

  /** The data file's bytes (a whole fragment archive). */
  async readAll(): Promise<Uint8Array> {
    if (!this.dataFile) throw new DiskFileError('diskfile not open');
    const fh = await open(this.dataFile, 'r');
    try {
      return new Uint8Array(await fh.readFile());
    } finally {
      await fh.close();
    }
  }

  writer(size?: number): ECDiskFileWriter {
    return new ECDiskFileWriter(this, size);
  }

  /** A fast-POST .meta file (write_metadata). */
  async writeMetadata(md: Metadata): Promise<void> {
    const w = this.writer();
    await w.open();
    try {
      await w.put(md, '.meta');
    } finally {
      await w.close();
    }
  }

  /** A tombstone (.ts) at the timestamp; older files are cleaned up. */
  async delete(timestamp: Timestamp | string): Promise<void> {
    const ts = new Timestamp(timestamp);
    const w = this.writer();
    await w.open();
    try {
      await w.put({ 'X-Timestamp': ts.internal }, '.ts');
    } finally {
      await w.close();
    }
  }

  /**
   * Removes a tombstone, or the data file of one fragment index (durable or not; a
   * non-durable one only once older than nondurablePurgeDelay), at a timestamp: how a handoff
   * drops what it reverted to a primary.
   */
  async purge(timestamp: Timestamp, fragIndex: number | null, opts: { nondurablePurgeDelay?: number; metaTimestamp?: Timestamp } = {}): Promise<void> {
    await removeFile(join(this.datadir, makeOnDiskFilename(timestamp, '.ts')));
    if (opts.metaTimestamp) await removeFile(join(this.datadir, makeOnDiskFilename(opts.metaTimestamp, '.meta')));
    if (fragIndex !== null) {
      const nondurable = join(this.datadir, makeOnDiskFilename(timestamp, '.data', { fragIndex }));
      if (await isFileOlder(nondurable, opts.nondurablePurgeDelay ?? 0)) await removeFile(nondurable);
      await removeFile(join(this.datadir, makeOnDiskFilename(timestamp, '.data', { fragIndex, durable: true })));
      await rmdir(this.datadir).catch(() => undefined);
    }
    await invalidateHash(dirname(this.datadir));
  }

  /** The name this diskfile was opened with (or read from its metadata). */
  get objectName(): string | null {
    return this.name;
  }
}

export class ECDiskFileWriter {
  private fh: OpenFile | null = null;
  private tmpPath: string | null = null;
  private putSucceeded = false;
  private written = 0;
  private crc = 0;

  constructor(
    readonly df: ECDiskFile,
    readonly size?: number,
  ) {}

  async open(): Promise<this> {
    if (this.fh) throw new DiskFileError('DiskFileWriter is already open');
    const dir = join(this.df.devPath, tmpDir(this.df.policy));
    makeDirs(dir);
    this.tmpPath = join(dir, `tmp${randomHex(6)}`);
    this.fh = new OpenFile(openSync(this.tmpPath, 'wx', 0o600));
    return this;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (!this.fh) throw new DiskFileError('DiskFileWriter is not open');
    // plain writes, as Swift's writer makes them: through the thread pool each costs twice
    // the CPU of the copy into the page cache
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fh.fd, chunk, off, chunk.length - off);
    this.written += chunk.length;
    this.crc = crc32(chunk, this.crc);
  }

  get bytesWritten(): number {
    return this.written;
  }

  /**
   * Finishes the file: metadata into xattrs, fsync, invalidate the suffix, rename into the
   * object directory. A .data file is not durable until commit(), unless `durable` is given:
   * then it takes its durable name at once, as put() and commit() together would leave it,
   * with one rename and one directory sync fewer (a PUT that commits without waiting for a
   * second phase: SSYNC's, or one without a multiphase commit).
   *
   * `contentMd5`: the MD5 (hex) the caller took of the bytes written. When the metadata's ETag
   * and Content-Length name those bytes, a .data file gets fragmend's content check with its
   * metadata (content-check.ts), so that reads check it by CRC-32 rather than by MD5.
   */
  async put(metadata: Metadata, ext: '.data' | '.meta' | '.ts' = '.data', opts: { durable?: boolean; contentMd5?: string } = {}): Promise<void> {
    if (!this.fh || !this.tmpPath) throw new DiskFileError('DiskFileWriter is not open');
    const df = this.df;
    const md: Metadata = { ...metadata };
    if (md['X-Timestamp'] === undefined) throw new DiskFileError('metadata has no X-Timestamp');
    const timestamp = new Timestamp(md['X-Timestamp']);
    let fragIndex: number | undefined;
    if (ext === '.data') {
      if (md['X-Object-Sysmeta-Ec-Frag-Index'] === undefined && df.fragIndex !== null) md['X-Object-Sysmeta-Ec-Frag-Index'] = String(df.fragIndex);
      fragIndex = validateFragmentIndex(md['X-Object-Sysmeta-Ec-Frag-Index'], shapeOf(df.policy));
      (df as { fragIndex: number | null }).fragIndex = fragIndex;
    }
    const ctts = md['Content-Type-Timestamp'];
    const durable = ext === '.data' && !!opts.durable;
    const filename = makeOnDiskFilename(timestamp, ext, { fragIndex, durable, ctypeTimestamp: ctts ? new Timestamp(ctts) : null });
    const name = df.objectName;
    if (name !== null) md.name = name;
    const recorded = ext === '.data' && opts.contentMd5 !== undefined && md.ETag === opts.contentMd5 && md['Content-Length'] === String(this.written);
    await writeMetadata(this.tmpPath, md, recorded ? formatContentCheck({ crc32: this.crc, size: this.written, etag: opts.contentMd5! }) : undefined);
    await this.fh.sync();
    await invalidateHash(dirname(df.datadir));
    await renamer(this.tmpPath, join(df.datadir, filename));
    this.putSucceeded = true;
    if (ext !== '.data' || durable) await df.mgr.cleanupOnDiskFiles(df.datadir, { policy: df.policy }).catch(() => undefined);
  }

  /** Makes the put .data durable: <ts>#<fi>.data becomes <ts>#<fi>#d.data. */
  async commit(timestamp: Timestamp | string): Promise<void> {
    const df = this.df;
    const ts = new Timestamp(timestamp);
    if (df.fragIndex === null) throw new DiskFileError('cannot commit: no fragment index');
    const from = join(df.datadir, makeOnDiskFilename(ts, '.data', { fragIndex: df.fragIndex }));
    const to = join(df.datadir, makeOnDiskFilename(ts, '.data', { fragIndex: df.fragIndex, durable: true }));
    try {
      renameSync(from, to);
      await fsyncDir(df.datadir);
    } catch (e) {
      if (errno(e) === 'ENOENT') {
        // Already superseded by a newer tombstone or durable set: nothing to commit.
        const info = getOnDiskFiles(await readdir(df.datadir).catch(() => []), { fragIndex: df.fragIndex, shape: shapeOf(df.policy) });
        if (info.tsInfo && info.tsInfo.timestamp.compare(ts) > 0) return;
        if ((info.durableFragSet ?? []).some((f) => f.timestamp.compare(ts) >= 0)) return;
      }
      throw new DiskFileError(`Problem making data file durable ${to} (${(e as Error).message})`);
    }
    await df.mgr.cleanupOnDiskFiles(df.datadir, { policy: df.policy }).catch(() => undefined);
  }

  /** Closes; a file never put is removed, so nothing half-written is ever left behind. */
  async close(): Promise<void> {
    if (this.fh) {
      this.fh.closeSync();
      this.fh = null;
    }
    if (this.tmpPath && !this.putSucceeded) await removeFile(this.tmpPath);
  }
}
