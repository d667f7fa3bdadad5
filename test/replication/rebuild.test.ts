// Rebuilding a lost fragment archive with real Swift 2.30 on both sides: fragmend's fragment
// fetcher GETs the other fragments from real Swift object servers, fragmend's SSYNC sender
// pushes the rebuilt archive (and tombstones, .meta updates) into a real Swift object server,
// and the files that server writes are the ones it lost, byte for byte; a rebuild begun while
// that server waits for its replication lock is the one it gets.
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { rebuildFragmentArchive, RebuildFailed } from '../../src/replication/fragment-fetcher.js';
import { ssyncSend, type ArchiveSource } from '../../src/replication/ssync-sender.js';
import { ECDiskFileManager, type ECDiskFile } from '../../src/swift/diskfile.js';
import { acquireLock } from '../../src/swift/locks.js';
import { loadSwiftConf, type StoragePolicy } from '../../src/swift/policies.js';
import { realSwiftEnabled, SwiftSandbox, swiftHttp } from '../helpers/swift-cluster.js';
import { bytes, type NodeInfo, type Placement } from '../helpers/placement.js';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');


describe.skipIf(!realSwiftEnabled())('rebuild and SSYNC against real Swift object servers', () => {
  let sbx: SwiftSandbox;
  let proxy: number;
  let policy: StoragePolicy;
  let ec: ECDriver;
  const account = 'AUTH_test';
  const container = 'c';

  beforeAll(async () => {
    sbx = await SwiftSandbox.create({ objectNodes: 8 });
    await sbx.startAll();
    proxy = Number(new URL(await sbx.startProxy()).port);
    expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${container}`, { headers: { 'X-Storage-Policy': 'ec42' } })).status).toBeLessThan(300);
    policy = (await loadSwiftConf(sbx.paths.swiftDir)).policies.byIndex(1)!;
    ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
  }, 90_000);
  afterAll(async () => {
    await sbx?.cleanup();
  });

  const put = async (name: string, body: Buffer) => expect((await swiftHttp(proxy, 'PUT', `/v1/${account}/${container}/${name}`, { body })).status).toBe(201);
  const placementOf = (object: string) => sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account, container, object });
  const where = (p: Placement, n: NodeInfo, object: string) => ({
    devices: sbx.nodeOfDevice(n.device).devicesRoot,
    device: n.device,
    partition: p.partition,
    account,
    container,
    object,
    policy: 1,
  });
  const files = async (p: Placement, n: NodeInfo, object: string) => (await sbx.diskfileOk<{ files: string[] }>({ op: 'hash_dir', ...where(p, n, object) })).files;
  const managerFor = (n: NodeInfo) =>
    new ECDiskFileManager({ devices: sbx.nodeOfDevice(n.device).devicesRoot, mountCheck: false, hashPrefix: sbx.hashPrefix, hashSuffix: sbx.hashSuffix });
  const target = (n: NodeInfo) => ({ replication_ip: n.ip, replication_port: n.port, device: n.device, backendIndex: n.index! });
  const opts = { connTimeout: 2, nodeTimeout: 10, httpTimeout: 30 };
  type Read = { metadata: Record<string, string>; body: string };
  /** Writes an object through the proxy and loses primary `li`'s archive of it; what that node held. */
  const loseArchive = async (object: string, body: Buffer, li: number, si: number) => {
    await put(object, body);
    const p = await placementOf(object);
    const lost = p.primaries[li]!;
    const source = p.primaries[si]!;
    const before = await sbx.diskfileOk<Read>({ op: 'read', ...where(p, lost, object), frag_index: lost.index });
    const namesBefore = await files(p, lost, object);
    const lostDev = join(sbx.nodeOfDevice(lost.device).devicesRoot, lost.device);
    rmSync(join(lostDev, 'objects-1', String(p.partition), p.hash.slice(-3), p.hash), { recursive: true });
    expect(await files(p, lost, object)).toEqual([]);
    return { p, lost, source, before, namesBefore, lostDev };
  };
  /** The lost node holds again what it held: file names, data and metadata. */
  const expectRestored = async (l: Awaited<ReturnType<typeof loseArchive>>, object: string) => {
    expect(await files(l.p, l.lost, object)).toEqual(l.namesBefore);
    const after = await sbx.diskfileOk<Read>({ op: 'read', ...where(l.p, l.lost, object), frag_index: l.lost.index });
    expect(md5(Buffer.from(after.body, 'base64'))).toBe(md5(Buffer.from(l.before.body, 'base64')));
    expect(after.metadata).toEqual(l.before.metadata);
  };

  it('a lost archive is rebuilt from real peers and pushed into a real Swift node byte-identical', async () => {
    const object = 'big';
    const l = await loseArchive(object, bytes(2 * 1048576 + 100, 5), 3, 4);
    const { p, lost, source } = l;

    const mgr = managerFor(source);
    const devPath = join(sbx.nodeOfDevice(source.device).devicesRoot, source.device);
    let rebuilt = 0;
    const result = await ssyncSend(
      mgr,
      { devPath, partition: p.partition, policy, fragIndex: source.index!, suffixes: [p.hash.slice(-3)] },
      target(lost),
      {
        ...opts,
        rebuild: async (df: ECDiskFile) => {
          rebuilt++;
          const others = p.primaries.filter((n) => n.id !== lost.id).map((n) => ({ ...n, replication_ip: n.ip, replication_port: n.port }));
          return rebuildFragmentArchive({ policy, ec, partition: p.partition, name: df.objectName!, localMetadata: df.datafileMetadata, targetIndex: lost.index!, nodes: others, connTimeout: 2, nodeTimeout: 10 });
        },
      },
    );
    expect(result.error).toBeUndefined();
    expect(result.success).toBe(true);
    expect(rebuilt).toBe(1);
    await expectRestored(l, object);
  });

  it('tombstones and .meta updates converge, and an in-sync partner gets nothing', async () => {
    const object = 'small';
    await put(object, bytes(1000, 9));
    await put('gone', bytes(10, 1));
    expect((await swiftHttp(proxy, 'POST', `/v1/${account}/${container}/${object}`, { headers: { 'X-Object-Meta-Color': 'red' } })).status).toBe(202);
    expect((await swiftHttp(proxy, 'DELETE', `/v1/${account}/${container}/gone`)).status).toBe(204);
    const p = await placementOf(object);
    const g = await placementOf('gone');
    const lost = p.primaries[1]!;
    const lostG = g.primaries.find((n) => n.id === lost.id) ?? g.primaries[1]!;
    const source = p.primaries[0]!;
    const sourceG = g.primaries.find((n) => n.id === source.id) ?? g.primaries[0]!;
    // Lose the .meta of 'small' and the tombstone of 'gone' on the receiving node.
    const smallFiles = await files(p, lost, object);
    const meta = smallFiles.find((f) => f.endsWith('.meta'))!;
    expect(meta).toBeDefined();
    const dirOf = (pl: Placement, n: NodeInfo) => join(sbx.nodeOfDevice(n.device).devicesRoot, n.device, 'objects-1', String(pl.partition), pl.hash.slice(-3), pl.hash);
    rmSync(join(dirOf(p, lost), meta));
    const goneFiles = await files(g, lostG, 'gone');
    rmSync(dirOf(g, lostG), { recursive: true });

    for (const [pl, src, dst] of [[p, source, lost], [g, sourceG, lostG]] as const) {
      const r = await ssyncSend(
        managerFor(src),
        { devPath: join(sbx.nodeOfDevice(src.device).devicesRoot, src.device), partition: pl.partition, policy, fragIndex: src.index!, suffixes: [pl.hash.slice(-3)] },
        target(dst),
        opts,
      );
      expect(r.success, r.error).toBe(true);
    }
    expect(await files(p, lost, object)).toEqual(smallFiles);
    expect(await files(g, lostG, 'gone')).toEqual(goneFiles);
    // Nothing left to send the second time.
    const again = await ssyncSend(
      managerFor(source),
      { devPath: join(sbx.nodeOfDevice(source.device).devicesRoot, source.device), partition: p.partition, policy, fragIndex: source.index!, suffixes: [p.hash.slice(-3)] },
      target(lost),
      opts,
    );
    expect(again).toMatchObject({ success: true, sent: 0 });
  });

  it("a rebuild begun while Swift's receiver waits for its lock (longer than node_timeout) is the one sent, byte-identical", async () => {
    const object = 'early';
    const l = await loseArchive(object, bytes(3 * 1048576 + 7, 13), 2, 5);
    const { p, lost, source, lostDev } = l;
    // another session holds the partition: Swift's receiver waits for it
    const release = await acquireLock(join(lostDev, 'objects-1', String(p.partition)), { name: 'replication', timeout: 5 });
    const calls: string[] = [];
    const others = p.primaries.filter((n) => n.id !== lost.id && n.id !== source.id).map((n) => ({ ...n, replication_ip: n.ip, replication_port: n.port }));
    const sending = ssyncSend(
      managerFor(source),
      { devPath: join(sbx.nodeOfDevice(source.device).devicesRoot, source.device), partition: p.partition, policy, fragIndex: source.index!, suffixes: [p.hash.slice(-3)] },
      target(lost),
      {
        ...opts,
        nodeTimeout: 1,
        speculate: true,
        rebuild: async (df, o) => {
          calls.push(o?.speculative ? 'early' : 'plain');
          return rebuildFragmentArchive({
            policy,
            ec,
            partition: p.partition,
            name: df.objectName!,
            localMetadata: df.datafileMetadata,
            targetIndex: lost.index!,
            nodes: others,
            local: { path: df.dataFile!, durable: true },
            connTimeout: 2,
            nodeTimeout: 1,
          });
        },
      },
    );
    let over = false;
    void sending.then(() => (over = true));
    await new Promise((r) => setTimeout(r, 2500));
    expect(over, 'the session waits for the lock').toBe(false);
    expect(calls).toEqual(['early']);
    release();
    const result = await sending;
    expect(result.error).toBeUndefined();
    expect(result.success).toBe(true);
    expect(calls).toEqual(['early']);
    await expectRestored(l, object);
  });

  it('a rebuilt body shorter than its Content-Length fails the session and nothing is committed', async () => {
    const object = 'short';
    await put(object, bytes(300_000, 3));
    const p = await placementOf(object);
    const lost = p.primaries[2]!;
    const source = p.primaries[3]!;
    rmSync(join(sbx.nodeOfDevice(lost.device).devicesRoot, lost.device, 'objects-1', String(p.partition), p.hash.slice(-3), p.hash), { recursive: true });
    const r = await ssyncSend(
      managerFor(source),
      { devPath: join(sbx.nodeOfDevice(source.device).devicesRoot, source.device), partition: p.partition, policy, fragIndex: source.index!, suffixes: [p.hash.slice(-3)] },
      target(lost),
      {
        ...opts,
        rebuild: async (df: ECDiskFile): Promise<ArchiveSource> => ({
          metadata: { ...df.datafileMetadata, 'X-Object-Sysmeta-Ec-Frag-Index': String(lost.index) },
          contentLength: df.contentLength,
          body: (async function* () {
            yield new Uint8Array(100);
          })(),
        }),
      },
    );
    expect(r.success).toBe(false);
    expect(r.error).toMatch(/does not match content-length/);
    expect(await files(p, lost, object)).toEqual([]);
  });

  it('too few fragments reachable: the rebuild refuses with the reason Swift logs', async () => {
    const object = 'unreachable';
    await put(object, bytes(5000, 11));
    const p = await placementOf(object);
    const lost = p.primaries[0]!;
    const stopped = p.primaries.slice(1, 4);
    for (const n of stopped) await sbx.stopObjectServer(sbx.nodeOfDevice(n.device).index);
    try {
      const source = p.primaries[5]!;
      const mgr = managerFor(source);
      const df = await mgr.diskFileFromHash(join(sbx.nodeOfDevice(source.device).devicesRoot, source.device), p.partition, p.hash, policy, { fragIndex: source.index }).open();
      const others = p.primaries.filter((n) => n.id !== lost.id).map((n) => ({ ...n, replication_ip: n.ip, replication_port: n.port }));
      const err = await rebuildFragmentArchive({ policy, ec, partition: p.partition, name: df.objectName!, localMetadata: df.datafileMetadata, targetIndex: lost.index!, nodes: others, connTimeout: 2, nodeTimeout: 5 }).catch((e) => e);
      expect(err).toBeInstanceOf(RebuildFailed);
      expect(err.message).toMatch(/Unable to get enough responses \(2\/4 from 2 ok responses\)/);
      expect(err.message).toMatch(/3 x unknown/);
    } finally {
      for (const n of stopped) await sbx.startObjectServer(sbx.nodeOfDevice(n.device).index);
    }
  });
});
