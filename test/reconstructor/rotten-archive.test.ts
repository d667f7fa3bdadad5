// A reconstructor that meets a rotten archive on its own disk, on an all-fragmend loopback
// cluster. Swift's reads its own archives through its object server, whose EC reader checks each
// fragment header and the archive's MD5 and quarantines a bad one; fragmend reads them from disk
// and must check them as well. It does so before handing on the archive's end: a rebuild that
// uses a rotten local archive, and a revert that pushes one, fail for that object, the archive
// goes to quarantine, and no partner is left holding anything but the right bytes. A peer's
// rotten archive is caught by its (fragmend) object server, which cuts the GET before its end.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopbackCluster } from '../../src/demo/cluster.js';
import { parseReconstructorConfig } from '../../src/reconstructor/config.js';
import { ObjectReconstructor } from '../../src/reconstructor/reconstructor.js';
import { readConf } from '../../src/swift/conf.js';
import { readMetadata, writeMetadata } from '../../src/swift/metadata.js';

const FRAG = 262_224; // one fragment of a 1 MiB segment of a 4+2 policy, header included
let cluster: LoopbackCluster;

beforeAll(async () => {
  cluster = await LoopbackCluster.create({ nodes: 8, devicesPerNode: 1, partPower: 4, policies: [{ index: 1, name: 'ec42', ecType: 'liberasurecode_rs_vand', k: 4, m: 2 }] });
  await cluster.startAll();
}, 60_000);
afterAll(async () => cluster?.destroy());

async function pass(node: number, partition: number) {
  const conf = parseReconstructorConfig({ ...(await readConf(cluster.nodes[node]!.conf, 'object-reconstructor')), concurrency: '1' }, cluster.nodes[node]!.conf);
  const lines: string[] = [];
  const r = new ObjectReconstructor(conf, pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }));
  await r.init();
  await r.runOnce({ partitions: [partition] });
  await r.close();
  return lines.join('');
}

const objectBytes = (size: number, seed: number) => new Uint8Array(size).map((_, i) => (i * 31 + seed) & 0xff);

/** Where an object's archives are, by fragment index, and the primaries' nodes. */
async function place(name: string, size: number, seed: number) {
  const placed = await cluster.putObject(1, 'AUTH_r', 'c', name, objectBytes(size, seed));
  const { partition, nodes } = cluster.rings.get(1)!.getNodes('AUTH_r', 'c', name);
  const good = placed.map((p) => readFileSync(p.file));
  return { partition, nodes, placed, good };
}

function quarantinedFiles(device: string): string[] {
  const root = join(cluster.nodeOfDevice(device).devicesRoot, device, 'quarantined', 'objects-1');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((h) => readdirSync(join(root, h)).map((f) => join(h, f)));
}

/** The .data files in an archive's hash directory. */
function dataFiles(file: string): string[] {
  const dir = dirname(file);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.data')) : [];
}

/** Flips a byte of a file in place (same inode: its metadata, and so its ETag, stay). */
function rot(file: string, at: number) {
  const b = readFileSync(file);
  if (at >= b.length) throw new RangeError(`${file} has no byte ${at}`);
  b[at]! ^= 0x24;
  writeFileSync(file, b);
}

describe('a rotten archive on the local disk', () => {
  for (const [what, at] of [
    ['payload rot (its MD5 no longer matches)', FRAG + 1234],
    ['a bad fragment header', FRAG + 60],
  ] as const) {
    it(`${what}: a rebuild from it fails for that object, it is quarantined, and the partner gets no wrong bytes`, async () => {
      const name = `rot-${at}`;
      const { partition, nodes, placed, good } = await place(name, 2 * 1048576 + 300_000, at & 0xff);
      // node A (index 0) syncs to its right partner B (index 1), which lost its archive
      const a = nodes[0]!;
      const b = nodes[1]!;
      rmSync(placed[1]!.file);
      rot(placed[0]!.file, at);
      const log = await pass(cluster.nodeOfDevice(a.device).index, partition);
      expect(log).toMatch(/Quarantined object .*: (ETag [0-9a-f]+ and file's md5 [0-9a-f]+ do not match|Invalid EC metadata at offset 0x40050)/);
      expect(quarantinedFiles(a.device).some((f) => f.endsWith(placed[0]!.file.split('/').pop()!))).toBe(true);
      expect(existsSync(placed[0]!.file)).toBe(false);
      // B holds nothing, or (rebuilt again from the other primaries) the right bytes
      for (const f of dataFiles(placed[1]!.file)) expect(readFileSync(join(dirname(placed[1]!.file), f)).equals(good[1]!)).toBe(true);
      // and a pass of B's other partner leaves it with the right bytes
      await pass(cluster.nodeOfDevice(nodes[2]!.device).index, partition);
      expect(dataFiles(placed[1]!.file).length).toBe(1);
      expect(readFileSync(placed[1]!.file).equals(good[1]!)).toBe(true);
    });
  }

  it("a peer's rotten archive: its object server cuts the GET before the end, so the rebuild fails and the partner gets no wrong bytes", async () => {
    const name = 'rot-peer';
    const { partition, nodes, placed, good } = await place(name, 2 * 1048576 + 1000, 5);
    // A (index 0) rebuilds B's (index 1) from its own and exactly three peers' (2, 3, 4): 5 lost its archive too
    rmSync(placed[1]!.file);
    rmSync(placed[5]!.file);
    rot(placed[2]!.file, FRAG + 777);
    const log = await pass(cluster.nodeOfDevice(nodes[0]!.device).index, partition);
    for (const f of dataFiles(placed[1]!.file)) expect(readFileSync(join(dirname(placed[1]!.file), f)).equals(good[1]!), 'wrong bytes on the partner').toBe(true);
    expect(dataFiles(placed[1]!.file)).toEqual([]);
    expect(log).toMatch(/rot-peer/);
    // the peer's server quarantined it
    expect(existsSync(placed[2]!.file)).toBe(false);
    expect(quarantinedFiles(nodes[2]!.device).some((f) => f.endsWith(placed[2]!.file.split('/').pop()!))).toBe(true);
  });

  it('a rotten handoff archive is not reverted: it is quarantined, and the primary gets no wrong bytes', async () => {
    const name = 'rot-handoff';
    const { partition, nodes, placed, good } = await place(name, 1048576 + 5000, 9);
    const ring = cluster.rings.get(1)!;
    const handoff = [...ring.getMoreNodes(partition)][0]!;
    const hn = cluster.nodeOfDevice(handoff.device);
    // index 3's archive sits on a handoff, rotten; the primary lost its copy
    const primary = placed[3]!.file;
    const onHandoff = primary.replace(join(cluster.nodeOfDevice(nodes[3]!.device).devicesRoot, nodes[3]!.device), join(hn.devicesRoot, handoff.device));
    mkdirSync(dirname(onHandoff), { recursive: true });
    copyFileSync(primary, onHandoff);
    await writeMetadata(onHandoff, await readMetadata(primary));
    rmSync(primary);
    rot(onHandoff, 500);
    const log = await pass(hn.index, partition);
    expect(log).toMatch(/Quarantined object .*: ETag [0-9a-f]+ and file's md5 [0-9a-f]+ do not match/);
    expect(existsSync(onHandoff)).toBe(false);
    expect(quarantinedFiles(handoff.device).some((f) => f.endsWith(primary.split('/').pop()!))).toBe(true);
    for (const f of dataFiles(primary)) expect(readFileSync(join(dirname(primary), f)).equals(good[3]!)).toBe(true);
  });
});
