// Swift's object ring: reading the v1 ring file and answering lookups exactly as
// swift.common.ring.Ring does (Swift 2.30), including the order of handoff nodes.
//
// File format (gzip stream, written by RingData.serialize_v1):
//   "R1NG" | uint16 BE format version (1) | uint32 BE n | n bytes of JSON metadata
//   | replica_count rows of 2**(32 - part_shift) uint16 device ids, byte order from the
//     JSON "byteorder" key (the writer's host order when absent).
// The last row may be shorter than the others: that is how a fractional replica count
// (e.g. 2.5) is stored. Ring format v2 ("R1NG" version 2) arrived in Swift 2.36; 2.30 cannot
// read it and neither does this module. Legacy pickled rings are not supported.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { crc32, inflateRawSync } from 'node:zlib';
import { RingError } from './errors.js';
import { getPartition, hashPathRaw, type HashPathConfig, type PathPart } from './hash-path.js';

/** A device entry as Swift's Ring exposes it (ring JSON plus Swift's load-time defaults). */
export interface Device {
  id: number;
  region: number;
  zone: number;
  ip: string;
  port: number;
  replication_ip: string;
  replication_port: number;
  device: string;
  weight?: number;
  meta?: string;
  [key: string]: unknown;
}

/** A primary node: `index` is its position in the de-duplicated primary list (the EC fragment index). */
export type PrimaryNode = Device & { index: number };

/** A handoff node: `handoff_index` counts handoffs from 0 in the order Swift yields them. */
export type HandoffNode = Device & { handoff_index: number };

/** Everything a ring file holds. `replica2part2dev[r][part]` is a device id (an index into `devs`). */
export interface RingData {
  devs: Array<Device | null>;
  replica2part2dev: Uint16Array[];
  partShift: number;
  version?: number | null;
  nextPartPower?: number | null;
}

export interface RingOptions {
  /** Seconds between mtime checks by maybeReload(); Swift's default is 15. */
  reloadTime?: number;
  /** Default for getNodes()/getPart() when no hash config is passed there. */
  hash?: HashPathConfig;
  /** Largest decompressed ring accepted, in bytes (default 1 GiB); guards against gzip bombs. */
  maxBytes?: number;
}

export const RING_MAGIC = 'R1NG';
const DEFAULT_RELOAD_TIME = 15;
const DEFAULT_MAX_BYTES = 1 << 30;
const HOST_BYTEORDER: 'little' | 'big' = endianness() === 'LE' ? 'little' : 'big';

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/**
 * A ring device entry checked for what lookups rely on, with the defaults Swift's Ring adds at
 * load time (region 1, replication_ip/port = ip/port). Extra keys are kept.
 */
export function normalizeDevice(raw: unknown, index: number): Device {
  const where = `devs[${index}]`;
  if (!isPlainObject(raw)) throw new RingError(`${where} is not an object`);
  const dev: Record<string, unknown> = { ...raw };
  if (!isInt(dev.id) || dev.id !== index) {
    // Swift indexes devs by the ids in the table but de-duplicates primaries by dev['id'];
    // when the two disagree its answers stop making sense, so such a ring is refused.
    throw new RingError(`${where} has id ${JSON.stringify(dev.id)}; it must equal its position`);
  }
  if (dev.region === undefined) dev.region = 1;
  for (const key of ['region', 'zone', 'port'] as const) {
    if (!isInt(dev[key])) throw new RingError(`${where}.${key} must be an integer`);
  }
  for (const key of ['ip', 'device'] as const) {
    if (typeof dev[key] !== 'string') throw new RingError(`${where}.${key} must be a string`);
  }
  if (dev.replication_ip === undefined) dev.replication_ip = dev.ip;
  if (dev.replication_port === undefined) dev.replication_port = dev.port;
  if (typeof dev.replication_ip !== 'string') throw new RingError(`${where}.replication_ip must be a string`);
  if (!isInt(dev.replication_port)) throw new RingError(`${where}.replication_port must be an integer`);
  if (dev.weight !== undefined && (typeof dev.weight !== 'number' || !Number.isFinite(dev.weight))) {
    throw new RingError(`${where}.weight must be a number`);
  }
  if (dev.meta !== undefined && typeof dev.meta !== 'string') throw new RingError(`${where}.meta must be a string`);
  return dev as Device;
}

/**
 * Checks the invariants lookups depend on: every row but the last spans all partitions, the
 * last spans at most that many, and every id in the table names a device that exists.
 */
