// A pass between fragmend nodes asks each partner device for the partitions ahead in one
// REPLICATE (see src/reconstructor/ahead.ts), on an all-fragmend loopback cluster (fragmend
// object servers, in process): a pass with nothing to do sends about one REPLICATE per partner
// device instead of three per partition, and what a partner lacks is still found and pushed.
// Against real Swift servers, which answer for one partition only, every job asks as before:
// test/reconstructor/daemon.test.ts.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LoopbackCluster } from '../../src/demo/cluster.js';
import { parseReconstructorConfig } from '../../src/reconstructor/config.js';
import { partners } from '../../src/reconstructor/jobs.js';
import { ObjectReconstructor } from '../../src/reconstructor/reconstructor.js';
import { PeerPools } from '../../src/replication/peers.js';
import { readConf } from '../../src/swift/conf.js';

let cluster: LoopbackCluster;
const placed = new Map<string, Array<{ device: string; file: string; md5: string; size: number }>>();
beforeAll(async () => {
  cluster = await LoopbackCluster.create({ nodes: 8, devicesPerNode: 1, partPower: 6, policies: [{ index: 1, name: 'ec42', ecType: 'liberasurecode_rs_vand', k: 4, m: 2 }] });
  await cluster.startAll();
  for (let i = 0; i < 60; i++) placed.set(`o${i}`, await cluster.putObject(1, 'AUTH_a', 'c', `o${i}`, new Uint8Array(2000 + i).fill(i)));
  // every node once, so that every hashes.pkl is there and the cluster agrees with itself
  for (const n of cluster.nodes) await pass(n.index);
}, 120_000);
afterAll(async () => cluster?.destroy());
afterEach(() => vi.restoreAllMocks());

async function pass(node: number) {
  const conf = parseReconstructorConfig(await readConf(cluster.nodes[node]!.conf, 'object-reconstructor'), cluster.nodes[node]!.conf);
  const r = new ObjectReconstructor(conf, pino({ level: 'silent' }));
  await r.init();
  try {
    return await r.runOnce();
  } finally {
    await r.close();
  }
}

type Exchange = PeerPools['exchange'];

/**
 * REPLICATEs (without suffixes) the reconstructor sends, by device and partition, with the
 * partitions each asked for more; `alter` may change what a peer answered.
 */
function countReplicates(alter?: (req: Parameters<Exchange>[2], answer: Awaited<ReturnType<Exchange>>) => Awaited<ReturnType<Exchange>>) {
  const sent: Array<{ device: string; partition: number; more: string | undefined }> = [];
  const real = PeerPools.prototype.exchange;
  vi.spyOn(PeerPools.prototype, 'exchange').mockImplementation(async function (this: PeerPools, ip, port, req) {
    const m = /^\/([^/]+)\/(\d+)$/.exec(req.path);
    if (req.method === 'REPLICATE' && m) sent.push({ device: m[1]!, partition: Number(m[2]), more: req.headers?.['X-Fragmend-Replicate-Batch'] });
    const answer = await real.call(this, ip, port, req);
    return alter ? alter(req, answer) : answer;
  });
  return sent;
}

/** the partitions node `i` holds as a primary, with their partners' devices */
function primaries(i: number) {
  const ring = cluster.rings.get(1)!;
  const dev = cluster.nodes[i]!.devices[0]!;
  const out = new Map<number, string[]>();
  for (const name of readdirSync(join(cluster.nodes[i]!.devicesRoot, dev, 'objects-1'))) {
    if (!/^\d+$/.test(name)) continue;
    const nodes = ring.getPartNodes(Number(name));
    const me = nodes.find((n) => n.device === dev);
    if (me) out.set(Number(name), partners(me.index, nodes).map((n) => n.device));
  }
  return out;
}

