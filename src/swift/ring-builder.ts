// Writing Swift ring files (format v1, or v2 for Swift >= 2.36), and a small deterministic
// builder to make them.
//
// The builder is not swift-ring-builder's rebalance; it makes a fresh placement that Swift's
// Ring reads like any other: every partition's replicas on distinct devices, spread over
// regions, zones and ips in proportion to their weight, and each device's share of
// partition-replicas proportional to its weight.
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crc32, deflateRawSync, gzipSync, constants as zlibConstants } from 'node:zlib';
import { RingError } from './errors.js';
import { pyDumps } from './py-json.js';
import { checkRingData, RING_MAGIC, V2_SECTIONS, V2_TAIL_BYTES, type Device, type RingData } from './ring.js';

/** Swift's builder reserves 0xFFFF (NONE_DEV) for "unassigned", so device ids stay below it. */
export const MAX_DEVICE_ID = 0xfffe;
/** The table is held in memory as parts × replicas uint16 and placed in O(parts × replicas × devices). */
export const MAX_BUILD_PART_POWER = 26;

export interface DeviceSpec {
  /** Defaults to the lowest free id, as swift-ring-builder's add_dev picks it. */
  id?: number;
  region?: number;
  zone: number;
  ip: string;
  port: number;
  replication_ip?: string;
  replication_port?: number;
  device: string;
  /** Relative share of partitions; 0 keeps the device in the ring with nothing on it. */
  weight: number;
  meta?: string;
}

export interface RingSpec {
  partPower: number;
  /** May be fractional (e.g. 2.5): the last replica row then covers only part of the partitions. */
  replicas: number;
  devices: DeviceSpec[];
  /** Same seed and inputs, same ring. */
  seed?: number;
  version?: number;
  nextPartPower?: number | null;
}

export interface WriteOptions {
  /**
   * Ring file format: 1 (the default, as in Swift, and all Swift versions read it) or 2, which
   * only Swift >= 2.36 reads but which also holds 4-byte device ids (Uint32Array rows).
   */
  version?: 1 | 2;
  /** v1 only: byte order of the assignment table; Swift writes its host's, and reads either. */
  byteorder?: 'little' | 'big';
  /**
   * v2 only: the ring's file name, stored in the gzip header as Swift's writer stores it (the
   * base name without ".gz"). It shifts every compressed offset, so writeRing passes the real
   * path. Default: none.
   */
  filename?: string;
  /** v2 only: gzip header mtime in seconds; Swift's fixed default keeps equal rings byte-equal. */
  mtime?: number;
}

/** The mtime Swift's RingData.save writes into the gzip header unless told otherwise. */
export const SWIFT_RING_MTIME = 1300507380;

// ------------------------------------------------------------------ serialisation

const FLOAT_KEYS: ReadonlySet<string> = new Set(['weight']);

/**
 * json.dumps(value, sort_keys=True, ensure_ascii=True), so a ring written here has the same
 * bytes as Swift's for the same data. Python keeps floats apart from ints (1.0, not 1): Swift's
 * builder stores weights as floats, and v2 metadata computes replica_count as one.
 */
function pyJson(value: unknown, floatKeys: ReadonlySet<string> = FLOAT_KEYS): string {
  try {
    return pyDumps(value, { sortKeys: true, floatKeys });
  } catch (e) {
    throw new RingError(`cannot serialise ring metadata: ${(e as Error).message}`);
  }
}

function formatOf(opts: WriteOptions): 1 | 2 {
  const version = opts.version ?? 1;
  if (version !== 1 && version !== 2) throw new RingError(`ring format version must be 1 or 2, got ${String(version)}`);
  if (version === 2 && opts.byteorder !== undefined) {
    throw new RingError('byteorder applies to format v1 only; v2 tables are always in network order');
  }
  return version;
}

