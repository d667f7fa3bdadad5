// Swift's object ring: reading ring files (formats v1 and v2) and answering lookups exactly
// as swift.common.ring.Ring does, including the order of handoff nodes.
//
// Format v1 (gzip stream, written by RingData.serialize_v1; all Swift versions read it):
//   "R1NG" | uint16 BE format version (1) | uint32 BE n | n bytes of JSON metadata
//   | replica_count rows of 2**(32 - part_shift) uint16 device ids, byte order from the
//     JSON "byteorder" key (the writer's host order when absent).
// The last row may be shorter than the others: that is how a fractional replica count
// (e.g. 2.5) is stored.
//
// Format v2 (RingData.serialize_v2, Swift >= 2.36; Swift 2.30 cannot read it): the same
// "R1NG" magic with version 2, then named sections, each a uint64 BE length and that many
// bytes, compressed separately (every section ends on a zlib full flush, so a reader can
// start inflating at its compressed offset):
//   swift/ring/metadata     JSON {part_shift, dev_id_bytes, replica_count, version[, next_part_power]}
//   swift/ring/devices      JSON list of devices (null for removed ids)
//   swift/ring/assignments  the replica rows back to back, device ids of dev_id_bytes (2 or 4)
//                           each in network order; the rows are cut from the section every
//                           2**(32 - part_shift) ids, so the last may be short
// then an index, a length-prefixed JSON object mapping each section name to
//   [compressed start, uncompressed start, compressed end, uncompressed end, checksum method,
//    checksum hex of the length prefix and data],
// then two uint64 BE: the index's uncompressed and compressed offsets. The last one sits in a
// stored deflate block exactly 31 bytes before the end of the file, which is where Swift looks
// for it. Sections not named above (extensions) are skipped, as Swift skips them.
//
// Legacy pickled rings are not supported.
import { stat } from './afs.js';
import { readFileSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { crc32, inflateRawSync, constants as zlibConstants } from 'node:zlib';
import { RingError } from './errors.js';
import { getPartition, hashPathRaw, type HashPathConfig, type PathPart } from './hash-path.js';
import { nodeCrypto } from './lazy-crypto.js';
import { Md5, md5Hex } from './md5.js';

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

/**
 * One replica row: the device id of each partition. 4-byte ids exist only in v2 rings, whose
 * builder widens them once a device id reaches 65535 (0xFFFF marks "unassigned" there).
 */
export type PartToDev = Uint16Array | Uint32Array;

/** Everything a ring file holds. `replica2part2dev[r][part]` is a device id (an index into `devs`). */
export interface RingData {
  devs: Array<Device | null>;
  /** All rows have the same element type. */
  replica2part2dev: PartToDev[];
  partShift: number;
  version?: number | null;
  nextPartPower?: number | null;
  /** The file format the data was read from; absent for data made in memory. */
  formatVersion?: 1 | 2;
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
/** Section names of a v2 ring, as Swift's RingData.serialize_v2 writes them. */
export const V2_SECTIONS = {
  metadata: 'swift/ring/metadata',
  devices: 'swift/ring/devices',
  assignments: 'swift/ring/assignments',
} as const;
/** Checksums Swift's RingReader can verify (hashlib names, which node:crypto shares). */
const V2_CHECKSUM_METHODS: readonly string[] = ['md5', 'sha1', 'sha256', 'sha512'];
/**
 * Distance from the end of a v2 file to the stored block holding the index's compressed
 * offset: that block (5 + 8 bytes, then a 5-byte empty block from the full flush), the final
 * empty block (5) and the gzip trailer (8).
 */
export const V2_TAIL_BYTES = 31;
const DEFAULT_RELOAD_TIME = 15;
const DEFAULT_MAX_BYTES = 1 << 30;
const HOST_BYTEORDER: 'little' | 'big' = endianness() === 'LE' ? 'little' : 'big';

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/**
 * A ring device entry checked for what lookups rely on, with the defaults Swift's Ring adds at
 * load time (region 1, replication_ip/port = ip/port). Extra keys are kept. Swift >= 2.36 no
 * longer defaults the region (a device without one stops its Ring from loading), so rings in
 * format v2, which only those versions write, are read with `requireRegion`.
 */
export function normalizeDevice(raw: unknown, index: number, opts: { requireRegion?: boolean } = {}): Device {
  const where = `devs[${index}]`;
  if (!isPlainObject(raw)) throw new RingError(`${where} is not an object`);
  const dev: Record<string, unknown> = { ...raw };
  if (!isInt(dev.id) || dev.id !== index) {
    // Swift indexes devs by the ids in the table but de-duplicates primaries by dev['id'];
    // when the two disagree its answers stop making sense, so such a ring is refused.
    throw new RingError(`${where} has id ${JSON.stringify(dev.id)}; it must equal its position`);
  }
  if (dev.region === undefined && !opts.requireRegion) dev.region = 1;
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
 * last spans at most that many, all rows hold ids of one width, and every id in the table
 * names a device that exists.
 */
export function checkRingData(data: RingData): void {
  if (!isInt(data.partShift) || data.partShift < 0 || data.partShift > 32) {
    throw new RingError(`part_shift must be an integer in 0..32, got ${String(data.partShift)}`);
  }
  const rows = data.replica2part2dev;
  if (!Array.isArray(rows) || rows.length < 1) throw new RingError('ring has no replica rows');
  const partCount = 2 ** (32 - data.partShift);
  const wide = rows[0] instanceof Uint32Array;
  rows.forEach((row, r) => {
    if (!(row instanceof Uint16Array) && !(row instanceof Uint32Array)) {
      throw new RingError(`replica row ${r} is not a Uint16Array or Uint32Array`);
    }
    if (row instanceof Uint32Array !== wide) throw new RingError('replica rows mix 2-byte and 4-byte device ids');
    const full = r === 0 || r < rows.length - 1;
    if (full ? row.length !== partCount : row.length > partCount) {
      throw new RingError(
        `replica row ${r} has ${row.length} partitions; expected ${full ? '' : 'at most '}${partCount}`,
      );
    }
  });
  const devs = data.devs;
  if (!Array.isArray(devs)) throw new RingError('devs is not a list');
  const seen = new Uint8Array(devs.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let part = 0; part < row.length; part++) {
      const id = row[part]!;
      if (seen[id] === 1) continue;
      if (id >= devs.length || devs[id] == null) {
        throw new RingError(
          `inconsistent replica2part2dev: replica ${r} of partition ${part} is on device ${id}, which is not in devs`,
        );
      }
      seen[id] = 1;
    }
  }
}

/** The format version from the "R1NG" header, refusing anything that is not a ring. */
function ringFormat(raw: Uint8Array): number {
  if (raw.length < 6) throw new RingError(`ring is ${raw.length} bytes; too short for the R1NG header`);
  if (Buffer.from(raw.subarray(0, 4)).toString('latin1') !== RING_MAGIC) {
    if (raw[0] === 0x80) throw new RingError('legacy pickled rings are not supported (no R1NG magic)');
    throw new RingError('bad magic: not a Swift ring file');
  }
  const format = (raw[4]! << 8) | raw[5]!;
  if (format !== 1 && format !== 2) throw new RingError(`unknown ring format version ${format}`);
  return format;
}

/**
 * Parses the decompressed bytes of a ring file, v1 or v2. A v2 ring is read here through the
 * uncompressed offsets of its index; parseRing also checks that the compressed offsets, which
 * are what Swift follows, lead to the same bytes.
 */
export function decodeRing(raw: Uint8Array): RingData {
  return ringFormat(raw) === 1 ? decodeV1(raw) : decodeV2(raw).data;
}

/** The metadata keys both formats share and Swift reads with .get(). */
function optionalMeta(meta: Record<string, unknown>): { version: number | null; nextPartPower: number | null } {
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
  return { version, nextPartPower };
}

function decodeV1(raw: Uint8Array): RingData {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
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
  const { version, nextPartPower } = optionalMeta(meta);

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
  const data: RingData = { devs, replica2part2dev: rows, partShift, version, nextPartPower, formatVersion: 1 };
  checkRingData(data);
  return data;
}

// ------------------------------------------------------------------ format v2

const v2Error = (why: string, cause?: unknown) => new RingError(`ring format version 2: ${why}`, { cause });

/** A uint64 BE that must fit a JS number; a larger size or offset cannot fit the file anyway. */
function readSize(raw: Uint8Array, off: number, what: string): number {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getBigUint64(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw v2Error(`${what} ${v} is beyond any file`);
  return Number(v);
}

function parseJsonBytes(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw v2Error(`${what} is not valid JSON: ${(err as Error).message}`, err);
  }
}

/** One index entry, in the order Swift's IndexEntry dataclass takes them. */
interface V2IndexEntry {
  compressedStart: number;
  uncompressedStart: number;
  compressedEnd: number;
  uncompressedEnd: number;
  checksumMethod: string;
  /** Swift verifies the section only when this is non-empty. */
  checksumValue: string | null;
}

interface V2Layout {
  /** Uncompressed and compressed offsets of the index, from the last 16 bytes. */
  indexStart: number;
  indexCompressedStart: number;
  /** Every section the index names, extensions included. */
  index: Map<string, unknown[]>;
}

function readV2Layout(raw: Uint8Array): V2Layout {
  const n = raw.length;
  if (n < 6 + 16) throw v2Error(`${n} bytes is too short for the index offsets at the end`);
  const indexStart = readSize(raw, n - 16, 'index offset');
  const indexCompressedStart = readSize(raw, n - 8, 'compressed index offset');
  if (indexStart < 6 || indexStart > n - 16 - 8) {
    throw v2Error(`index offset ${indexStart} is outside the ${n}-byte ring`);
  }
  const indexLen = readSize(raw, indexStart, 'index length');
  if (indexLen > n - 16 - 8 - indexStart) {
    throw v2Error(`index claims ${indexLen} bytes; ${n - 16 - 8 - indexStart} remain before the offsets`);
  }
  const json = parseJsonBytes(raw.subarray(indexStart + 8, indexStart + 8 + indexLen), 'the section index');
  if (!isPlainObject(json)) throw v2Error('the section index is not a JSON object');
  const index = new Map<string, unknown[]>();
  for (const [name, entry] of Object.entries(json)) {
    // Swift builds an IndexEntry from every entry and sorts them by compressed start, so even
    // a section it never reads must have that shape.
    if (!Array.isArray(entry) || entry.length !== 6 || typeof entry[0] !== 'number') {
      throw v2Error(`index entry ${JSON.stringify(name)} is not [compressed start, uncompressed start, compressed end, uncompressed end, checksum method, checksum]`);
    }
    index.set(name, entry);
  }
  return { indexStart, indexCompressedStart, index };
}

function indexEntry(layout: V2Layout, name: string, rawLength: number): V2IndexEntry {
  const e = layout.index.get(name);
  if (!e) throw v2Error(`the index has no ${name} section`);
  const [cs, us, ce, ue, method, value] = e;
  const offset = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!offset(cs) || !offset(us) || !offset(ce) || !offset(ue) || ue < us + 8 || ue > rawLength) {
    throw v2Error(`section ${name} has bad offsets ${JSON.stringify(e.slice(0, 4))}`);
  }
  if (typeof method !== 'string' || !V2_CHECKSUM_METHODS.includes(method)) {
    throw v2Error(`section ${name} has unsupported checksum ${JSON.stringify(method)}`);
  }
  if (value !== null && typeof value !== 'string') throw v2Error(`section ${name} has a checksum that is not a string`);
  return {
    compressedStart: cs,
    uncompressedStart: us,
    compressedEnd: ce,
    uncompressedEnd: ue,
    checksumMethod: method,
    checksumValue: value,
  };
}

/** A section's data, checked as Swift's RingReader.open_section checks it. */
function readSection(raw: Uint8Array, layout: V2Layout, name: string): Uint8Array {
  const e = indexEntry(layout, name, raw.length);
  const len = readSize(raw, e.uncompressedStart, `${name} length`);
  if (8 + len !== e.uncompressedEnd - e.uncompressedStart) {
    throw v2Error(`section ${name} holds ${len} bytes but the index gives it ${e.uncompressedEnd - e.uncompressedStart - 8}`);
  }
  const bytes = raw.subarray(e.uncompressedStart, e.uncompressedEnd);
  if (e.checksumValue) {
    const got = nodeCrypto().createHash(e.checksumMethod).update(bytes).digest('hex');
    if (got !== e.checksumValue) throw v2Error(`section ${name} fails its ${e.checksumMethod} check`);
  }
  return bytes.subarray(8);
}

/** Parses the decompressed bytes of a v2 ring, following the index's uncompressed offsets. */
function decodeV2(raw: Uint8Array): { data: RingData; layout: V2Layout } {
  const layout = readV2Layout(raw);
  const meta = parseJsonBytes(readSection(raw, layout, V2_SECTIONS.metadata), 'ring metadata');
  if (!isPlainObject(meta)) throw v2Error('ring metadata is not a JSON object');
  const partShift = meta.part_shift;
  if (!isInt(partShift) || partShift < 0 || partShift > 32) {
    throw v2Error(`part_shift must be an integer in 0..32, got ${JSON.stringify(partShift)}`);
  }
  const width = meta.dev_id_bytes;
  if (width !== 2 && width !== 4) throw v2Error(`dev_id_bytes must be 2 or 4, got ${JSON.stringify(width)}`);
  const { version, nextPartPower } = optionalMeta(meta);
  // replica_count in the metadata is informational: Swift's Ring counts the rows it reads.

  const devList = parseJsonBytes(readSection(raw, layout, V2_SECTIONS.devices), 'the device list');
  if (!Array.isArray(devList)) throw v2Error('devs is not a list');
  const devs = devList.map((d, i) => (d === null ? null : normalizeDevice(d, i, { requireRegion: true })));

  const table = readSection(raw, layout, V2_SECTIONS.assignments);
  if (table.length === 0) throw v2Error('the assignments section is empty');
  if (table.length % width !== 0) {
    throw v2Error(`the assignments section has ${table.length} bytes, not a whole number of ${width}-byte ids`);
  }
  const partCount = 2 ** (32 - partShift);
  const rows: PartToDev[] = [];
  for (let off = 0; off < table.length; off += partCount * width) {
    const count = Math.min(partCount, (table.length - off) / width);
    if (width === 2) {
      const row = new Uint16Array(count);
      for (let i = 0, o = off; i < count; i++, o += 2) row[i] = (table[o]! << 8) | table[o + 1]!;
      rows.push(row);
    } else {
      const row = new Uint32Array(count);
      for (let i = 0, o = off; i < count; i++, o += 4) {
        row[i] = ((table[o]! << 24) | (table[o + 1]! << 16) | (table[o + 2]! << 8) | table[o + 3]!) >>> 0;
      }
      rows.push(row);
    }
  }
  if (rows[0]!.length !== partCount) {
    throw v2Error(`ring truncated: the assignments hold ${rows[0]!.length} of ${partCount} partitions`);
  }
  const data: RingData = { devs, replica2part2dev: rows, partShift, version, nextPartPower, formatVersion: 2 };
  checkRingData(data);
  return { data, layout };
}

/** Inflates a stretch of the deflate stream from a flush point, as Swift's seek-and-read does. */
function inflateFrom(gz: Uint8Array, start: number, end: number, limit: number): Buffer | null {
  try {
    return inflateRawSync(gz.subarray(start, end), {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
      maxOutputLength: Math.max(1, limit),
    });
  } catch {
    // Not a flush point, or more output than the whole ring: either way not what it claims.
    return null;
  }
}

const sameBytes = (a: Uint8Array | null, b: Uint8Array): boolean => a !== null && Buffer.from(a).equals(b);

/**
 * Swift finds a v2 ring's index and sections by their compressed offsets: it seeks in the
 * gzip file and starts a fresh raw inflate there. decodeV2 follows the uncompressed offsets
 * instead; this makes sure both lead to the same bytes, so whatever is accepted reads exactly
 * as Swift reads it. A recompressed ring (gzip -d | gzip) fails here as it fails in Swift.
 */
function checkV2Offsets(gz: Uint8Array, stream: GzipMember, raw: Uint8Array, layout: V2Layout): void {
  if (stream.memberEnd !== gz.length) {
    throw v2Error(`${gz.length - stream.memberEnd} bytes follow the gzip stream; Swift looks for the index at the end of the file`);
  }
  const tailAt = gz.length - V2_TAIL_BYTES;
  const tail = tailAt >= stream.deflateStart ? inflateFrom(gz, tailAt, stream.deflateEnd, raw.length) : null;
  if (tail === null || tail.length < 8 || !sameBytes(tail.subarray(0, 8), raw.subarray(raw.length - 8))) {
    throw v2Error(`the index offset is not in a stored block ${V2_TAIL_BYTES} bytes from the end (was the ring recompressed?)`);
  }
  const indexAt = layout.indexCompressedStart;
  const index =
    indexAt >= stream.deflateStart && indexAt <= stream.deflateEnd
      ? inflateFrom(gz, indexAt, stream.deflateEnd, raw.length)
      : null;
  if (!sameBytes(index, raw.subarray(layout.indexStart))) {
    throw v2Error(`compressed offset ${indexAt} does not lead to the index at ${layout.indexStart}`);
  }
  for (const name of Object.values(V2_SECTIONS)) {
    const e = indexEntry(layout, name, raw.length);
    const want = raw.subarray(e.uncompressedStart, e.uncompressedEnd);
    let got: Buffer | null = null;
    if (e.compressedStart >= stream.deflateStart && e.compressedStart <= stream.deflateEnd) {
      // Swift reads on from the start until it has the section and never looks at the
      // compressed end; trying the end first only saves inflating the rest of the file.
      const end =
        e.compressedEnd >= e.compressedStart && e.compressedEnd <= stream.deflateEnd ? e.compressedEnd : stream.deflateEnd;
      got = inflateFrom(gz, e.compressedStart, end, raw.length);
      if (end !== stream.deflateEnd && (got === null || got.length < want.length)) {
        got = inflateFrom(gz, e.compressedStart, stream.deflateEnd, raw.length);
      }
    }
    if (got === null || got.length < want.length || !sameBytes(got.subarray(0, want.length), want)) {
      throw v2Error(
        `section ${name}: compressed offset ${e.compressedStart} does not lead to uncompressed ${e.uncompressedStart}..${e.uncompressedEnd}`,
      );
    }
  }
}

interface GzipMember {
  out: Buffer;
  /** Where the deflate data starts and ends, and where the member ends (after its trailer). */
  deflateStart: number;
  deflateEnd: number;
  memberEnd: number;
}

/**
 * Decompresses the first gzip member, as Swift's RingReader (zlib.decompressobj) does: bytes
 * after it, even another member, are ignored (v2 rings then fail checkV2Offsets). Unlike Swift,
 * a member cut short or failing its CRC is refused rather than read as far as it goes.
 */
function gunzipRing(gz: Uint8Array, maxBytes: number): GzipMember {
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
  return { out, deflateStart: off, deflateEnd: end, memberEnd: end + 8 };
}

/** Reads a whole ring file (gzip bytes) in either format. */
function readRingFile(gz: Uint8Array, maxBytes: number): { data: RingData; raw: Buffer } {
  const stream = gunzipRing(gz, maxBytes);
  const raw = stream.out;
  if (ringFormat(raw) === 1) return { data: decodeV1(raw), raw };
  const { data, layout } = decodeV2(raw);
  checkV2Offsets(gz, stream, raw, layout);
  return { data, raw };
}

/** Parses a whole ring file (gzip bytes), v1 or v2. */
export function parseRing(gz: Uint8Array, maxBytes = DEFAULT_MAX_BYTES): RingData {
  return readRingFile(gz, maxBytes).data;
}

/** What a ring file was: its sizes, and its md5, computed when first asked for. */
class FileInfo {
  private digest: string | null = null;
  readonly size: number;
  constructor(
    private gz: Uint8Array | null,
    readonly rawSize: number,
  ) {
    this.size = gz!.length;
  }
  get md5(): string {
    if (this.digest === null) {
      this.digest = md5Hex(this.gz!);
      this.gz = null;
    }
    return this.digest;
  }
}

/** Lookup tables derived once per load, like Swift's _update_bookkeeping. */
class RingState {
  readonly rows: PartToDev[];
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
    const { data, raw } = readRingFile(gz, opts.maxBytes ?? DEFAULT_MAX_BYTES);
    const info = new FileInfo(gz, raw.length);
    return new Ring(null, new RingState(data, info), null, opts);
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
      // (plain reads: the ring is parsed synchronously right after anyway)
      mtimeNs = statSync(path, { bigint: true }).mtimeNs;
      gz = readFileSync(path);
    } catch (err) {
      throw new RingError(`cannot read ring ${path}: ${(err as Error).message}`, { cause: err });
    }
    // Synchronous, as in Swift: rings are read at start and when they change, and zlib's
    // async API cannot say where the first gzip member ends.
    const { data, raw } = readRingFile(gz, maxBytes);
    const info = new FileInfo(gz, raw.length);
    return { state: new RingState(data, info), mtimeNs };
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
  /** The file format the ring was read from (Swift's RingData.format_version); null when built from data. */
  get formatVersion(): 1 | 2 | null {
    return this.state.data.formatVersion ?? null;
  }
  /** Width of the device ids in the assignment table, as Swift's Ring.dev_id_bytes. */
  get devIdBytes(): 2 | 4 {
    return this.state.rows[0] instanceof Uint32Array ? 4 : 2;
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
    const digest = new Md5().update(String(part)).digest();
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