describe('REPLICATE for the partitions ahead', () => {
  it('a pass with nothing to do sends one REPLICATE per partner device, not three per partition', async () => {
    const sent = countReplicates();
    const jobs = primaries(2);
    expect(jobs.size).toBeGreaterThan(10);
    const stats = await pass(2);
    const devices = new Set([...jobs.values()].flat());
    expect(stats.objectsRebuilt).toBe(0);
    expect(stats.failures.replicate).toBe(0);
    // every job's three partners were asked, or answered ahead
    expect(sent.length + stats.replicatesAhead).toBe(3 * jobs.size);
    expect(sent.length).toBeLessThanOrEqual(devices.size);
    expect(sent.every((s) => s.more !== undefined)).toBe(true);
    // each asked for the partitions it shares with that device, ahead of the one in its path
    const asked = new Map<string, Set<number>>();
    for (const s of sent) for (const p of [s.partition, ...s.more!.split(',').map(Number)]) (asked.get(s.device) ?? asked.set(s.device, new Set()).get(s.device)!).add(p);
    for (const [p, devs] of jobs) for (const d of devs) expect(asked.get(d)?.has(p)).toBe(true);
  });

  it('what a partner lacks is still rebuilt: an answer given ahead that disagrees is asked for again', async () => {
    // two archives gone from two different partners of node 3
    const jobs = primaries(3);
    const ring = cluster.rings.get(1)!;
    const dev3 = cluster.nodes[3]!.devices[0]!;
    const lost: Array<{ file: string; md5: string; device: string; partition: number }> = [];
    for (const [name, archives] of placed) {
      if (lost.length === 2) break;
      const { partition } = ring.getNodes('AUTH_a', 'c', name);
      const partner = jobs.get(partition)?.[0];
      if (!partner || lost.some((l) => l.file.includes(`/${partner}/`))) continue;
      const a = archives.find((x) => x.device === partner)!;
      expect(archives.some((x) => x.device === dev3)).toBe(true);
      // the archive and its partition's hashes.pkl, as a replaced disk loses them
      rmSync(a.file);
      rmSync(join(a.file.slice(0, a.file.indexOf(`/objects-1/${partition}/`)), 'objects-1', String(partition), 'hashes.pkl'), { force: true });
      lost.push({ ...a, partition });
    }
    expect(lost.length).toBe(2);
    const sent = countReplicates();
    const stats = await pass(3);
    for (const l of lost) expect(existsSync(l.file)).toBe(true);
    // each partner that lacked one was asked about that partition by a REPLICATE of its own
    for (const l of lost) expect(sent.some((s) => s.device === l.device && s.partition === l.partition)).toBe(true);
    expect(stats.objectsRebuilt).toBe(2);
    expect(stats.replicatesAhead).toBeGreaterThan(0);
    expect(sent.length + stats.replicatesAhead).toBe(3 * jobs.size);
    // the jobs that asked afresh did not have their partner read again the partitions it had
    // answered ahead: no device was asked about a partition ahead twice in the pass
    const ahead = new Map<string, number[]>();
    for (const s of sent) if (s.more) (ahead.get(s.device) ?? ahead.set(s.device, []).get(s.device)!).push(...s.more.split(',').map(Number));
    for (const [device, parts] of ahead) expect(new Set(parts).size, device).toBe(parts.length);
  });

  it('a partner whose batched answers cannot be read is asked one partition at a time, and no job fails', async () => {
    const jobs = primaries(4);
    const bad = cluster.nodes[7]!.devices[0]!;
    const withBad = [...jobs.values()].filter((d) => d.includes(bad)).length;
    expect(withBad).toBeGreaterThan(1);
    // the device's server answers every batch with the header but a body that is not its framing
    const sent = countReplicates((req, answer) =>
      req.method === 'REPLICATE' && req.path.startsWith(`/${bad}/`) && req.headers?.['X-Fragmend-Replicate-Batch'] !== undefined ? { ...answer, body: Buffer.from('not a batch\n') } : answer,
    );
    const warned: string[] = [];
    const conf = parseReconstructorConfig(await readConf(cluster.nodes[4]!.conf, 'object-reconstructor'), cluster.nodes[4]!.conf);
    const log = pino({ level: 'warn' }, { write: (line: string) => void warned.push(JSON.parse(line).msg) });
    const r = new ObjectReconstructor(conf, log);
    await r.init();
    let stats;
    try {
      stats = await r.runOnce();
    } finally {
      await r.close();
    }
    expect(stats.failures.replicate).toBe(0);
    expect(stats.objectsRebuilt).toBe(0);
    const toBad = sent.filter((s) => s.device === bad);
    // one batch was tried, then each job with that partner asked for its own partition plainly
    expect(toBad.filter((s) => s.more !== undefined).length).toBe(1);
    expect(toBad.filter((s) => s.more === undefined).length).toBe(withBad);
    expect(warned.filter((m) => /bad batched REPLICATE answer.*one partition at a time/.test(m)).length).toBe(1);
    // the other partners still answered ahead
    expect(stats.replicatesAhead).toBeGreaterThan(0);
    expect(sent.length + stats.replicatesAhead).toBe(3 * jobs.size + 1);
  });

  it("in a cluster's first pass (no hashes.pkl anywhere) the partners still answer ahead, hashing what they must", async () => {
    const jobs = primaries(5);
    for (const n of cluster.nodes) {
      for (const dev of n.devices) {
        const root = join(n.devicesRoot, dev, 'objects-1');
        for (const part of existsSync(root) ? readdirSync(root) : []) rmSync(join(root, part, 'hashes.pkl'), { force: true });
      }
    }
    const sent = countReplicates();
    const stats = await pass(5);
    expect(stats.failures.replicate).toBe(0);
    expect(stats.objectsRebuilt).toBe(0);
    expect(sent.length + stats.replicatesAhead).toBe(3 * jobs.size);
    // one batched REPLICATE per partner device, more only where a batch ran out of time
    const devices = new Set([...jobs.values()].flat());
    expect(sent.length).toBeLessThanOrEqual(2 * devices.size);
    expect(stats.replicatesAhead).toBeGreaterThan(2 * jobs.size);
  });

  it('a partner that is down costs its own jobs only, and the others still use answers given ahead', async () => {
    const down = 6;
    await cluster.stop(down);
    try {
      const stats = await pass(0);
      const withDown = [...primaries(0).values()].filter((d) => d.includes(cluster.nodes[down]!.devices[0]!)).length;
      expect(withDown).toBeGreaterThan(0);
      expect(stats.failures.replicate).toBe(withDown);
      expect(stats.replicatesAhead).toBeGreaterThan(0);
      expect(stats.objectsRebuilt).toBe(0);
    } finally {
      await cluster.start(down);
    }
  });
});
