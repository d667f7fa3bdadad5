// Ring reading, lookups and writing, proven against real Swift:
//  * fixtures: rings built by Swift's RingBuilder / swift-ring-builder and what Swift's Ring
//    answers for them (scripts/gen-ring-fixtures.py);
//  * live: rings written by fragmend are loaded by Swift's Ring in a /usr/bin/python3
//    subprocess, and both answer the same (skipped without python3-swift unless CI=true);
//  * malformed and fuzzed files only ever raise RingError.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 as zcrc32, gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { RingError } from '../../src/swift/errors.js';
import {
  buildRing,
  encodeRing,
  rowLengths,
  serializeRing,
  writeRing,
  type DeviceSpec,
  type RingSpec,
  type WriteOptions,
} from '../../src/swift/ring-builder.js';
import { Ring, decodeRing, parseRing, type RingData } from '../../src/swift/ring.js';
import { INSTALL_HINT } from '../helpers/install-hint.js';

type Name = [string, string | null, string | null];

interface RingRecord {
  file: string;
  part_power: number;
  part_shift: number;
  partition_count: number;
  replica_count: number;
  row_lengths: number[];
  device_count: number;
  assigned_device_count: number;
  weighted_device_count: number;
  version: number | null;
  next_part_power: number | null;
  md5: string;
  size: number;
  raw_size: number;
  devs: unknown[];
  handoff_limit: number | null;
  parts_digest: string;
  parts_sha256: string;
  names_sha256: string;
  names_head: string[];
  parts?: Array<[number[], number[]]>;
}

interface Expected {
  swift_version: string;
  hash_prefix: string;
  hash_suffix: string;
  names: Name[];
  rings: RingRecord[];
  saio: {
    hash_prefix: string;
    hash_suffix: string;
    name: Name;
    partition: number;
    primaries: string[];
    handoffs: string[];
  };
}

const FIXTURES = fileURLToPath(new URL('../fixtures/rings/', import.meta.url));
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Expected;
const HASH = { prefix: expected.hash_prefix, suffix: expected.hash_suffix };

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const shortDigest = (s: string): string => createHash('md5').update(s).digest('hex').slice(0, 8);

function take<T>(it: Iterable<T>, limit: number | null): T[] {
  const out: T[] = [];
  if (limit === 0) return out;
  for (const x of it) {
    out.push(x);
    if (limit !== null && out.length >= limit) break;
  }
  return out;
}

/** Primaries and handoffs of one partition, as "p,p,p|h,h,..." (the generator's format). */
function partLine(ring: Ring, part: number, limit: number | null): { line: string; prim: number[]; hand: number[] } {
  const primaries = ring.getPartNodes(part);
  primaries.forEach((n, i) => expect(n.index).toBe(i));
  const handoffs = take(ring.getMoreNodes(part), limit);
  handoffs.forEach((n, i) => expect(n.handoff_index).toBe(i));
  const prim = primaries.map((n) => n.id);
  const hand = handoffs.map((n) => n.id);
  return { line: `${prim.join(',')}|${hand.join(',')}`, prim, hand };
}

/** Our answers in the shape the generator records Swift's. */
function ourLookups(ring: Ring, names: Name[], limit: number | null, hash = HASH) {
  const lines: string[] = [];
  for (let p = 0; p < ring.partCount; p++) lines.push(partLine(ring, p, limit).line);
  const nameLines = names.map(([a, c, o]) => {
    const { partition, nodes } = ring.getNodes(a, c, o, hash);
    return `${partition}|${nodes.map((n) => n.id).join(',')}`;
  });
  return {
    lines,
    parts_digest: lines.map(shortDigest).join(''),
    parts_sha256: sha256(lines.join('\n')),
    names_sha256: sha256(nameLines.join('\n')),
    names_head: nameLines.slice(0, 40),
  };
}

/** Compares per-partition digests first, so a mismatch names the partition. */
function expectSameLookups(ours: ReturnType<typeof ourLookups>, theirs: Pick<RingRecord, 'parts_digest' | 'parts_sha256' | 'names_sha256' | 'names_head'>) {
  for (let p = 0; p * 8 < theirs.parts_digest.length; p++) {
    const want = theirs.parts_digest.slice(p * 8, p * 8 + 8);
    if (ours.parts_digest.slice(p * 8, p * 8 + 8) !== want) {
      expect.fail(`partition ${p}: ours ${ours.lines[p]} differs from Swift's (digest ${want})`);
    }
  }
  expect(ours.parts_digest.length).toBe(theirs.parts_digest.length);
  expect(ours.parts_sha256).toBe(theirs.parts_sha256);
  expect(ours.names_head).toEqual(theirs.names_head);
  expect(ours.names_sha256).toBe(theirs.names_sha256);
}

const jsonClone = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

// ------------------------------------------------------------------ fixtures from real Swift

