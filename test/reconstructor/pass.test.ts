// Pass mechanics on an all-fragmend loopback cluster (fragmend object servers, in process):
// housekeeping (old tmp files, stray entries, empty partitions), tombstone-only handoff
// partitions, a ring change cutting the policy's pass short, and lockup detection.
import { mkdirSync, readdirSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopbackCluster } from '../../src/demo/cluster.js';
import { parseReconstructorConfig } from '../../src/reconstructor/config.js';
import { ObjectReconstructor } from '../../src/reconstructor/reconstructor.js';
import { readConf } from '../../src/swift/conf.js';
import { Timestamp } from '../../src/swift/timestamp.js';

let cluster: LoopbackCluster;
beforeAll(async () => {
  cluster = await LoopbackCluster.create({ nodes: 8, devicesPerNode: 1, partPower: 4, policies: [{ index: 1, name: 'ec42', ecType: 'liberasurecode_rs_vand', k: 4, m: 2 }] });
  await cluster.startAll();
  for (let i = 0; i < 10; i++) await cluster.putObject(1, 'AUTH_p', 'c', `o${i}`, new Uint8Array(3000 + i).fill(i));
}, 60_000);
afterAll(async () => cluster?.destroy());

function capture() {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { log, lines, text: () => lines.join('') };
}

async function reconstructor(node: number, extra: Record<string, string> = {}) {
  const conf = parseReconstructorConfig({ ...(await readConf(cluster.nodes[node]!.conf, 'object-reconstructor')), ...extra }, cluster.nodes[node]!.conf);
  const cap = capture();
  const r = new ObjectReconstructor(conf, cap.log);
  await r.init();
  return { r, cap };
}

describe('a pass', () => {
  it('unlinks old tmp files, deletes stray entries and removes empty partitions', async () => {
    const n = cluster.nodes[0]!;
    const dev = join(n.devicesRoot, n.devices[0]!);
    mkdirSync(join(dev, 'tmp-1'), { recursive: true });
    writeFileSync(join(dev, 'tmp-1', 'old'), 'x');
    writeFileSync(join(dev, 'tmp-1', 'new'), 'x');
    const longAgo = Date.now() / 1000 - 8 * 24 * 3600;
    utimesSync(join(dev, 'tmp-1', 'old'), longAgo, longAgo);
    writeFileSync(join(dev, 'objects-1', 'not-a-partition'), 'junk');
    // An empty partition this node is not primary for.
    const ring = cluster.rings.get(1)!;
    const foreign = [...Array(ring.partCount).keys()].find((p) => !ring.getPartNodes(p).some((x) => x.device === n.devices[0]))!;
    mkdirSync(join(dev, 'objects-1', String(foreign)), { recursive: true });
    const { r, cap } = await reconstructor(0);
    await r.runOnce();
    await r.close();
    expect(readdirSync(join(dev, 'tmp-1'))).toEqual(['new']);
    expect(existsSync(join(dev, 'objects-1', 'not-a-partition'))).toBe(false);
    expect(existsSync(join(dev, 'objects-1', String(foreign)))).toBe(false);
    expect(cap.text()).toMatch(/Unexpected entity in data dir/);
  });

  it('reverts a tombstone-only handoff partition to a sample of n - k + 1 primaries', async () => {
    const ring = cluster.rings.get(1)!;
    const { partition, nodes } = ring.getNodes('AUTH_p', 'c', 'o3');
    const handoff = [...ring.getMoreNodes(partition)][0]!;
    const hn = cluster.nodeOfDevice(handoff.device);
    // A tombstone newer than the object, sitting only on a handoff.
    const ts = new Timestamp(Date.now() / 1000 + 1);
    const mgr = (await reconstructor(hn.index)).r;
    await mgr.close();
    const { ECDiskFileManager } = await import('../../src/swift/diskfile.js');
    const dfm = new ECDiskFileManager({ devices: hn.devicesRoot, mountCheck: false, hashPrefix: cluster.hashPrefix, hashSuffix: cluster.hashSuffix });
    const df = dfm.diskFile(join(hn.devicesRoot, handoff.device), partition, 'AUTH_p', 'c', 'o3', cluster.policy(1));
    await df.delete(ts);
    const { r } = await reconstructor(hn.index, { concurrency: '1' });
    await r.runOnce({ partitions: [partition] });
    await r.close();
    const withTombstone = nodes.filter((x) => {
      const dir = join(cluster.nodeOfDevice(x.device).devicesRoot, x.device, 'objects-1', String(partition), df.hash.slice(-3), df.hash);
      return existsSync(dir) && readdirSync(dir).includes(`${ts.internal}.ts`);
    });
    expect(withTombstone.length).toBe(6 - 4 + 1);
    // The handoff's tombstone is purged (Swift leaves the empty directory to the next cleanup).
    expect(existsSync(df.datadir) ? readdirSync(df.datadir) : []).toEqual([]);
  });

  it("a ring change stops the rest of that policy's pass", async () => {
    const { r, cap } = await reconstructor(1, { ring_check_interval: '0' });
    (r as unknown as { states: Map<number, { ring: { hasChanged: () => Promise<boolean> } }> }).states.get(1)!.ring.hasChanged = async () => true;
    const stats = await r.runOnce();
    await r.close();
    expect(cap.text()).toMatch(/Ring change detected for policy 1 \(ec42\)\. Aborting current reconstruction pass for this policy\./);
    expect(stats.reconstructionPartCount).toBe(0);
    expect(stats.partCount).toBeGreaterThan(0);
  });

  it('a pass stuck on a peer that never answers is cut short by lockup detection', async () => {
    const victim = 5;
    await cluster.stop(victim);
    const hung = createServer(() => undefined).listen(cluster.nodes[victim]!.port, '127.0.0.1');
    try {
      const { r, cap } = await reconstructor(4, { lockup_timeout: '1', http_timeout: '300', node_timeout: '300', concurrency: '1' });
      const t0 = Date.now();
      await r.runOnce();
      await r.close();
      expect(cap.text()).toMatch(/Lockup detected\.\. killing live coros\./);
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      hung.close();
      await cluster.start(victim);
    }
  });
});