/** The uncompressed bytes of a v1 ring file, laid out as Swift's RingData.serialize_v1. */
function serializeV1(data: RingData, opts: WriteOptions): Uint8Array {
  if (!(data.replica2part2dev[0] instanceof Uint16Array)) {
    // Swift's serialize_v1 refuses these too (DevIdBytesTooSmall).
    throw new RingError('ring format v1 holds only 2-byte device ids; write 4-byte ones as format v2');
  }
  const byteorder = opts.byteorder ?? 'little';
  const meta: Record<string, unknown> = {
    devs: data.devs,
    part_shift: data.partShift,
    replica_count: data.replica2part2dev.length,
    byteorder,
  };
  if (data.version != null) meta.version = data.version;
  if (data.nextPartPower != null) meta.next_part_power = data.nextPartPower;
  const json = Buffer.from(pyJson(meta), 'latin1');
  const tableBytes = data.replica2part2dev.reduce((n, row) => n + row.length * 2, 0);
  const out = new Uint8Array(10 + json.length + tableBytes);
  const view = new DataView(out.buffer);
  out.set(Buffer.from(RING_MAGIC, 'latin1'), 0);
  view.setUint16(4, 1);
  view.setUint32(6, json.length);
  out.set(json, 10);
  let off = 10 + json.length;
  const little = byteorder === 'little';
  for (const row of data.replica2part2dev) {
    for (let i = 0; i < row.length; i++, off += 2) view.setUint16(off, row[i]!, little);
  }
  return out;
}

function size64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** The gzip header Python's GzipFile writes for Swift's RingWriter. */
function swiftGzipHeader(opts: WriteOptions): Buffer {
  let name: Buffer | null = null;
  if (opts.filename !== undefined) {
    let base = basename(opts.filename);
    if (base.endsWith('.gz')) base = base.slice(0, -3);
    if (base.includes('\0')) throw new RingError('a gzip file name cannot contain NUL');
    // RFC 1952 names are Latin-1; like Python, leave out one that is not.
    if (base !== '' && [...base].every((c) => c.charCodeAt(0) <= 0xff)) name = Buffer.from(`${base}\0`, 'latin1');
  }
  const mtime = opts.mtime ?? SWIFT_RING_MTIME;
  if (!Number.isFinite(mtime) || mtime < 0 || mtime >= 2 ** 32) throw new RingError(`gzip mtime out of range: ${mtime}`);
  // method 8 (deflate), FNAME flag, mtime, XFL 2 (best compression), OS 255 (unknown)
  const head = Buffer.from([0x1f, 0x8b, 8, name ? 0x08 : 0, 0, 0, 0, 0, 2, 0xff]);
  head.writeUInt32LE(Math.trunc(mtime), 4);
  return name ? Buffer.concat([head, name]) : head;
}

/**
 * A v2 ring as Swift's RingData.serialize_v2 and RingWriter lay it out: the magic in a stored
 * block, each section and the index compressed at level 9 and ended by a full flush (so it
 * can be inflated from its own offset), the two index offsets in stored blocks, an empty final
 * block. A full flush leaves no state behind, so compressing each piece on its own yields a
 * valid single deflate stream. Section bytes and uncompressed offsets equal Swift's; the
 * compressed bytes (and so the compressed offsets) depend on the zlib build, as Swift's do.
 */