describe(`rings built by Swift ${expected.swift_version}`, () => {
  it('covers the shapes asked for', () => {
    const shapes = expected.rings.map((r) => `${r.part_power}/${r.replica_count}`);
    for (const s of ['4/3', '8/3', '8/2.5', '10/6', '10/14', '10/3', '6/6']) expect(shapes).toContain(s);
    expect(expected.names.length).toBeGreaterThanOrEqual(2000);
  });

  for (const rec of expected.rings) {
    describe(rec.file, () => {
      const ringP = Ring.load(join(FIXTURES, rec.file), { hash: HASH });

      it('loads with Swift’s metadata and devices', async () => {
        const ring = await ringP;
        expect(ring.partPower).toBe(rec.part_power);
        expect(ring.partShift).toBe(rec.part_shift);
        expect(ring.partCount).toBe(rec.partition_count);
        expect(ring.replicaCount).toBe(rec.replica_count);
        expect(ring.data.replica2part2dev.map((r) => r.length)).toEqual(rec.row_lengths);
        expect(ring.deviceCount).toBe(rec.device_count);
        expect(ring.assignedDeviceCount).toBe(rec.assigned_device_count);
        expect(ring.weightedDeviceCount).toBe(rec.weighted_device_count);
        expect(ring.version).toBe(rec.version);
        expect(ring.nextPartPower).toBe(rec.next_part_power);
        expect(ring.md5).toBe(rec.md5);
        expect(ring.size).toBe(rec.size);
        expect(ring.rawSize).toBe(rec.raw_size);
        expect(jsonClone(ring.devs)).toEqual(rec.devs);
      });

      it(`same partitions, primaries and handoff order (${rec.handoff_limit ?? 'all'} handoffs) for every partition and ${expected.names.length} names`, async () => {
        const ring = await ringP;
        const ours = ourLookups(ring, expected.names, rec.handoff_limit);
        if (rec.parts) {
          rec.parts.forEach(([prim, hand], p) => {
            const got = partLine(ring, p, rec.handoff_limit);
            expect([got.prim, got.hand], `partition ${p}`).toEqual([prim, hand]);
          });
        }
        expectSameLookups(ours, rec);
      });

      it('writing it back gives Swift’s bytes', async () => {
        const ring = await ringP;
        const swiftRaw = gunzipSync(readFileSync(join(FIXTURES, rec.file)));
        expect(Buffer.from(serializeRing(ring.data)).equals(swiftRaw)).toBe(true);
      });
    });
  }

  it('the SAIO EC ring places obj-1M17 as the SAIO report says', async () => {
    const s = expected.saio;
    const ring = await Ring.load(join(FIXTURES, 'saio-object-1.ring.gz'));
    const { partition, nodes } = ring.getNodes(...s.name, { prefix: s.hash_prefix, suffix: s.hash_suffix });
    expect(partition).toBe(1);
    expect(nodes.map((n) => n.device)).toEqual(['d6', 'd5', 'd2', 'd7', 'd4', 'd1']);
    expect(nodes.map((n) => n.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...ring.getMoreNodes(partition)].map((n) => n.device)).toEqual(['d3', 'd8']);
    expect(s.primaries).toEqual(['d6', 'd5', 'd2', 'd7', 'd4', 'd1']);
    expect(s.handoffs).toEqual(['d3', 'd8']);
  });
});

// ------------------------------------------------------------------ lookup details

describe('lookups', () => {
  it('a device holding two replicas of a partition is listed once and indexes close up', () => {
    const devs = [0, 1].map((id) => ({ id, region: 1, zone: id, ip: `10.0.0.${id}`, port: 6200, device: 'sda', weight: 1 }));
    const ring = Ring.fromData({
      devs: devs.map((d) => ({ ...d, replication_ip: d.ip, replication_port: d.port })),
      replica2part2dev: [Uint16Array.of(0, 1), Uint16Array.of(0, 0), Uint16Array.of(1, 0)],
      partShift: 31,
    });
    expect(ring.getPartNodes(0).map((n) => [n.id, n.index])).toEqual([[0, 0], [1, 1]]);
    expect(ring.getPartNodes(1).map((n) => [n.id, n.index])).toEqual([[1, 0], [0, 1]]);
    expect([...ring.getMoreNodes(0)]).toEqual([]);
  });

  it('a partition past the table has no primaries, as in Swift; a negative one is an error', async () => {
    const ring = await Ring.load(join(FIXTURES, 'p4-r3.ring.gz'));
    expect(ring.getPartNodes(16)).toEqual([]);
    expect(take(ring.getMoreNodes(16), null).length).toBe(ring.assignedDeviceCount);
    expect(() => ring.getPartNodes(-1)).toThrow(RangeError);
    expect(() => ring.getPartNodes(1.5)).toThrow(RangeError);
  });

  it('returned nodes are copies', async () => {
    const ring = await Ring.load(join(FIXTURES, 'p4-r3.ring.gz'));
    const [n] = ring.getPartNodes(0);
    n!.ip = 'mutated';
    expect(ring.getPartNodes(0)[0]!.ip).not.toBe('mutated');
    expect(ring.devs[n!.id]!.ip).not.toBe('mutated');
  });

  it('needs a hash prefix or suffix, like Swift', async () => {
    const ring = await Ring.load(join(FIXTURES, 'p4-r3.ring.gz'));
    expect(() => ring.getNodes('a', 'c', 'o')).toThrow(TypeError);
    expect(() => ring.getNodes('a', 'c', 'o', { prefix: '', suffix: '' })).toThrow(TypeError);
    expect(ring.getNodes('a', 'c', 'o', { prefix: '', suffix: 'x' }).nodes.length).toBe(3);
  });

  it('handoffs are lazy', async () => {
    const ring = await Ring.load(join(FIXTURES, 'p10-r14.ring.gz'));
    const gen = ring.getMoreNodes(5);
    const first = gen.next();
    expect(first.done).toBe(false);
    expect(first.value).toMatchObject({ handoff_index: 0 });
    gen.return(undefined);
  });
});

