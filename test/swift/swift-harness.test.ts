// Smoke test of the real-Swift sandbox: six real object servers, a fragment archive written with
// Swift's own diskfile code, served back over HTTP, hashed by REPLICATE and get_hashes, the real
// reconstructor run once, an EC round trip through the real proxy, and nothing left running.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytes } from '../helpers/placement.js';
import { SwiftSandbox, realSwiftEnabled, swiftHttp } from '../helpers/swift-cluster.js';

const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

interface NodeInfo {
  id: number;
  device: string;
  ip: string;
  port: number;
  index?: number;
}
interface Placement {
  partition: number;
  hash: string;
  primaries: NodeInfo[];
  handoffs: NodeInfo[];
}
interface Encoded {
  archives: string[];
  archive_etags: string[];
  object_etag: string;
  object_length: number;
  scheme: string;
  segment_size: number;
  fragment_size: number;
}


const enabled = realSwiftEnabled();

describe.skipIf(!enabled)('real Swift 2.30 sandbox', () => {
  let sbx: SwiftSandbox;
  const account = 'AUTH_test';
  const container = 'c-ec42';
  let object = '';
  let placement: Placement;
  const timestamp = (Date.now() / 1000).toFixed(5);
  const body = bytes(1000, 42);
  let archive: Buffer;
  let encoded: Encoded;

  beforeAll(async () => {
    sbx = await SwiftSandbox.create({ objectNodes: 6 });
    await sbx.startAll();
  }, 60_000);

  afterAll(async () => {
    await sbx?.cleanup();
  });

  it('Swift reads the sandbox swift.conf, not /etc/swift/swift.conf', async () => {
    const ping = await sbx.diskfileOk<{ swift_conf: string }>({ op: 'ping' });
    expect(ping.swift_conf).toBe(sbx.paths.swiftConf);
    const h = await sbx.diskfileOk<string>({ op: 'hash_path', account, container: 'c', object: 'o' });
    expect(h).toBe(md5(`${sbx.hashPrefix}/${account}/c/o${sbx.hashSuffix}`));
    // the running object server's view, through its recon middleware
    const recon = await swiftHttp(sbx.node(0).port, 'GET', '/recon/swiftconfmd5');
    expect(recon.status).toBe(200);
    expect(JSON.parse(recon.body.toString())).toEqual({ [sbx.paths.swiftConf]: md5(readFileSync(sbx.paths.swiftConf)) });
  });

  it('a fragment archive written by Swift diskfile code is served by the real object server', async () => {
    object = 'obj-smoke';
    placement = await sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account, container, object });
    expect(placement.primaries).toHaveLength(6);
    expect(placement.primaries.map((x) => x.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(placement.hash).toBe(md5(`${sbx.hashPrefix}/${account}/${container}/${object}${sbx.hashSuffix}`));

    encoded = await sbx.diskfileOk<Encoded>({ op: 'encode_object', policy: 1, body: body.toString('base64') });
    archive = Buffer.from(encoded.archives[2]!, 'base64');
    expect(encoded.object_etag).toBe(md5(body));
    expect(archive.length).toBeGreaterThan(80);

    const put = await sbx.diskfileOk<{ path: string; files: string[]; etag: string }>({
      op: 'put',
      devices: sbx.node(0).devicesRoot,
      device: 'd0',
      partition: placement.partition,
      account,
      container,
      object,
      policy: 1,
      frag_index: 2,
      body: archive.toString('base64'),
      timestamp,
      durable: true,
      metadata: {
        'X-Timestamp': timestamp,
        'Content-Length': String(archive.length),
        ETag: md5(archive),
        'Content-Type': 'application/octet-stream',
        'X-Object-Sysmeta-Ec-Frag-Index': '2',
        'X-Object-Sysmeta-Ec-Etag': md5(body),
        'X-Object-Sysmeta-Ec-Content-Length': String(body.length),
        'X-Object-Sysmeta-Ec-Scheme': encoded.scheme,
        'X-Object-Sysmeta-Ec-Segment-Size': String(encoded.segment_size),
      },
    });
    expect(put.files).toEqual([`${timestamp}#2#d.data`]);
    expect(put.path).toContain(`/d0/objects-1/${placement.partition}/${placement.hash.slice(-3)}/${placement.hash}`);
    expect(encoded.scheme).toBe('liberasurecode_rs_vand 4+2');

    const res = await swiftHttp(sbx.node(0).port, 'GET', `/d0/${placement.partition}/${account}/${container}/${object}`, {
      headers: { 'X-Backend-Storage-Policy-Index': '1' },
    });
    expect(res.status).toBe(200);
    expect(res.body.equals(archive)).toBe(true);
    expect(res.headers['x-object-sysmeta-ec-frag-index']).toBe('2');
    expect(res.headers['x-object-sysmeta-ec-etag']).toBe(md5(body));
    expect(res.headers['x-backend-timestamp']).toBe(timestamp);
    expect(res.headers['x-backend-data-timestamp']).toBe(timestamp);
    expect(res.headers['x-backend-durable-timestamp']).toBe(timestamp);
    expect(JSON.parse(String(res.headers['x-backend-fragments']))).toEqual({ [timestamp]: [2] });
  });

  it('REPLICATE answers a pickle and get_hashes names the suffix', async () => {
    const suffix = placement.hash.slice(-3);
    const rep = await swiftHttp(sbx.node(0).port, 'REPLICATE', `/d0/${placement.partition}`, {
      headers: { 'X-Backend-Storage-Policy-Index': '1' },
    });
    expect(rep.status).toBe(200);
    expect(rep.body.length).toBeGreaterThan(6);
    expect(rep.body[0]).toBe(0x80); // pickle PROTO
    expect(rep.body.includes(Buffer.from(suffix))).toBe(true);

    const req = { devices: sbx.node(0).devicesRoot, device: 'd0', partition: placement.partition, policy: 1 };
    const hashes = await sbx.diskfileOk<Record<string, Record<string, string>>>({ op: 'get_hashes', ...req });
    // EC suffix hashes: per frag index md5 of the data timestamps, "null" over the durable marker
    expect(hashes).toEqual({ [suffix]: { '2': md5(timestamp), null: md5(`${timestamp}.durable`) } });
    expect(rep.body.includes(Buffer.from(md5(timestamp)))).toBe(true);

    const yielded = await sbx.diskfileOk<unknown[]>({ op: 'yield_hashes', ...req });
    expect(yielded).toEqual([[placement.hash, { ts_data: timestamp, durable: true }]]);

    const read = await sbx.diskfileOk<{ metadata: Record<string, string>; body: string; durable_timestamp: string }>({
      op: 'read',
      ...req,
      account,
      container,
      object,
      frag_index: 2,
    });
    expect(Buffer.from(read.body, 'base64').equals(archive)).toBe(true);
    expect(read.metadata.name).toBe(`/${account}/${container}/${object}`);
    expect(read.durable_timestamp).toBe(timestamp);

    // errors are answers, and the tool keeps serving
    const missing = await sbx.diskfile({ op: 'read', ...req, account, container, object: 'no-such-object' });
    expect(missing).toMatchObject({ ok: false, error: 'DiskFileNotExist' });
    expect((await sbx.diskfile({ op: 'ping' })).ok).toBe(true);
  });

  it('writes .meta and tombstones, invalidates and consolidates hashes with Swift code', async () => {
    const loc = { devices: sbx.node(1).devicesRoot, device: 'd1', policy: 1, account, container, object: 'obj-ops' };
    const p = await sbx.diskfileOk<Placement>({ op: 'get_nodes', ...loc });
    const at = { ...loc, partition: p.partition };
    const suffix = p.hash.slice(-3);
    const t0 = Number(timestamp);
    const [ts1, ts2, ts3] = [t0 + 1, t0 + 2, t0 + 3].map((t) => t.toFixed(5));
    await sbx.diskfileOk({ op: 'put', ...at, frag_index: 1, body: encoded.archives[1], timestamp: ts1, metadata: {} });
    const meta = await sbx.diskfileOk<{ files: string[] }>({ op: 'write_metadata', ...at, timestamp: ts2, metadata: { 'X-Object-Meta-Color': 'blue' } });
    expect(meta.files).toEqual([`${ts1}#1#d.data`, `${ts2}.meta`]);
    const yielded = await sbx.diskfileOk<unknown[]>({ op: 'yield_hashes', ...at });
    expect(yielded).toEqual([[p.hash, { ts_data: ts1, ts_meta: ts2, durable: true }]]);
    const read = await sbx.diskfileOk<{ metadata: Record<string, string> }>({ op: 'read', ...at, body: false });
    expect(read.metadata['X-Object-Meta-Color']).toBe('blue');

    const del = await sbx.diskfileOk<{ files: string[] }>({ op: 'delete', ...at, timestamp: ts3 });
    expect(del.files).toEqual([`${ts3}.ts`]);
    expect(await sbx.diskfile({ op: 'read', ...at })).toMatchObject({ ok: false, error: 'DiskFileDeleted', timestamp: ts3 });

    // every write above appended the suffix to hashes.invalid; consolidating folds it in
    await sbx.diskfileOk({ op: 'invalidate_hash', ...at, suffix });
    const consolidated = await sbx.diskfileOk<Record<string, unknown>>({ op: 'consolidate_hashes', ...at });
    expect(consolidated[suffix]).toBeNull();
    const hashes = await sbx.diskfileOk<Record<string, unknown>>({ op: 'get_hashes', ...at });
    expect(hashes).toEqual({ [suffix]: { null: md5(`${ts3}.ts`) } });
  });

  it('runs the real reconstructor once: a fragment off its primary is reverted there', async () => {
    const owner = placement.primaries[2]!;
    const r = await sbx.runReconstructorOnce(0, ['-p', String(placement.partition)]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('Object reconstruction complete (once)');
    const where = (device: string) => ({
      op: 'hash_dir',
      devices: sbx.nodeOfDevice(device).devicesRoot,
      device,
      partition: placement.partition,
      account,
      container,
      object,
      policy: 1,
    });
    const onOwner = await sbx.diskfileOk<{ files: string[] }>(where(owner.device));
    expect(onOwner.files).toEqual([`${timestamp}#2#d.data`]);
    if (owner.device !== 'd0') {
      expect(r.output).toMatch(/ssync completed ok/);
      expect((await sbx.diskfileOk<{ files: string[] }>(where('d0'))).files).toEqual([]);
    }
  });

  it('runs the real object replicator once (ssync)', async () => {
    const r = await sbx.runReplicatorOnce(2);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('Object replication complete (once)');
  });

  it('stops and restarts one object server', async () => {
    const port = sbx.node(5).port;
    const before = sbx.running()['object-5'];
    await sbx.stopObjectServer(5);
    expect(sbx.running()['object-5']).toBeUndefined();
    expect(existsSync(`/proc/${before}`)).toBe(false);
    await expect(swiftHttp(port, 'GET', '/healthcheck', { timeoutMs: 2_000 })).rejects.toThrow();
    const pid = await sbx.startObjectServer(5);
    expect(pid).not.toBe(before);
    expect((await swiftHttp(port, 'GET', '/healthcheck')).status).toBe(200);
  });

  it('round-trips an EC object through the real proxy', async () => {
    const url = await sbx.startProxy();
    const port = Number(new URL(url).port);
    const c = await swiftHttp(port, 'PUT', `/v1/${account}/c-proxy`, { headers: { 'X-Storage-Policy': 'ec42' } });
    expect([201, 202]).toContain(c.status);
    const data = bytes(1_048_576 + 17, 7);
    const put = await swiftHttp(port, 'PUT', `/v1/${account}/c-proxy/big`, { body: data });
    expect(put.status).toBe(201);
    expect(put.headers.etag).toBe(md5(data));
    const get = await swiftHttp(port, 'GET', `/v1/${account}/c-proxy/big`);
    expect(get.status).toBe(200);
    expect(md5(get.body)).toBe(md5(data));

    // each primary holds the archive the proxy's own encoder makes for its index
    const p = await sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account, container: 'c-proxy', object: 'big' });
    const enc = await sbx.diskfileOk<Encoded>({ op: 'encode_object', policy: 1, body: data.toString('base64') });
    for (const node of p.primaries) {
      const onDisk = await sbx.diskfileOk<{ metadata: Record<string, string> }>({
        op: 'read',
        devices: sbx.nodeOfDevice(node.device).devicesRoot,
        device: node.device,
        partition: p.partition,
        account,
        container: 'c-proxy',
        object: 'big',
        policy: 1,
        frag_index: node.index,
        body: false,
      });
      expect(onDisk.metadata.ETag).toBe(enc.archive_etags[node.index!]);
    }
  });

  it('stops every process it started', async () => {
    const pids = [...sbx.startedPids];
    expect(pids.length).toBeGreaterThanOrEqual(6 + 1 + 1 + 3); // servers, diskfile tool, reconstructor, proxy trio
    const root = sbx.paths.root;
    await sbx.cleanup();
    expect(sbx.running()).toEqual({});
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `pid ${pid}`).toBe(false);
    expect(existsSync(root)).toBe(false);
  });
});