export function checkRingData(data: RingData): void {
  if (!isInt(data.partShift) || data.partShift < 0 || data.partShift > 32) {
    throw new RingError(`part_shift must be an integer in 0..32, got ${String(data.partShift)}`);
  }
  const rows = data.replica2part2dev;
  if (!Array.isArray(rows) || rows.length < 1) throw new RingError('ring has no replica rows');
  const partCount = 2 ** (32 - data.partShift);
  rows.forEach((row, r) => {
    if (!(row instanceof Uint16Array)) throw new RingError(`replica row ${r} is not a Uint16Array`);
    const full = r === 0 || r < rows.length - 1;
    if (full ? row.length !== partCount : row.length > partCount) {
      throw new RingError(
        `replica row ${r} has ${row.length} partitions; expected ${full ? '' : 'at most '}${partCount}`,
      );
    }
  });
  const devs = data.devs;
  if (!Array.isArray(devs)) throw new RingError('devs is not a list');
  const seen = new Uint8Array(65536);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let part = 0; part < row.length; part++) {
      const id = row[part]!;
      if (seen[id]) continue;
      if (id >= devs.length || devs[id] == null) {
        throw new RingError(
          `inconsistent replica2part2dev: replica ${r} of partition ${part} is on device ${id}, which is not in devs`,
        );
      }
      seen[id] = 1;
    }
  }
}