/**
 * Devices 3 and 4 (regions 2 and 3) appear only in columns 0 and 1 of the table, so whether a
 * handoff search reaches them shows exactly which columns Swift's wrap-around examines.
 */
function columnQuirkData(partPower: number): RingData {
  const parts = 2 ** partPower;
  const dev = (id: number, region: number, zone: number) => ({
    id, region, zone, ip: `10.${region}.${zone}.1`, port: 6200, replication_ip: `10.${region}.${zone}.1`,
    replication_port: 6200, device: 'sda', weight: 1, meta: '',
  });
  const devs = [dev(0, 1, 1), dev(1, 1, 2), dev(2, 1, 3), dev(3, 2, 1), dev(4, 3, 1)];
  const rows = [0, 1, 2].map((r) => Uint16Array.from({ length: parts }, (_, p) => (p + r) % 3));
  rows[0]![0] = 3;
  rows[0]![1] = 4;
  return { devs, replica2part2dev: rows, partShift: 32 - partPower };
}

const scanStart = (part: number, partShift: number): number =>
  createHash('md5').update(String(part)).digest().readUInt32BE(0) >>> partShift;

describe('handoff column order (the wrap-around quirk)', () => {
  it('part power <= 16 (inc 1): column 0 is reached only when the scan starts there', () => {
    const ring = Ring.fromData(columnQuirkData(8));
    let startedAtZero = 0;
    for (let p = 2; p < ring.partCount; p++) {
      const ids = [...ring.getMoreNodes(p)].map((n) => n.id);
      const s = scanStart(p, ring.partShift);
      if (s === 0) startedAtZero++;
      expect(ids, `partition ${p}, start ${s}`).toContain(4);
      expect(ids.includes(3), `partition ${p}, start ${s}`).toBe(s === 0);
    }
    expect(startedAtZero).toBeLessThan(5);
  });

  it('part power 17 (inc 2): an even start never sees columns 0 or 1, an odd one sees column 1', () => {
    const ring = Ring.fromData(columnQuirkData(17));
    const seen = { even: 0, odd: 0 };
    for (let p = 2; p < 40; p++) {
      const ids = [...ring.getMoreNodes(p)].map((n) => n.id);
      const s = scanStart(p, ring.partShift);
      seen[s % 2 ? 'odd' : 'even']++;
      expect(ids.includes(4), `partition ${p}, start ${s}`).toBe(s % 2 === 1);
      expect(ids.includes(3), `partition ${p}, start ${s}`).toBe(s === 0);
    }
    expect(seen.even).toBeGreaterThan(5);
    expect(seen.odd).toBeGreaterThan(5);
  });
});

// ------------------------------------------------------------------ builder

function devices(layout: Array<[region: number, zone: number, ips: number, disks: number]>, weight: (i: number) => number = () => 1): DeviceSpec[] {
  const out: DeviceSpec[] = [];
  for (const [region, zone, ips, disks] of layout) {
    for (let h = 0; h < ips; h++) {
      for (let d = 0; d < disks; d++) {
        out.push({
          region,
          zone,
          ip: `10.${region}.${zone}.${h + 1}`,
          port: 6200 + region,
          replication_ip: `10.${region + 100}.${zone}.${h + 1}`,
          replication_port: 7200 + region,
          device: `sd${String.fromCharCode(97 + d)}`,
          weight: weight(out.length),
          meta: `r${region}z${zone} \u00e9`,
        });
      }
    }
  }
  return out;
}

interface Stats {
  maxRelativeSkew: number;
  maxPerZone: number;
  maxPerRegion: number;
  duplicates: number;
}

function placementStats(data: RingData): Stats {
  const counts = new Map<number, number>();
  let slots = 0;
  let duplicates = 0;
  let maxPerZone = 0;
  let maxPerRegion = 0;
  const parts = data.replica2part2dev[0]!.length;
  for (let p = 0; p < parts; p++) {
    const ids = data.replica2part2dev.filter((r) => p < r.length).map((r) => r[p]!);
    if (new Set(ids).size !== ids.length) duplicates++;
    const zones = new Map<string, number>();
    const regions = new Map<number, number>();
    for (const id of ids) {
      const d = data.devs[id]!;
      counts.set(id, (counts.get(id) ?? 0) + 1);
      slots++;
      const zk = `${d.region}:${d.zone}`;
      zones.set(zk, (zones.get(zk) ?? 0) + 1);
      regions.set(d.region, (regions.get(d.region) ?? 0) + 1);
    }
    maxPerZone = Math.max(maxPerZone, ...zones.values());
    maxPerRegion = Math.max(maxPerRegion, ...regions.values());
  }
  const totalWeight = data.devs.reduce((w, d) => w + (d?.weight ?? 0), 0);
  let maxRelativeSkew = 0;
  for (const d of data.devs) {
    if (!d) continue;
    const want = (slots * (d.weight ?? 0)) / totalWeight;
    const have = counts.get(d.id) ?? 0;
    if (want === 0) expect(have, `zero-weight device ${d.id}`).toBe(0);
    else maxRelativeSkew = Math.max(maxRelativeSkew, Math.abs(have - want) / want);
  }
  return { maxRelativeSkew, maxPerZone, maxPerRegion, duplicates };
}