function encodeV2(data: RingData, opts: WriteOptions): { gz: Uint8Array; raw: Uint8Array } {
  const rows = data.replica2part2dev;
  const width = rows[0] instanceof Uint32Array ? 4 : 2;
  const meta: Record<string, unknown> = {
    part_shift: data.partShift,
    dev_id_bytes: width,
    replica_count: rows.length - 1 + rows[rows.length - 1]!.length / rows[0]!.length,
    version: data.version ?? null,
  };
  if (data.nextPartPower != null) meta.next_part_power = data.nextPartPower;
  const blob = (text: string) => {
    const body = Buffer.from(text, 'latin1');
    return Buffer.concat([size64(body.length), body]);
  };
  const ids = rows.reduce((n, row) => n + row.length, 0);
  const table = Buffer.alloc(8 + ids * width);
  table.writeBigUInt64BE(BigInt(ids * width));
  let off = 8;
  for (const row of rows) {
    for (let i = 0; i < row.length; i++, off += width) {
      if (width === 2) table.writeUInt16BE(row[i]!, off);
      else table.writeUInt32BE(row[i]!, off);
    }
  }

  const FULL = { finishFlush: zlibConstants.Z_FULL_FLUSH };
  const gz: Buffer[] = [swiftGzipHeader(opts)];
  const raw: Buffer[] = [];
  let compressed = gz[0]!.length;
  let uncompressed = 0;
  const put = (bytes: Buffer, level: number) => {
    const z = deflateRawSync(bytes, { ...FULL, level });
    gz.push(z);
    raw.push(bytes);
    compressed += z.length;
    uncompressed += bytes.length;
  };
  const magic = Buffer.alloc(6);
  magic.write(RING_MAGIC, 0, 'latin1');
  magic.writeUInt16BE(2, 4);
  // Stored, as Swift does it, so file(1) can see the magic through the gzip layer.
  put(magic, 0);
  const index: Record<string, unknown[]> = {};
  const sections: Array<[string, Buffer]> = [
    [V2_SECTIONS.metadata, blob(pyJson(meta, new Set(['replica_count'])))],
    [V2_SECTIONS.devices, blob(pyJson(data.devs))],
    [V2_SECTIONS.assignments, table],
  ];
  for (const [name, bytes] of sections) {
    const cs = compressed;
    const us = uncompressed;
    put(bytes, 9);
    index[name] = [cs, us, compressed, uncompressed, 'sha256', createHash('sha256').update(bytes).digest('hex')];
  }
  const indexStart = uncompressed;
  const indexCompressedStart = compressed;
  put(blob(pyJson(index)), 9);
  // Stored blocks of a known size: Swift reads the second one at a fixed distance from the end.
  put(size64(indexStart), 0);
  const lastOffsetAt = compressed;
  put(size64(indexCompressedStart), 0);
  gz.push(deflateRawSync(Buffer.alloc(0), { level: 0 }));
  const rawBytes = Buffer.concat(raw);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(rawBytes), 0);
  trailer.writeUInt32LE(rawBytes.length % 2 ** 32, 4);
  gz.push(trailer);
  const file = Buffer.concat(gz);
  if (file.length - lastOffsetAt !== V2_TAIL_BYTES) {
    throw new RingError(`zlib wrote a ${file.length - lastOffsetAt}-byte tail; Swift needs ${V2_TAIL_BYTES}`);
  }
  return {
    gz: new Uint8Array(file.buffer, file.byteOffset, file.length),
    raw: new Uint8Array(rawBytes.buffer, rawBytes.byteOffset, rawBytes.length),
  };
}

/**
 * The uncompressed bytes of a ring file: v1 as Swift's RingData.serialize_v1 lays them out, or
 * with `{ version: 2 }` the uncompressed stream of a v2 file (whose index records compressed
 * offsets, so these bytes come from compressing it).
 */
export function serializeRing(data: RingData, opts: WriteOptions = {}): Uint8Array {
  checkRingData(data);
  return formatOf(opts) === 1 ? serializeV1(data, opts) : encodeV2(data, opts).raw;
}

/** A gzip-compressed ring file, format v1 unless `{ version: 2 }`. */
export function encodeRing(data: RingData, opts: WriteOptions = {}): Uint8Array {
  checkRingData(data);
  if (formatOf(opts) === 2) return encodeV2(data, opts).gz;
  return new Uint8Array(gzipSync(serializeV1(data, opts), { level: 9 }));
}

/**
 * Writes a ring file atomically (temporary file in the same directory, fsync, rename), so a
 * Swift or fragmend process polling the mtime never reads half a ring.
 */