/** Parses the decompressed bytes of a v1 ring file. */
export function decodeRing(raw: Uint8Array): RingData {
  if (raw.length < 6) throw new RingError(`ring is ${raw.length} bytes; too short for the R1NG header`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (Buffer.from(raw.subarray(0, 4)).toString('latin1') !== RING_MAGIC) {
    if (raw[0] === 0x80) throw new RingError('legacy pickled rings are not supported (no R1NG magic)');
    throw new RingError('bad magic: not a Swift ring file');
  }
  const format = view.getUint16(4);
  if (format !== 1) {
    throw new RingError(
      format === 2
        ? 'ring format version 2 (Swift >= 2.36) is not supported; Swift 2.30 reads only version 1'
        : `unknown ring format version ${format}`,
    );
  }
  if (raw.length < 10) throw new RingError('ring truncated inside the metadata length');
  const jsonLen = view.getUint32(6);
  if (raw.length - 10 < jsonLen) {
    throw new RingError(`ring truncated: metadata claims ${jsonLen} bytes, ${raw.length - 10} remain`);
  }
  let meta: unknown;
  try {
    meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw.subarray(10, 10 + jsonLen)));
  } catch (err) {
    throw new RingError(`ring metadata is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isPlainObject(meta)) throw new RingError('ring metadata is not a JSON object');
  const partShift = meta.part_shift;
  if (!isInt(partShift) || partShift < 0 || partShift > 32) {
    throw new RingError(`part_shift must be an integer in 0..32, got ${JSON.stringify(partShift)}`);
  }
  const replicaRows = meta.replica_count;
  if (!isInt(replicaRows) || replicaRows < 1) {
    throw new RingError(`replica_count must be a positive integer, got ${JSON.stringify(replicaRows)}`);
  }
  const byteorder = meta.byteorder ?? HOST_BYTEORDER;
  if (byteorder !== 'little' && byteorder !== 'big') {
    throw new RingError(`byteorder must be "little" or "big", got ${JSON.stringify(byteorder)}`);
  }
  if (!Array.isArray(meta.devs)) throw new RingError('devs is not a list');
  const devs = meta.devs.map((d, i) => (d === null ? null : normalizeDevice(d, i)));
  let version: number | null = null;
  if (meta.version != null) {
    if (typeof meta.version !== 'number') throw new RingError('version must be a number');
    version = meta.version;
  }
  let nextPartPower: number | null = null;
  if (meta.next_part_power != null) {
    if (!isInt(meta.next_part_power)) throw new RingError('next_part_power must be an integer');
    nextPartPower = meta.next_part_power;
  }

  const partCount = 2 ** (32 - partShift);
  const rowBytes = partCount * 2;
  const swap = byteorder !== HOST_BYTEORDER;
  const rows: Uint16Array[] = [];
  let off = 10 + jsonLen;
  // Each full row consumes at least 2 bytes and a short row ends the loop, so a huge
  // replica_count cannot make this spin past the end of the data.
  for (let r = 0; r < replicaRows; r++) {
    const take = Math.min(rowBytes, raw.length - off);
    const last = r === replicaRows - 1;
    if (take < rowBytes && (!last || r === 0)) {
      throw new RingError(
        `ring truncated: replica row ${r} has ${take} of ${rowBytes} bytes (${replicaRows} rows declared)`,
      );
    }
    if (take % 2 !== 0) throw new RingError(`replica row ${r} has an odd number of bytes (${take})`);
    const row = new Uint16Array(take / 2);
    new Uint8Array(row.buffer).set(raw.subarray(off, off + take));
    if (swap) {
      const b = new Uint8Array(row.buffer);
      for (let i = 0; i < b.length; i += 2) {
        const t = b[i]!;
        b[i] = b[i + 1]!;
        b[i + 1] = t;
      }
    }
    rows.push(row);
    off += take;
  }
  // Bytes after the declared rows are ignored, as Swift's reader never asks for them.
  const data: RingData = { devs, replica2part2dev: rows, partShift, version, nextPartPower };
  checkRingData(data);
  return data;
}

/**
 * Decompresses the first gzip member, as Swift's RingReader (zlib.decompressobj) does: bytes
 * after it, even another member, are ignored. Unlike Swift, a member cut short or failing its
 * CRC is refused rather than read as far as it goes.
 */
function gunzipRing(gz: Uint8Array, maxBytes: number): Buffer {
  const bad = (why: string, cause?: unknown) => new RingError(`ring is not a valid gzip stream: ${why}`, { cause });
  if (gz.length < 10) throw bad(`${gz.length} bytes is too short for a gzip header`);
  if (gz[0] !== 0x1f || gz[1] !== 0x8b) throw bad('bad gzip magic');
  if (gz[2] !== 8) throw bad(`unknown compression method ${gz[2]}`);
  const flags = gz[3]!;
  if (flags & 0xe0) throw bad('reserved gzip header flags set');
  let off = 10;
  if (flags & 0x04) {
    if (off + 2 > gz.length) throw bad('truncated gzip header');
    off += 2 + (gz[off]! | (gz[off + 1]! << 8));
  }
  for (const flag of [0x08, 0x10]) {
    // FNAME, FCOMMENT: zero-terminated strings.
    if (!(flags & flag)) continue;
    const nul = gz.indexOf(0, off);
    if (nul < 0) throw bad('truncated gzip header');
    off = nul + 1;
  }
  if (flags & 0x02) {
    if (off + 2 > gz.length) throw bad('truncated gzip header');
    const want = gz[off]! | (gz[off + 1]! << 8);
    if ((crc32(gz.subarray(0, off)) & 0xffff) !== want) throw bad('gzip header checksum mismatch');
    off += 2;
  }
  if (off > gz.length) throw bad('truncated gzip header');
  let out: Buffer;
  let used: number;
  try {
    // `info` makes zlib report how much input the deflate stream used, which locates the trailer.
    const res = inflateRawSync(gz.subarray(off), { maxOutputLength: maxBytes, info: true }) as unknown as {
      buffer: Buffer;
      engine: { bytesWritten: number };
    };
    out = res.buffer;
    used = res.engine.bytesWritten;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e instanceof RangeError || e.code === 'ERR_BUFFER_TOO_LARGE') {
      throw new RingError(`ring decompresses to more than ${maxBytes} bytes`, { cause: err });
    }
    throw bad(e.message, err);
  }
  const end = off + used;
  if (end + 8 > gz.length) throw bad('truncated gzip trailer');
  const view = new DataView(gz.buffer, gz.byteOffset + end, 8);
  if (view.getUint32(0, true) !== crc32(out)) throw bad('CRC32 mismatch');
  if (view.getUint32(4, true) !== out.length % 2 ** 32) throw bad('length mismatch');
  return out;
}

/** Parses a whole ring file (gzip bytes). */
export function parseRing(gz: Uint8Array, maxBytes = DEFAULT_MAX_BYTES): RingData {
  return decodeRing(gunzipRing(gz, maxBytes));
}

interface FileInfo {
  md5: string;
  size: number;
  rawSize: number;
}

/** Lookup tables derived once per load, like Swift's _update_bookkeeping. */
class RingState {
  readonly rows: Uint16Array[];
  readonly devs: Array<Device | null>;
  readonly partShift: number;
  readonly partCount: number;
  // Per device id: small integers naming its region, (region, zone) and (region, zone, ip).
  readonly regionOf: Int32Array;
  readonly zoneOf: Int32Array;
  readonly ipOf: Int32Array;
  readonly numRegions: number;
  readonly numZones: number;
  readonly numIps: number;
  readonly numAssignedDevs: number;
  readonly numDevs: number;
  readonly numWeightedDevs: number;

  constructor(
    readonly data: RingData,
    readonly file: FileInfo | null,
  ) {
    this.rows = data.replica2part2dev;
    this.devs = data.devs;
    this.partShift = data.partShift;
    this.partCount = this.rows[0]!.length;
    const n = this.devs.length;
    this.regionOf = new Int32Array(n).fill(-1);
    this.zoneOf = new Int32Array(n).fill(-1);
    this.ipOf = new Int32Array(n).fill(-1);
    const intern = new Map<string, number>();
    const id = (key: string): number => {
      let v = intern.get(key);
      if (v === undefined) intern.set(key, (v = intern.size));
      return v;
    };
    let numDevs = 0;
    let numWeighted = 0;
    this.devs.forEach((dev, i) => {
      if (!dev) return;
      numDevs++;
      if ((dev.weight ?? 0) > 0) numWeighted++;
      // region and zone are integers, so these keys cannot collide whatever the ip holds.
      this.regionOf[i] = id(`r${dev.region}`);
      this.zoneOf[i] = id(`z${dev.region}:${dev.zone}`);
      this.ipOf[i] = id(`i${dev.region}:${dev.zone}:${dev.ip}`);
    });
    this.numDevs = numDevs;
    this.numWeightedDevs = numWeighted;
    // Only devices holding at least one assignment count, so a region or zone with no
    // partitions cannot stop the handoff search's early exits from firing.
    const assigned = new Uint8Array(n);
    for (const row of this.rows) for (let p = 0; p < row.length; p++) assigned[row[p]!] = 1;
    const regions = new Set<number>();
    const zones = new Set<number>();
    const ips = new Set<number>();
    let numAssigned = 0;
    for (let i = 0; i < n; i++) {
      if (!assigned[i]) continue;
      numAssigned++;
      regions.add(this.regionOf[i]!);
      zones.add(this.zoneOf[i]!);
      ips.add(this.ipOf[i]!);
    }
    this.numRegions = regions.size;
    this.numZones = zones.size;
    this.numIps = ips.size;
    this.numAssignedDevs = numAssigned;
  }

  primaryIds(part: number): number[] {
    const ids: number[] = [];
    for (const row of this.rows) {
      if (part < row.length) {
        const id = row[part]!;
        if (!ids.includes(id)) ids.push(id);
      }
    }
    return ids;
  }
}

function checkPart(part: number): void {
  if (!Number.isSafeInteger(part) || part < 0) throw new RangeError(`partition must be a non-negative integer, got ${part}`);
}

/** Columns examined for handoffs, in Swift's order (see getMoreNodes). */
function* handoffColumns(start: number, parts: number, inc: number): Generator<number> {
  for (let p = start; p < parts; p += inc) yield p;
  for (let p = inc - ((parts - start) % inc); p < start; p += inc) yield p;
}

export class Ring {
  private state: RingState;
  private mtimeNs: bigint | null;
  private rtime: number;
  private readonly reloadTime: number;
  private readonly maxBytes: number;
  private readonly defaultHash: HashPathConfig | undefined;
  private reloading: Promise<boolean> | null = null;

  private constructor(
    readonly path: string | null,
    state: RingState,
    mtimeNs: bigint | null,
    opts: RingOptions,
  ) {
    this.state = state;
    this.mtimeNs = mtimeNs;
    this.reloadTime = opts.reloadTime ?? DEFAULT_RELOAD_TIME;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.defaultHash = opts.hash;
    this.rtime = Date.now() / 1000 + this.reloadTime;
  }

  /** Reads a ring file (e.g. /etc/swift/object-1.ring.gz). Any problem with it is a RingError. */
  static async load(path: string, opts: RingOptions = {}): Promise<Ring> {
    const { state, mtimeNs } = await Ring.readState(path, opts.maxBytes ?? DEFAULT_MAX_BYTES);
    return new Ring(path, state, mtimeNs, opts);
  }

  /** A ring from the bytes of a ring file, with no file behind it (hasChanged() is always false). */
  static fromBytes(gz: Uint8Array, opts: RingOptions = {}): Ring {
    const raw = gunzipRing(gz, opts.maxBytes ?? DEFAULT_MAX_BYTES);
    const info = { md5: createHash('md5').update(gz).digest('hex'), size: gz.length, rawSize: raw.length };
    return new Ring(null, new RingState(decodeRing(raw), info), null, opts);
  }

  /** A ring from in-memory data (e.g. from buildRing), checked like a loaded one. */
  static fromData(data: RingData, opts: RingOptions = {}): Ring {
    checkRingData(data);
    const devs = data.devs.map((d, i) => (d === null ? null : normalizeDevice(d, i)));
    return new Ring(null, new RingState({ ...data, devs }, null), null, opts);
  }

  private static async readState(path: string, maxBytes: number): Promise<{ state: RingState; mtimeNs: bigint }> {
    let gz: Buffer;
    let mtimeNs: bigint;
    try {
      // mtime is taken before the read: if the file is replaced in between, the next
      // hasChanged() notices, whereas the other order could miss the new ring forever.
      mtimeNs = (await stat(path, { bigint: true })).mtimeNs;
      gz = await readFile(path);
    } catch (err) {
      throw new RingError(`cannot read ring ${path}: ${(err as Error).message}`, { cause: err });
    }
    // Synchronous, as in Swift: rings are read at start and when they change, and zlib's
    // async API cannot say where the first gzip member ends.
    const raw = gunzipRing(gz, maxBytes);
    const info = { md5: createHash('md5').update(gz).digest('hex'), size: gz.length, rawSize: raw.length };
    return { state: new RingState(decodeRing(raw), info), mtimeNs };
  }

  /** Devices indexed by id; removed devices are null. */
  get devs(): ReadonlyArray<Device | null> {
    return this.state.devs;
  }
  /** Swift's replica_count: full rows plus the fraction of the last, e.g. 2.5. */
  get replicaCount(): number {
    const rows = this.state.rows;
    return rows.length - 1 + rows[rows.length - 1]!.length / rows[0]!.length;
  }
  get partCount(): number {
    return this.state.partCount;
  }
  get partShift(): number {
    return this.state.partShift;
  }
  get partPower(): number {
    return 32 - this.state.partShift;
  }
  get nextPartPower(): number | null {
    return this.state.data.nextPartPower ?? null;
  }
  get version(): number | null {
    return this.state.data.version ?? null;
  }
  /** The loaded data; the arrays are the ring's own, not copies. */
  get data(): RingData {
    return this.state.data;
  }
  get deviceCount(): number {
    return this.state.numDevs;
  }
  get weightedDeviceCount(): number {
    return this.state.numWeightedDevs;
  }
  get assignedDeviceCount(): number {
    return this.state.numAssignedDevs;
  }
  /** md5 of the compressed file, as Swift's RingData.md5 (null when built from data). */
  get md5(): string | null {
    return this.state.file?.md5 ?? null;
  }
  get size(): number | null {
    return this.state.file?.size ?? null;
  }
  get rawSize(): number | null {
    return this.state.file?.rawSize ?? null;
  }

  private hashConfig(hash: HashPathConfig | undefined): HashPathConfig {
    const h = hash ?? this.defaultHash;
    if (!h) throw new TypeError('no hash path prefix/suffix: pass one or give RingOptions.hash');
    // Swift refuses to start when both are empty (InvalidHashPathConfigError).
    if (h.prefix.length === 0 && h.suffix.length === 0) {
      throw new TypeError('swift_hash_path_prefix and swift_hash_path_suffix are both empty');
    }
    return h;
  }

  /** The partition of an account, container or object name. */
  getPart(account: PathPart, container?: PathPart | null, object?: PathPart | null, hash?: HashPathConfig): number {
    const h = this.hashConfig(hash);
    return getPartition(hashPathRaw(h.prefix, h.suffix, account, container, object), this.state.partShift);
  }

  /**
   * Primary nodes of a partition in replica order, a device holding several replicas listed
   * once. Like Swift, a partition beyond the table has no primaries.
   */
  getPartNodes(part: number): PrimaryNode[] {
    checkPart(part);
    const s = this.state;
    return s.primaryIds(part).map((id, index) => ({ ...s.devs[id]!, index }));
  }

  getNodes(
    account: PathPart,
    container?: PathPart | null,
    object?: PathPart | null,
    hash?: HashPathConfig,
  ): { partition: number; nodes: PrimaryNode[] } {
    const partition = this.getPart(account, container, object, hash);
    return { partition, nodes: this.getPartNodes(partition) };
  }

  /**
   * Handoff nodes for a partition in exactly Swift's order. Starting from a column chosen by
   * md5(str(part)), it scans the assignment table column by column (every replica row of a
   * column in turn) four times: first for devices in regions the primaries and earlier
   * handoffs do not use, then new zones, then new ips, then any unused device. Each pass
   * stops once its tier is exhausted. Only about 65536 columns are ever scanned (inc = parts
   * / 65536), and the wrap-around restarts at `inc - (parts - start) % inc`, which for
   * inc = 1 is column 1: column 0 is examined only when the scan starts there.
   *
   * Lazy like Swift's generator; it reads a snapshot of the ring taken at the first next().
   */
  *getMoreNodes(part: number): Generator<HandoffNode, void, undefined> {
    checkPart(part);
    const s = this.state;
    const { rows, devs, regionOf, zoneOf, ipOf } = s;
    const primaries = s.primaryIds(part);
    const used = new Set<number>(primaries);
    const sameRegions = new Set<number>(primaries.map((id) => regionOf[id]!));
    const sameZones = new Set<number>(primaries.map((id) => zoneOf[id]!));
    const sameIps = new Set<number>(primaries.map((id) => ipOf[id]!));
    const parts = s.partCount;
    const digest = createHash('md5').update(String(part), 'ascii').digest();
    const start = getPartition(digest, s.partShift);
    const inc = Math.floor(parts / 65536) || 1;
    let index = 0;
    const node = (id: number): HandoffNode => ({ ...devs[id]!, handoff_index: index++ });

    if (sameRegions.size !== s.numRegions) {
      regions: for (const hp of handoffColumns(start, parts, inc)) {
        for (const row of rows) {
          if (hp >= row.length) continue;
          const id = row[hp]!;
          if (used.has(id) || sameRegions.has(regionOf[id]!)) continue;
          yield node(id);
          used.add(id);
          sameRegions.add(regionOf[id]!);
          sameZones.add(zoneOf[id]!);
          sameIps.add(ipOf[id]!);
          if (sameRegions.size === s.numRegions) break regions;
        }
      }
    }

    if (sameZones.size !== s.numZones) {
      zones: for (const hp of handoffColumns(start, parts, inc)) {
        for (const row of rows) {
          if (hp >= row.length) continue;
          const id = row[hp]!;
          if (used.has(id) || sameZones.has(zoneOf[id]!)) continue;
          yield node(id);
          used.add(id);
          sameZones.add(zoneOf[id]!);
          sameIps.add(ipOf[id]!);
          if (sameZones.size === s.numZones) break zones;
        }
      }
    }

    if (sameIps.size !== s.numIps) {
      ips: for (const hp of handoffColumns(start, parts, inc)) {
        for (const row of rows) {
          if (hp >= row.length) continue;
          const id = row[hp]!;
          if (used.has(id) || sameIps.has(ipOf[id]!)) continue;
          yield node(id);
          used.add(id);
          sameIps.add(ipOf[id]!);
          if (sameIps.size === s.numIps) break ips;
        }
      }
    }

    if (used.size !== s.numAssignedDevs) {
      any: for (const hp of handoffColumns(start, parts, inc)) {
        for (const row of rows) {
          if (hp >= row.length) continue;
          const id = row[hp]!;
          if (used.has(id)) continue;
          yield node(id);
          used.add(id);
          if (used.size === s.numAssignedDevs) break any;
        }
      }
    }
  }

  /** Whether the file's mtime differs from the loaded ring's (Swift's has_changed). */
  async hasChanged(): Promise<boolean> {
    if (this.path === null) return false;
    try {
      return (await stat(this.path, { bigint: true })).mtimeNs !== this.mtimeNs;
    } catch (err) {
      throw new RingError(`cannot stat ring ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Re-reads the file when its mtime changed (or always, with force), like Swift's _reload.
   * Resolves true when new data was installed. A bad new file rejects with RingError and
   * leaves the current data in place.
   */
  reload(force = false): Promise<boolean> {
    if (this.path === null) return Promise.resolve(false);
    this.reloading ??= this.doReload(this.path, force).finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async doReload(path: string, force: boolean): Promise<boolean> {
    this.rtime = Date.now() / 1000 + this.reloadTime;
    if (!force && !(await this.hasChanged())) return false;
    const { state, mtimeNs } = await Ring.readState(path, this.maxBytes);
    this.state = state;
    this.mtimeNs = mtimeNs;
    return true;
  }

  /**
   * Swift checks for a new ring on every lookup once reload_time has passed; lookups here are
   * synchronous, so callers poll this instead (e.g. before each pass or job).
   */
  maybeReload(): Promise<boolean> {
    if (Date.now() / 1000 <= this.rtime) return Promise.resolve(false);
    return this.reload();
  }
}