describe('buildRing', () => {
  it('balanced, one replica per device, replicas spread over zones and regions', () => {
    const cases: Array<[RingSpec, { zone: number; region: number }]> = [
      [{ partPower: 8, replicas: 3, devices: devices([[1, 1, 1, 2], [1, 2, 1, 2], [1, 3, 1, 2], [1, 4, 1, 2]]) }, { zone: 1, region: 3 }],
      [{ partPower: 10, replicas: 14, devices: devices([[1, 1, 2, 2], [1, 2, 2, 2], [2, 1, 2, 2], [2, 2, 2, 2], [3, 1, 2, 2], [3, 2, 2, 2], [3, 3, 2, 2]]) }, { zone: 2, region: 6 }],
      [{ partPower: 10, replicas: 6, devices: devices([[1, 1, 2, 2], [1, 2, 2, 2], [1, 3, 2, 2]]) }, { zone: 2, region: 6 }],
      [{ partPower: 9, replicas: 2.5, devices: devices([[1, 1, 1, 2], [1, 2, 1, 2], [2, 1, 1, 2], [2, 2, 1, 2]]) }, { zone: 1, region: 2 }],
    ];
    for (const [spec, limits] of cases) {
      const data = buildRing(spec);
      const s = placementStats(data);
      const what = `${spec.partPower}/${spec.replicas}`;
      expect(s.duplicates, what).toBe(0);
      expect(s.maxPerZone, what).toBeLessThanOrEqual(limits.zone);
      expect(s.maxPerRegion, what).toBeLessThanOrEqual(limits.region);
      expect(s.maxRelativeSkew, what).toBeLessThan(0.02);
    }
  });

  it('follows weights, leaves zero-weight devices empty, keeps id holes', () => {
    const devs = devices([[1, 1, 2, 2], [1, 2, 2, 2], [1, 3, 2, 2], [1, 4, 2, 2]], (i) => [1, 2, 0.5, 3][i % 4]!);
    devs[5]!.weight = 0;
    devs.forEach((d, i) => (d.id = i < 3 ? i : i + 2)); // ids 3 and 4 unused
    const data = buildRing({ partPower: 10, replicas: 3, devices: devs, seed: 7 });
    expect(data.devs[3]).toBeNull();
    expect(data.devs[4]).toBeNull();
    const s = placementStats(data);
    expect(s.duplicates).toBe(0);
    expect(s.maxPerZone).toBe(1);
    expect(s.maxRelativeSkew).toBeLessThan(0.03);
  });

  it('a fractional replica count shortens only the last row, like Swift', () => {
    expect(rowLengths(256, 2.5)).toEqual([256, 256, 128]);
    expect(rowLengths(16, 3)).toEqual([16, 16, 16]);
    expect(rowLengths(1024, 1.1)).toEqual([1024, Math.trunc(1024 * (1.1 - 1))]);
    const data = buildRing({ partPower: 6, replicas: 2.25, devices: devices([[1, 1, 1, 1], [1, 2, 1, 1], [1, 3, 1, 1]]) });
    expect(data.replica2part2dev.map((r) => r.length)).toEqual([64, 64, 16]);
    expect(Ring.fromData(data).replicaCount).toBe(2.25);
  });

  it('is deterministic per seed', () => {
    const spec = { partPower: 8, replicas: 3, devices: devices([[1, 1, 1, 2], [1, 2, 1, 2], [2, 1, 1, 2]]) };
    const a = encodeRing(buildRing({ ...spec, seed: 42 }));
    expect(encodeRing(buildRing({ ...spec, seed: 42 }))).toEqual(a);
    expect(encodeRing(buildRing({ ...spec, seed: 43 }))).not.toEqual(a);
  });

  it('refuses impossible or invalid specs with RingError', () => {
    const two = devices([[1, 1, 1, 2]]);
    expect(() => buildRing({ partPower: 4, replicas: 3, devices: two })).toThrow(RingError);
    expect(() => buildRing({ partPower: 4, replicas: 2.5, devices: two })).toThrow(RingError);
    expect(() => buildRing({ partPower: 4, replicas: 0.5, devices: two })).toThrow(RingError);
    expect(() => buildRing({ partPower: 4, replicas: 1, devices: [{ ...two[0]!, id: 1 }, { ...two[1]!, id: 1 }] })).toThrow(RingError);
    expect(() => buildRing({ partPower: 4, replicas: 1, devices: [{ ...two[0]!, id: 65535 }] })).toThrow(RingError);
    expect(() => buildRing({ partPower: 4, replicas: 1, devices: [{ ...two[0]!, weight: -1 }] })).toThrow(RingError);
    expect(() => buildRing({ partPower: 40, replicas: 1, devices: two })).toThrow(RingError);
  });

  it('assigns missing ids like add_dev: lowest free first', () => {
    const [a, b, c] = devices([[1, 1, 1, 3]]);
    const data = buildRing({ partPower: 2, replicas: 1, devices: [{ ...a!, id: 1 }, { ...b! }, { ...c! }] });
    expect(data.devs.map((d) => d?.id)).toEqual([0, 1, 2]);
    expect(data.devs[0]!.device).toBe('sdb');
  });
});

