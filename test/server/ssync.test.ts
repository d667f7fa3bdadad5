// Swift 2.30's own ssync Sender pushes a Swift-written partition into fragmend's object server
// and, identically, into a real swift-object-server; the files each receiver wrote (names, bytes,
// metadata read back by Swift's read_metadata), the sender's verdicts and the REPLICATE answers
// must be the same.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { parseReplicatePickle } from '../../src/swift/hashes.js';
import type { ObjectServer } from '../../src/server/object-server.js';
import { makeSandbox, request, startOurServer, startSwiftServer, swiftOps, type Sandbox, type SwiftServer, realSwiftEnabled } from './harness.js';

const PART = 7;
const FI = 2;
const enabled = realSwiftEnabled();

describe.runIf(enabled)("Swift's ssync Sender into fragmend and into Swift", () => {
  let sbx: Sandbox;
  let ours: { server: ObjectServer; port: number };
  let swift: SwiftServer;
  let srcDevices: string;
  let ourDevices: string;
  let ec: ECDriver;
  const base = Math.floor(Date.now() / 1000) - 5000;
  const ts = (i: number) => `${base + i}.${String(i * 137).padStart(5, '0')}`;

  const archive = (size: number, seed: number): Buffer => {
    if (size === 0) return Buffer.alloc(0);
    const obj = new Uint8Array(size).map((_, i) => (i * 7 + seed * 13) & 0xff);
    return Buffer.from(ec.encode(obj)[FI]!);
  };
  const md = (t: string, size: number, extra: Record<string, string> = {}) => ({
    'X-Timestamp': t,
    'Content-Type': 'application/octet-stream',
    'X-Object-Sysmeta-Ec-Frag-Index': String(FI),
    'X-Object-Sysmeta-Ec-Etag': createHash('md5').update(String(size)).digest('hex'),
    'X-Object-Sysmeta-Ec-Content-Length': String(size),
    'X-Object-Sysmeta-Ec-Scheme': 'liberasurecode_rs_vand 4+2',
    'X-Object-Sysmeta-Ec-Segment-Size': '1048576',
    ...extra,
  });
  const put = (devices: string, device: string, object: string, t: string, size: number, seed: number, opts: { durable?: boolean; extra?: Record<string, string> } = {}) => ({
    op: 'put',
    devices,
    device,
    partition: PART,
    account: 'AUTH_test',
    container: 'c',
    object,
    frag_index: FI,
    durable: opts.durable ?? true,
    metadata: md(t, size, opts.extra),
    body: archive(size, seed).toString('base64'),
  });
  const addr = (devices: string, device: string, object: string) => ({ devices, device, partition: PART, account: 'AUTH_test', container: 'c', object });

  beforeAll(async () => {
    ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
    sbx = makeSandbox('ssync');
    srcDevices = sbx.devices('src', ['sda']);
    ourDevices = sbx.devices('ours');
    const swiftDevices = sbx.devices('swift');
    ours = await startOurServer(sbx, ourDevices);
    swift = await startSwiftServer(sbx, 'swift-object', swiftDevices);

    // The source partition, written by Swift's own diskfile code.
    await swiftOps(sbx, [
      put(srcDevices, 'sda', 'o-durable', ts(1), 3000, 1, { extra: { 'X-Object-Meta-Color': 'blu\u00e9', 'X-Object-Meta-Plain': 'x y' } }),
      put(srcDevices, 'sda', 'o-nondurable', ts(2), 2000, 2, { durable: false }),
      { op: 'delete', ...addr(srcDevices, 'sda', 'o-tomb'), timestamp: ts(3) },
      put(srcDevices, 'sda', 'o-meta', ts(4), 1000, 4),
      {
        op: 'post',
        ...addr(srcDevices, 'sda', 'o-meta'),
        metadata: { 'X-Timestamp': ts(5), 'X-Object-Meta-Shape': 'round', 'Content-Type': 'text/x-new', 'Content-Type-Timestamp': ts(5) },
      },
      put(srcDevices, 'sda', 'o-empty', ts(6), 0, 6),
      put(srcDevices, 'sda', 'o-precommit', ts(7), 1500, 7),
      put(srcDevices, 'sda', 'o-newer-tomb', ts(8), 1500, 8),
      put(srcDevices, 'sda', 'o-older', ts(10), 1500, 10),
      put(srcDevices, 'sda', 'o-big', ts(11), 400_000, 11, { extra: { 'X-Object-Meta-Big': 'yes', 'X-Delete-At': String(base + 900_000) } }),
      put(srcDevices, 'sda', 'o-meta-only', ts(12), 1200, 12),
      { op: 'post', ...addr(srcDevices, 'sda', 'o-meta-only'), metadata: { 'X-Timestamp': ts(13), 'X-Object-Meta-Later': 'yes' } },
    ]);
    // Both receivers start from the same state: what they already hold decides what is wanted.
    for (const [devices] of [[ourDevices], [swiftDevices]]) {
      await swiftOps(sbx, [
        put(devices!, 'sdb', 'o-precommit', ts(7), 1500, 7, { durable: false }),
        { op: 'delete', ...addr(devices!, 'sdb', 'o-newer-tomb'), timestamp: ts(9) },
        put(devices!, 'sdb', 'o-older', ts(0), 1500, 99),
        put(devices!, 'sdb', 'o-meta-only', ts(12), 1200, 12),
      ]);
    }
  });

  afterAll(async () => {
    await ours?.server.stop();
    await swift?.stop();
    sbx?.cleanup();
  });

  const suffixes = async () => Object.keys((await swiftOps(sbx, [{ op: 'hashes', devices: srcDevices, device: 'sda', partition: PART }]))[0].hashes).sort();
  const sync = (port: number, includeNonDurable: boolean, sufs: string[]) =>
    swiftOps(sbx, [{ op: 'ssync', devices: srcDevices, device: 'sda', partition: PART, frag_index: FI, port, remote_device: 'sdb', suffixes: sufs, include_non_durable: includeNonDurable }]).then((r) => r[0]);
  const tree = async (devices: string) => (await swiftOps(sbx, [{ op: 'tree', devices, device: 'sdb', partition: PART }]))[0];

  it('a sync job (durable fragments only) leaves the same files and metadata as Swift', async () => {
    const sufs = await suffixes();
    expect(sufs.length).toBeGreaterThan(3);
    const a = await sync(ours.port, false, sufs);
    const b = await sync(swift.port, false, sufs);
    expect(a.log.filter((l: string) => /ERROR|EXCEPTION|Unexpected/.test(l))).toEqual([]);
    expect(a.success).toBe(true);
    expect(b.success).toBe(true);
    expect(a.in_sync).toEqual(b.in_sync);
    const [ta, tb] = [await tree(ourDevices), await tree(swift.devices)];
    expect(Object.keys(ta).sort()).toEqual(Object.keys(tb).sort());
    expect(ta).toEqual(tb);
    // Even the order of the metadata keys (so the pickles are byte-identical).
    for (const [p, f] of Object.entries(ta)) expect(Object.keys((f as { metadata: object }).metadata), p).toEqual(Object.keys(tb[p].metadata));
    // What the sync did: data and metadata arrived, the local non-durable copy was made durable in
    // place, the newer local tombstone won.
    const names = Object.keys(ta).map((p) => p.split('/').pop()!);
    expect(names).toContain(`${ts(7)}#${FI}#d.data`);
    expect(names).toContain(`${ts(9)}.ts`);
    expect(names).toContain(`${ts(3)}.ts`);
    expect(names).toContain(`${ts(5)}+0.meta`);
    expect(names).toContain(`${ts(13)}.meta`);
    expect(names).not.toContain(`${ts(2)}#${FI}.data`);
    const durable = Object.entries(ta).find(([p]) => p.endsWith(`${ts(1)}#${FI}#d.data`))![1] as { metadata: Record<string, string> };
    expect(durable.metadata['X-Object-Meta-Plain']).toBe('x y');
  });

  it('a revert-style session (non-durable fragments too) matches Swift, and so do the REPLICATE answers', async () => {
    const sufs = await suffixes();
    const a = await sync(ours.port, true, sufs);
    const b = await sync(swift.port, true, sufs);
    expect(a.success).toBe(true);
    expect(b.success).toBe(true);
    expect(a.log.some((l: string) => /does not accept non-durable/.test(l))).toBe(false);
    expect(a.in_sync).toEqual(b.in_sync);
    const [ta, tb] = [await tree(ourDevices), await tree(swift.devices)];
    expect(ta).toEqual(tb);
    expect(Object.keys(ta).some((p) => p.endsWith(`${ts(2)}#${FI}.data`))).toBe(true);

    const hdr = { 'X-Backend-Storage-Policy-Index': '1' };
    const [ra, rb] = [await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr), await request(swift.port, 'REPLICATE', `/sdb/${PART}`, hdr)];
    expect(ra.status).toBe(200);
    expect(rb.status).toBe(200);
    const asJson = (b: Buffer) => Object.fromEntries([...parseReplicatePickle(b)].map(([s, h]) => [s, h ? Object.fromEntries([...h].map(([k, v]) => [String(k), v])) : null]));
    expect(asJson(ra.body)).toEqual(asJson(rb.body));
    expect(Object.keys(asJson(ra.body)).length).toBeGreaterThan(3);
  });

  it('a second pass finds everything in sync and sends nothing', async () => {
    const sufs = await suffixes();
    const before = await tree(ourDevices);
    const a = await sync(ours.port, true, sufs);
    expect(a.success).toBe(true);
    expect(a.log.find((l: string) => /ssync completed ok/.test(l))).toMatch(/sent: 0,/);
    expect(await tree(ourDevices)).toEqual(before);
  });
});
