// fragmend and a real Swift 2.30 object server on the same device: Swift serves (with its
// backend headers) a fragment archive fragmend's diskfile layer wrote, and fragmend reads the
// archives the real proxy wrote with the same metadata Swift reads.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { ECDiskFileManager } from '../../src/swift/diskfile.js';
import { loadSwiftConf, type StoragePolicy } from '../../src/swift/policies.js';
import { Timestamp } from '../../src/swift/timestamp.js';
import { realSwiftEnabled, SwiftSandbox, swiftHttp } from '../helpers/swift-cluster.js';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
interface Placement {
  partition: number;
  hash: string;
  primaries: Array<{ id: number; device: string; ip: string; port: number; index: number }>;
}

describe.skipIf(!realSwiftEnabled())('one device, two implementations', () => {
  let sbx: SwiftSandbox;
  let policy: StoragePolicy;
  beforeAll(async () => {
    sbx = await SwiftSandbox.create({ objectNodes: 6 });
    await sbx.startAll();
    policy = (await loadSwiftConf(sbx.paths.swiftDir)).policies.byIndex(1)!;
  }, 60_000);
  afterAll(async () => sbx?.cleanup());

  const managerFor = (device: string) =>
    new ECDiskFileManager({ devices: sbx.nodeOfDevice(device).devicesRoot, mountCheck: false, hashPrefix: sbx.hashPrefix, hashSuffix: sbx.hashSuffix });

  it('a real Swift object server serves an archive fragmend wrote, with its backend headers', async () => {
    const object = 'written-by-fragmend';
    const p = await sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account: 'AUTH_x', container: 'c', object });
    const node = p.primaries[1]!;
    const ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
    const data = new Uint8Array(1048576 + 500).map((_, i) => (i * 7) & 0xff);
    // Two segments, as a proxy writes them.
    const segs = [data.subarray(0, 1048576), data.subarray(1048576)].map((s) => ec.encode(s)[node.index]!);
    const archive = Buffer.concat(segs);
    const ts = Timestamp.now();
    const mgr = managerFor(node.device);
    const df = mgr.diskFile(join(sbx.nodeOfDevice(node.device).devicesRoot, node.device), p.partition, 'AUTH_x', 'c', object, policy, { fragIndex: node.index });
    const w = df.writer(archive.length);
    await w.open();
    await w.write(archive);
    await w.put({
      'X-Timestamp': ts.internal,
      'Content-Type': 'text/plain',
      'Content-Length': String(archive.length),
      ETag: md5(archive),
      'X-Object-Sysmeta-Ec-Frag-Index': String(node.index),
      'X-Object-Sysmeta-Ec-Etag': md5(data),
      'X-Object-Sysmeta-Ec-Content-Length': String(data.length),
      'X-Object-Sysmeta-Ec-Scheme': 'liberasurecode_rs_vand 4+2',
      'X-Object-Sysmeta-Ec-Segment-Size': '1048576',
      'X-Object-Meta-Owner': 'fragmend',
    });
    await w.commit(ts);
    await w.close();

    const res = await swiftHttp(node.port, 'GET', `/${node.device}/${p.partition}/AUTH_x/c/${object}`, { headers: { 'X-Backend-Storage-Policy-Index': '1' } });
    expect(res.status).toBe(200);
    expect(res.body.equals(archive)).toBe(true);
    expect(res.headers).toMatchObject({
      'x-object-sysmeta-ec-frag-index': String(node.index),
      'x-object-sysmeta-ec-etag': md5(data),
      'x-backend-timestamp': ts.internal,
      'x-backend-data-timestamp': ts.internal,
      'x-backend-durable-timestamp': ts.internal,
      'x-object-meta-owner': 'fragmend',
      etag: `"${md5(archive)}"`, // Swift quotes the ETag it serves
    });
    expect(JSON.parse(String(res.headers['x-backend-fragments']))).toEqual({ [ts.internal]: [node.index] });
    // Swift's reader checked every fragment header while serving: nothing was quarantined.
    const again = await swiftHttp(node.port, 'HEAD', `/${node.device}/${p.partition}/AUTH_x/c/${object}`, { headers: { 'X-Backend-Storage-Policy-Index': '1' } });
    expect(again.status).toBe(200);
  });

  it('fragmend reads what the real proxy wrote, with the metadata Swift reads', async () => {
    const proxy = Number(new URL(await sbx.startProxy()).port);
    expect((await swiftHttp(proxy, 'PUT', '/v1/AUTH_test/c', { headers: { 'X-Storage-Policy': 'ec42' } })).status).toBeLessThan(300);
    const data = Buffer.alloc(70_000, 3);
    expect((await swiftHttp(proxy, 'PUT', '/v1/AUTH_test/c/from-proxy', { body: data, headers: { 'X-Object-Meta-A': 'b', 'Content-Type': 'image/x' } })).status).toBe(201);
    const p = await sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account: 'AUTH_test', container: 'c', object: 'from-proxy' });
    for (const node of p.primaries) {
      const where = { devices: sbx.nodeOfDevice(node.device).devicesRoot, device: node.device, partition: p.partition, account: 'AUTH_test', container: 'c', object: 'from-proxy', policy: 1 };
      const theirs = await sbx.diskfileOk<{ metadata: Record<string, string>; body: string }>({ op: 'read', ...where, frag_index: node.index });
      const ours = await managerFor(node.device).diskFile(join(where.devices, node.device), p.partition, 'AUTH_test', 'c', 'from-proxy', policy, { fragIndex: node.index }).open();
      expect(ours.metadata).toEqual(theirs.metadata);
      expect(md5(await ours.readAll())).toBe(md5(Buffer.from(theirs.body, 'base64')));
    }
  });
});