// ------------------------------------------------------------------ live: real Swift loads our rings

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../../scripts/gen-ring-fixtures.py', import.meta.url));
const SWIFT_INSTALL_HINT = INSTALL_HINT;

function swiftProblem(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import swift.common.ring, swift.common.utils'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `python3-swift is not importable: ${probe.stderr.trim().split('\n').pop()}`;
  return null;
}

function swiftEnabled(): boolean {
  const problem = swiftProblem();
  if (!problem) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true and the Swift cross-checks cannot run: ${problem}. Install: ${SWIFT_INSTALL_HINT}`);
  console.warn(`[skipped] real-Swift ring cross-checks: ${problem}. To run them: ${SWIFT_INSTALL_HINT}`);
  return false;
}

describe.runIf(swiftEnabled())('rings written by fragmend, read by real Swift', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fragmend-ring-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const names = expected.names.slice(0, 600);
  const namesFile = join(dir, 'names.json');
  writeFileSync(namesFile, JSON.stringify({ prefix: HASH.prefix, suffix: HASH.suffix, names }));

  function oracle(ringPath: string, args: string[]): Record<string, unknown> {
    const res = spawnSync(PYTHON, [SCRIPT, 'oracle', ringPath, '--names', namesFile, ...args], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    if (res.status !== 0) throw new Error(`Swift oracle failed: ${res.stderr}`);
    return JSON.parse(res.stdout) as Record<string, unknown>;
  }

  const specs: Array<[string, RingSpec, WriteOptions?]> = [
    ['p8-r3 two regions', { partPower: 8, replicas: 3, seed: 5, devices: devices([[1, 1, 2, 1], [1, 2, 2, 1], [1, 3, 1, 2], [2, 1, 2, 1], [2, 2, 1, 1]]) }],
    ['p10-r14 EC 10+4', { partPower: 10, replicas: 14, seed: 14, devices: devices([[1, 1, 1, 3], [1, 2, 1, 3], [2, 1, 1, 3], [2, 2, 1, 3], [3, 1, 1, 3], [3, 2, 1, 3], [3, 3, 1, 2]]) }],
    ['p9-r2.5 fractional, big-endian', { partPower: 9, replicas: 2.5, seed: 3, devices: devices([[1, 1, 1, 2], [1, 2, 1, 2], [2, 1, 1, 2]]) }, { byteorder: 'big' }],
    ['p6-r6 zero weights and id holes', {
      partPower: 6, replicas: 6, seed: 9, version: 17, nextPartPower: 7,
      devices: devices([[1, 1, 1, 2], [1, 2, 1, 2], [1, 3, 1, 2], [1, 4, 1, 2]], (i) => (i === 2 ? 0 : 1)).map((d, i) => ({ ...d, id: i * 3 })),
    }],
  ];

  for (const [label, spec, wopts] of specs) {
    it(`${label}: Swift's Ring gives our assignments, handoffs and devices`, async () => {
      const path = join(dir, `${label.replace(/\W+/g, '-')}.ring.gz`);
      const data = buildRing(spec);
      await writeRing(path, data, wopts);
      const ring = await Ring.load(path, { hash: HASH });
      const theirs = oracle(path, []) as unknown as RingRecord;
      expect(theirs.partition_count).toBe(ring.partCount);
      expect(theirs.replica_count).toBe(ring.replicaCount);
      expect(theirs.row_lengths).toEqual(data.replica2part2dev.map((r) => r.length));
      expect(theirs.assigned_device_count).toBe(ring.assignedDeviceCount);
      expect(theirs.version).toBe(ring.version);
      expect(theirs.next_part_power).toBe(ring.nextPartPower);
      expect(jsonClone(ring.devs)).toEqual(theirs.devs);
      expectSameLookups(ourLookups(ring, names, null), theirs);
    });
  }

  it('hand-made tables: Swift reaches columns 0 and 1 exactly when we do', async () => {
    const p8 = join(dir, 'quirk-p8.ring.gz');
    await writeRing(p8, columnQuirkData(8));
    const ring8 = await Ring.load(p8, { hash: HASH });
    expectSameLookups(ourLookups(ring8, names, null), oracle(p8, []) as unknown as RingRecord);

    const p17 = join(dir, 'quirk-p17.ring.gz');
    await writeRing(p17, columnQuirkData(17));
    const ring17 = await Ring.load(p17, { hash: HASH });
    // Every pass scans all 65536 columns here, which takes Swift a while: a few partitions only.
    const sample = [0, 1, 2, 3, 4, 5, 6, 7, 8, 131071];
    const theirs = oracle(p17, ['--parts', sample.join(',')]) as { explicit: Record<string, [number[], number[]]> };
    for (const p of sample) {
      const { prim, hand } = partLine(ring17, p, null);
      expect([prim, hand], `partition ${p}`).toEqual(theirs.explicit[String(p)]);
    }
  });

  it('part power 17: the inc > 1 column stride and its wrap-around, checked on sampled partitions', async () => {
    const path = join(dir, 'p17.ring.gz');
    const data = buildRing({ partPower: 17, replicas: 3, seed: 17, devices: devices([[1, 1, 1, 2], [1, 2, 2, 1], [2, 1, 1, 2], [2, 2, 1, 1], [3, 1, 1, 1]]) });
    await writeRing(path, data);
    const ring = await Ring.load(path, { hash: HASH });
    expect(Math.floor(ring.partCount / 65536)).toBe(2);
    const sample = [0, 1, 2, 3, 65535, 65536, 131071];
    for (let i = 0; sample.length < 120; i++) sample.push((i * 7919 + 13) % ring.partCount);
    const theirs = oracle(path, ['--parts', sample.join(',')]) as {
      partition_count: number;
      explicit: Record<string, [number[], number[]]>;
      names: Array<[number, number[]]>;
    };
    expect(theirs.partition_count).toBe(131072);
    for (const p of sample) {
      const { prim, hand } = partLine(ring, p, null);
      expect([prim, hand], `partition ${p}`).toEqual(theirs.explicit[String(p)]);
    }
    const ours = names.map(([a, c, o]) => {
      const { partition, nodes } = ring.getNodes(a, c, o);
      return [partition, nodes.map((n) => n.id)];
    });
    expect(ours).toEqual(theirs.names);
  });
});