export async function writeRing(path: string, data: RingData, opts: WriteOptions = {}): Promise<void> {
  const bytes = encodeRing(data, opts.version === 2 ? { filename: path, ...opts } : opts);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

// ------------------------------------------------------------------ placement

/** mulberry32: small, seedable, and the same sequence on every platform. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function normalizeSpecs(specs: DeviceSpec[]): Array<Device | null> {
  const devs: Array<Device | null> = [];
  const taken = new Set<number>();
  for (const s of specs) if (s.id !== undefined) taken.add(s.id);
  let nextFree = 0;
  for (const [n, s] of specs.entries()) {
    let id = s.id;
    if (id === undefined) {
      while (taken.has(nextFree)) nextFree++;
      id = nextFree;
      taken.add(id);
    }
    const where = `device ${n} (id ${id})`;
    if (!isInt(id) || id < 0 || id > MAX_DEVICE_ID) throw new RingError(`${where}: id must be an integer in 0..${MAX_DEVICE_ID}`);
    if (devs[id]) throw new RingError(`${where}: duplicate device id`);
    const region = s.region ?? 1;
    if (!isInt(region) || !isInt(s.zone)) throw new RingError(`${where}: region and zone must be integers`);
    if (typeof s.ip !== 'string' || s.ip === '') throw new RingError(`${where}: ip is required`);
    if (!isInt(s.port) || s.port < 0 || s.port > 65535) throw new RingError(`${where}: bad port`);
    if (typeof s.device !== 'string' || s.device === '') throw new RingError(`${where}: device name is required`);
    if (typeof s.weight !== 'number' || !Number.isFinite(s.weight) || s.weight < 0) {
      throw new RingError(`${where}: weight must be a finite number >= 0`);
    }
    const replicationPort = s.replication_port ?? s.port;
    if (!isInt(replicationPort) || replicationPort < 0 || replicationPort > 65535) {
      throw new RingError(`${where}: bad replication_port`);
    }
    while (devs.length <= id) devs.push(null);
    devs[id] = {
      id,
      region,
      zone: s.zone,
      ip: s.ip,
      port: s.port,
      replication_ip: s.replication_ip ?? s.ip,
      replication_port: replicationPort,
      device: s.device,
      weight: s.weight,
      meta: s.meta ?? '',
    };
  }
  return devs;
}

/** Replica-row lengths: whole rows of every partition, then Swift's int(parts * fraction). */
export function rowLengths(parts: number, replicas: number): number[] {
  const whole = Math.floor(replicas);
  const lengths = new Array<number>(whole).fill(parts);
  const partial = replicas - whole;
  if (partial > 0) lengths.push(Math.trunc(parts * partial));
  return lengths;
}

/**
 * Places every partition's replicas. Per partition, replicas are chosen one at a time: first
 * any device that keeps the partition within each tier's share (a tier holding a fraction w
 * of the weight may take at most ceil(R * w) of its R replicas), then the device furthest
 * below its weighted target; exact ties go to a seeded shuffle. Replicas are then shuffled
 * across rows so each device holds a mix of replica (fragment) indexes.
 */
export function buildRing(spec: RingSpec): RingData {
  const { partPower, replicas } = spec;
  if (!isInt(partPower) || partPower < 0 || partPower > MAX_BUILD_PART_POWER) {
    throw new RingError(`part power must be an integer in 0..${MAX_BUILD_PART_POWER}`);
  }
  if (typeof replicas !== 'number' || !Number.isFinite(replicas) || replicas < 1) {
    throw new RingError('replicas must be a number >= 1');
  }
  const devs = normalizeSpecs(spec.devices);
  const parts = 2 ** partPower;
  const lengths = rowLengths(parts, replicas);
  const maxPerPart = lengths.filter((l) => l > 0).length;

  const weighted = devs.filter((d): d is Device => d !== null && (d.weight ?? 0) > 0);
  if (weighted.length < maxPerPart) {
    throw new RingError(
      `${replicas} replicas need at least ${maxPerPart} devices with weight > 0; there are ${weighted.length}`,
    );
  }
  const D = weighted.length;
  const totalWeight = weighted.reduce((w, d) => w + d.weight!, 0);
  const totalSlots = lengths.reduce((a, b) => a + b, 0);

  // Tiers: region, (region, zone), (region, zone, ip), interned to small integers.
  const tierIndex = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
  const tierOf = [new Int32Array(D), new Int32Array(D), new Int32Array(D)] as const;
  const tierWeight: number[][] = [[], [], []];
  weighted.forEach((d, i) => {
    const keys = [`${d.region}`, `${d.region}:${d.zone}`, `${d.region}:${d.zone}:${d.ip}`];
    keys.forEach((key, level) => {
      const map = tierIndex[level]!;
      let t = map.get(key);
      if (t === undefined) {
        map.set(key, (t = map.size));
        tierWeight[level]!.push(0);
      }
      tierOf[level]![i] = t;
      tierWeight[level]![t]! += d.weight!;
    });
  });
  // Largest number of one partition's replicas each tier may hold, for R replicas.
  const capsFor = (r: number): Int32Array[] =>
    tierWeight.map((ws) => Int32Array.from(ws, (w) => Math.max(1, Math.ceil((r * w) / totalWeight - 1e-9))));
  const capsByCount = new Map<number, Int32Array[]>();

  const target = Float64Array.from(weighted, (d) => (totalSlots * d.weight!) / totalWeight);
  const assigned = new Float64Array(D);
  const rows = lengths.map((l) => new Uint16Array(l));
  const random = prng(spec.seed ?? 1);
  const order = Int32Array.from({ length: D }, (_, i) => i);
  const counts = [new Int32Array(tierWeight[0]!.length), new Int32Array(tierWeight[1]!.length), new Int32Array(tierWeight[2]!.length)];
  const usedHere = new Uint8Array(D);
  const chosen: number[] = [];

  for (let part = 0; part < parts; part++) {
    let r = 0;
    while (r < lengths.length && part < lengths[r]!) r++;
    let caps = capsByCount.get(r);
    if (!caps) capsByCount.set(r, (caps = capsFor(r)));
    for (let i = D - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    chosen.length = 0;
    for (let k = 0; k < r; k++) {
      let best = -1;
      let bestOver = 0;
      let bestFill = Infinity;
      for (let n = 0; n < D; n++) {
        const d = order[n]!;
        if (usedHere[d]) continue;
        // Overflow flags, region bit highest: dispersion across regions matters most.
        let over = 0;
        for (let level = 0; level < 3; level++) {
          const t = tierOf[level]![d]!;
          if (counts[level]![t]! + 1 > caps[level]![t]!) over |= 4 >> level;
        }
        const fill = (assigned[d]! + 1) / target[d]!;
        if (best < 0 || over < bestOver || (over === bestOver && fill < bestFill)) {
          best = d;
          bestOver = over;
          bestFill = fill;
        }
      }
      usedHere[best] = 1;
      assigned[best]! += 1;
      for (let level = 0; level < 3; level++) counts[level]![tierOf[level]![best]!]! += 1;
      chosen.push(best);
    }
    for (let i = chosen.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = chosen[i]!;
      chosen[i] = chosen[j]!;
      chosen[j] = t;
    }
    chosen.forEach((d, k) => {
      rows[k]![part] = weighted[d]!.id;
      usedHere[d] = 0;
      for (let level = 0; level < 3; level++) counts[level]![tierOf[level]![d]!]! -= 1;
    });
  }

  return {
    devs,
    replica2part2dev: rows,
    partShift: 32 - partPower,
    version: spec.version ?? 1,
    nextPartPower: spec.nextPartPower ?? null,
  };
}