// ------------------------------------------------------------------ reload

describe('hasChanged / reload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fragmend-ring-reload-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('tracks the file’s mtime like Swift and keeps the old ring when the new file is bad', async () => {
    const path = join(dir, 'object.ring.gz');
    const spec = { partPower: 4, replicas: 3, devices: devices([[1, 1, 1, 1], [1, 2, 1, 1], [1, 3, 1, 1], [1, 4, 1, 1]]) };
    await writeRing(path, buildRing({ ...spec, seed: 1 }));
    await utimes(path, 1_000_000, 1_000_000);
    const ring = await Ring.load(path, { reloadTime: 3600 });
    const before = ring.data.replica2part2dev.map((r) => [...r]);
    expect(await ring.hasChanged()).toBe(false);
    expect(await ring.reload()).toBe(false);

    await writeRing(path, buildRing({ ...spec, seed: 2 }));
    await utimes(path, 1_000_001, 1_000_001);
    expect(await ring.hasChanged()).toBe(true);
    expect(await ring.maybeReload()).toBe(false); // reloadTime not yet elapsed
    expect(await ring.reload()).toBe(true);
    expect(await ring.hasChanged()).toBe(false);
    const after = ring.data.replica2part2dev.map((r) => [...r]);
    expect(after).not.toEqual(before);

    await writeFile(path, 'not a ring');
    await utimes(path, 1_000_002, 1_000_002);
    await expect(ring.reload()).rejects.toBeInstanceOf(RingError);
    expect(ring.data.replica2part2dev.map((r) => [...r])).toEqual(after);
    expect(await ring.reload(true).catch((e: unknown) => e)).toBeInstanceOf(RingError);
  });

  it('maybeReload re-reads once reloadTime has passed', async () => {
    const path = join(dir, 'object-1.ring.gz');
    const spec = { partPower: 3, replicas: 1, devices: devices([[1, 1, 1, 2]]) };
    await writeRing(path, buildRing({ ...spec, seed: 1 }));
    await utimes(path, 2_000_000, 2_000_000);
    const ring = await Ring.load(path, { reloadTime: 0 });
    await writeRing(path, buildRing({ ...spec, seed: 99 }));
    await utimes(path, 2_000_001, 2_000_001);
    await new Promise((r) => setTimeout(r, 5));
    expect(await ring.maybeReload()).toBe(true);
  });

  it('a missing file is a RingError', async () => {
    await expect(Ring.load(join(dir, 'absent.ring.gz'))).rejects.toBeInstanceOf(RingError);
  });
});

// ------------------------------------------------------------------ malformed files

/** A v1 payload built by hand, so each test can break one thing. */
function payload(meta: Record<string, unknown>, table: Uint8Array, magic = 'R1NG', version = 1): Uint8Array {
  const json = Buffer.from(JSON.stringify(meta));
  const head = Buffer.alloc(10);
  head.write(magic, 0, 'latin1');
  head.writeUInt16BE(version, 4);
  head.writeUInt32BE(json.length, 6);
  return new Uint8Array(Buffer.concat([head, json, table]));
}

const DEV = (id: number) => ({ id, region: 1, zone: id, ip: `10.0.0.${id}`, port: 6200, device: 'sda', weight: 1 });
const goodMeta = { devs: [DEV(0), DEV(1)], part_shift: 30, replica_count: 2, byteorder: 'little' };
const table = (ids: number[]) => new Uint8Array(Buffer.from(Uint16Array.from(ids).buffer));

describe('malformed rings raise RingError', () => {
  const ok = payload(goodMeta, table([0, 1, 0, 1, 1, 0, 1, 0]));

  it('the hand-built baseline is fine', () => {
    const ring = Ring.fromBytes(gzipSync(ok));
    expect(ring.partCount).toBe(4);
    expect(ring.replicaCount).toBe(2);
    expect(ring.devs[0]).toMatchObject({ replication_ip: '10.0.0.0', replication_port: 6200 });
  });

  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty file', new Uint8Array(0), /too short for a gzip header/],
    ['not gzip', new Uint8Array(Buffer.from('R1NG plain text')), /gzip/],
    ['truncated gzip', gzipSync(ok).subarray(0, 20), /gzip/],
    ['bad magic', gzipSync(payload(goodMeta, table([]), 'R2NG')), /bad magic/],
    ['pickled ring', gzipSync(Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e])), /pickled/],
    ['format v2', gzipSync(payload(goodMeta, table([]), 'R1NG', 2)), /version 2/],
    ['format v9', gzipSync(payload(goodMeta, table([]), 'R1NG', 9)), /version 9/],
    ['short header', gzipSync(Buffer.from('R1NG\x00\x01\x00')), /truncated/],
    ['json length past end', gzipSync(Buffer.concat([Buffer.from(ok.subarray(0, 6)), Buffer.from([0, 0, 1, 0]), Buffer.from('{}')])), /truncated/],
    ['json not json', gzipSync(Buffer.concat([Buffer.from('R1NG\x00\x01\x00\x00\x00\x03', 'latin1'), Buffer.from('{x}')])), /JSON/],
    ['json not an object', gzipSync(payload([] as unknown as Record<string, unknown>, table([]))), /object/],
    ['missing part_shift', gzipSync(payload({ ...goodMeta, part_shift: undefined }, table([0, 1, 0, 1, 1, 0, 1, 0]))), /part_shift/],
    ['part_shift 33', gzipSync(payload({ ...goodMeta, part_shift: 33 }, table([]))), /part_shift/],
    ['replica_count 0', gzipSync(payload({ ...goodMeta, replica_count: 0 }, table([]))), /replica_count/],
    ['replica_count 1.5', gzipSync(payload({ ...goodMeta, replica_count: 1.5 }, table([]))), /replica_count/],
    ['byteorder middle', gzipSync(payload({ ...goodMeta, byteorder: 'middle' }, table([0, 1, 0, 1, 1, 0, 1, 0]))), /byteorder/],
    ['devs not a list', gzipSync(payload({ ...goodMeta, devs: {} }, table([]))), /devs/],
    ['device without zone', gzipSync(payload({ ...goodMeta, devs: [DEV(0), { ...DEV(1), zone: undefined }] }, table([0, 1, 0, 1, 1, 0, 1, 0]))), /zone/],
    ['device id not its position', gzipSync(payload({ ...goodMeta, devs: [DEV(0), DEV(2)] }, table([0, 1, 0, 1, 1, 0, 1, 0]))), /position/],
    ['first row truncated', gzipSync(payload(goodMeta, table([0, 1, 0]))), /truncated/],
    ['single row truncated', gzipSync(payload({ ...goodMeta, replica_count: 1 }, table([0, 1]))), /truncated/],
    ['odd byte count', gzipSync(Buffer.concat([payload(goodMeta, table([0, 1, 0, 1, 1, 0])), Buffer.from([1])])), /odd/],
    ['table names a missing device', gzipSync(payload(goodMeta, table([0, 1, 0, 1, 1, 0, 1, 2]))), /inconsistent replica2part2dev/],
    ['table names a removed device', gzipSync(payload({ ...goodMeta, devs: [DEV(0), null] }, table([0, 1, 0, 1, 1, 0, 1, 0]))), /inconsistent replica2part2dev/],
  ];
  for (const [label, bytes, message] of cases) {
    it(label, () => {
      expect(() => parseRing(bytes)).toThrow(RingError);
      expect(() => parseRing(bytes)).toThrow(message);
    });
  }

  it('a short last row is a fractional replica, as Swift reads it', () => {
    const ring = Ring.fromBytes(gzipSync(payload(goodMeta, table([0, 1, 0, 1, 1, 0]))));
    expect(ring.replicaCount).toBe(1.5);
    expect(ring.getPartNodes(3).map((n) => n.id)).toEqual([1]);
  });

  it('big-endian tables, and trailing bytes ignored as Swift ignores them', () => {
    const be = new Uint8Array(Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0]));
    const ring = Ring.fromBytes(gzipSync(Buffer.concat([payload({ ...goodMeta, byteorder: 'big' }, be), Buffer.from('junk!')])));
    expect([...ring.data.replica2part2dev[0]!]).toEqual([0, 1, 0, 1]);
    expect([...ring.data.replica2part2dev[1]!]).toEqual([1, 0, 1, 0]);
  });

  it('a gzip bomb stops at maxBytes', async () => {
    const bomb = gzipSync(Buffer.concat([ok, Buffer.alloc(8 << 20)]));
    expect(() => parseRing(bomb, 1 << 20)).toThrow(/more than/);
    expect(() => Ring.fromBytes(bomb, { maxBytes: 1 << 20 })).toThrow(RingError);
    const dir = mkdtempSync(join(tmpdir(), 'fragmend-ring-bomb-'));
    try {
      await writeFile(join(dir, 'bomb.ring.gz'), bomb);
      await expect(Ring.load(join(dir, 'bomb.ring.gz'), { maxBytes: 1 << 20 })).rejects.toThrow(/more than/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('only the first gzip member is read, as Swift reads it; a damaged member is refused', () => {
    const gz = gzipSync(ok);
    const other = gzipSync(payload(goodMeta, table([1, 1, 1, 1, 0, 0, 0, 0])));
    for (const tail of [Buffer.from('junk'), Buffer.from([0x1f, 0x8b, 1]), other]) {
      const ring = Ring.fromBytes(Buffer.concat([gz, tail]));
      expect([...ring.data.replica2part2dev[0]!]).toEqual([0, 1, 0, 1]);
    }
    const badCrc = Buffer.from(gz);
    badCrc[badCrc.length - 8]! ^= 1;
    expect(() => parseRing(badCrc)).toThrow(/CRC32/);
    const badLen = Buffer.from(gz);
    badLen[badLen.length - 1]! ^= 1;
    expect(() => parseRing(badLen)).toThrow(/length/);
    expect(() => parseRing(gz.subarray(0, gz.length - 4))).toThrow(/trailer/);
    const reserved = Buffer.from(gz);
    reserved[3] = 0x20;
    expect(() => parseRing(reserved)).toThrow(/reserved/);
  });

  it('gzip headers with FEXTRA, FNAME, FCOMMENT and FHCRC', () => {
    const gz = gzipSync(ok);
    const deflated = gz.subarray(10);
    const head = Buffer.from([0x1f, 0x8b, 8, 0x04 | 0x08 | 0x10 | 0x02, 0, 0, 0, 0, 0, 3]);
    const extra = Buffer.from([3, 0, 0x41, 0x42, 0x43]);
    const names = Buffer.from('object.ring\0a comment\0', 'latin1');
    const pre = Buffer.concat([head, extra, names]);
    const hcrc = Buffer.alloc(2);
    hcrc.writeUInt16LE(zcrc32(pre) & 0xffff);
    const ring = Ring.fromBytes(Buffer.concat([pre, hcrc, deflated]));
    expect(ring.partCount).toBe(4);
    hcrc[0]! ^= 1;
    expect(() => parseRing(Buffer.concat([pre, hcrc, deflated]))).toThrow(/header checksum/);
  });
});

// ------------------------------------------------------------------ fuzzing

function expectRingOrRingError(run: () => unknown): void {
  const t0 = performance.now();
  try {
    run();
  } catch (err) {
    if (!(err instanceof RingError)) throw err;
  }
  expect(performance.now() - t0).toBeLessThan(2000);
}

describe('fuzzing: RingError or a ring, never anything else, never a hang', () => {
  const goodGz = readFileSync(join(FIXTURES, 'p8-r3-regions.ring.gz'));
  const goodRaw = gunzipSync(goodGz);

  it('arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => expectRingOrRingError(() => Ring.fromBytes(b))), { numRuns: 500 });
  });

  it('arbitrary bytes behind a valid header, gzipped', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.constantFrom(0, 1, 2), (b, v) => {
        const head = Buffer.from([0x52, 0x31, 0x4e, 0x47, 0, v]);
        expectRingOrRingError(() => Ring.fromBytes(gzipSync(Buffer.concat([head, b]))));
      }),
      { numRuns: 300 },
    );
  });

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;
  function mutate(src: Uint8Array, ms: Mutation[], focus: number): Uint8Array {
    let b = Buffer.from(src);
    for (const m of ms) {
      // Half the mutations land in the header and JSON, where the parser makes its decisions.
      const at = b.length === 0 ? 0 : m.at % (m.at % 2 === 0 ? Math.min(b.length, focus) : b.length);
      if (m.kind === 'flip' && b.length) b[at] = b[at]! ^ (1 << m.bit);
      else if (m.kind === 'set' && b.length) b[at] = m.byte;
      else if (m.kind === 'truncate') b = b.subarray(0, at);
      else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    }
    return new Uint8Array(b);
  }

  it('mutated ring payloads (re-gzipped, so the parser sees them)', () => {
    const focus = 10 + goodRaw.readUInt32BE(6);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) =>
        expectRingOrRingError(() => {
          const ring = Ring.fromBytes(gzipSync(mutate(goodRaw, ms, focus)), { hash: HASH });
          // A ring that parses must also answer lookups without surprises.
          for (let p = 0; p < Math.min(ring.partCount, 8); p++) {
            ring.getPartNodes(p);
            take(ring.getMoreNodes(p), null);
          }
          ring.getNodes('a', 'c', 'o');
        }),
      ),
      { numRuns: 400 },
    );
  });

  it('mutated gzip files', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) =>
        expectRingOrRingError(() => Ring.fromBytes(mutate(goodGz, ms, goodGz.length))),
      ),
      { numRuns: 300 },
    );
  });

  it('Ring.load on mutated files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fragmend-ring-fuzz-'));
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
          const path = join(dir, 'object.ring.gz');
          await writeFile(path, gzipSync(mutate(goodRaw, ms, 10 + goodRaw.readUInt32BE(6))));
          const t0 = performance.now();
          await Ring.load(path).catch((err: unknown) => {
            if (!(err instanceof RingError)) throw err;
          });
          expect(performance.now() - t0).toBeLessThan(2000);
        }),
        { numRuns: 60 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('decodeRing never returns data that fails its own checks', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        let data: RingData | undefined;
        try {
          data = decodeRing(mutate(goodRaw, ms, 10 + goodRaw.readUInt32BE(6)));
        } catch (err) {
          if (!(err instanceof RingError)) throw err;
          return;
        }
        expect(() => Ring.fromData(data!)).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });
});
