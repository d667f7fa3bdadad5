// fragmend's object server and a real swift-object-server over identical devices (fragment
// archives made by the codec, written by fragmend's diskfile layer): every request gets the
// same status, the same headers in the same order and the same body, and every write leaves
// the same files and metadata on disk.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { ECDiskFileManager } from '../../src/swift/diskfile.js';
import { parseReplicatePickle } from '../../src/swift/hashes.js';
import { parseReplicateBatch } from '../../src/replication/replicate.js';
import { ObjectServer } from '../../src/server/object-server.js';
import { makeSandbox, PREFIX, request, startOurServer, startSwiftServer, SUFFIX, swiftOps, type LogCapture, type RawResponse, type Sandbox, type SwiftServer, realSwiftEnabled } from './harness.js';
import { connect } from 'node:net';

const PART = 5;
const enabled = realSwiftEnabled();
const P1 = { 'X-Backend-Storage-Policy-Index': '1' };

describe.runIf(enabled)('object server: GET/HEAD/PUT/POST/DELETE/REPLICATE as Swift answers them', () => {
  let sbx: Sandbox;
  let ours: { server: ObjectServer; port: number; logs: LogCapture };
  let swift: SwiftServer;
  let ec: ECDriver;
  const base = Math.floor(Date.now() / 1000) - 2000;
  const T = (i: number) => `${base + i}.${String(i * 11).padStart(5, '0')}`;
  const archives = new Map<string, Buffer>();

  const obj = (size: number, seed: number) => new Uint8Array(size).map((_, i) => (i * 5 + seed) & 0xff);

  async function writeFrag(mgr: ECDiskFileManager, devPath: string, name: string, fi: number, ts: string, size: number, opts: { durable?: boolean; extra?: Record<string, string> } = {}) {
    const frags = ec.encode(obj(size, fi));
    const body = Buffer.from(frags[fi]!);
    archives.set(`${name}#${fi}@${ts}`, body);
    const df = mgr.diskFile(devPath, PART, 'AUTH_test', 'c', name, sbx.policy, { fragIndex: fi });
    const w = df.writer(body.length);
    await w.open();
    try {
      await w.write(body);
      await w.put({
        'X-Timestamp': ts,
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(body.length),
        ETag: createHash('md5').update(body).digest('hex'),
        'X-Object-Sysmeta-Ec-Frag-Index': String(fi),
        'X-Object-Sysmeta-Ec-Etag': createHash('md5').update(obj(size, fi)).digest('hex'),
        'X-Object-Sysmeta-Ec-Content-Length': String(size),
        'X-Object-Sysmeta-Ec-Scheme': 'liberasurecode_rs_vand 4+2',
        'X-Object-Sysmeta-Ec-Segment-Size': '1048576',
        ...opts.extra,
      });
      if (opts.durable ?? true) await w.commit(ts);
    } finally {
      await w.close();
    }
  }

  async function populate(devices: string) {
    const mgr = new ECDiskFileManager({ devices, mountCheck: false, hashPrefix: PREFIX, hashSuffix: SUFFIX });
    const dev = join(devices, 'sdb');
    await writeFrag(mgr, dev, 'obj', 2, T(1), 300_000, { extra: { 'X-Object-Meta-Color': 'blue' } });
    await writeFrag(mgr, dev, 'obj', 3, T(2), 300_000, { durable: false });
    await writeFrag(mgr, dev, 'tomb', 1, T(3), 100);
    await mgr.diskFile(dev, PART, 'AUTH_test', 'c', 'tomb', sbx.policy).delete(T(4));
    await writeFrag(mgr, dev, 'meta-ct', 0, T(5), 1000, { extra: { 'X-Object-Meta-Old': 'gone after POST' } });
    await mgr.diskFile(dev, PART, 'AUTH_test', 'c', 'meta-ct', sbx.policy).writeMetadata({
      'X-Timestamp': T(6),
      'X-Object-Meta-New': 'value',
      'X-Object-Transient-Sysmeta-Crypto-Thing': 'kept',
      'Content-Type': 'text/x-changed',
      'Content-Type-Timestamp': T(6),
    });
    await writeFrag(mgr, dev, 'expired', 4, T(7), 500, { extra: { 'X-Delete-At': String(base + 100) } });
    await writeFrag(mgr, dev, 'enc', 5, T(8), 2000, { extra: { 'Content-Encoding': 'gzip', 'Content-Disposition': 'attachment', 'X-Object-Meta-Unicode': 'caf\u00c3\u00a9' } });
  }

  beforeAll(async () => {
    ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
    sbx = makeSandbox('objsrv');
    const ourDevices = sbx.devices('ours');
    const swiftDevices = sbx.devices('swift');
    await populate(ourDevices);
    await populate(swiftDevices);
    ours = await startOurServer(sbx, ourDevices);
    swift = await startSwiftServer(sbx, 'swift-objsrv', swiftDevices);
  });

  afterAll(async () => {
    await ours?.server.stop();
    await swift?.stop();
    sbx?.cleanup();
  });

  // X-Backend-Archive-Checked is fragmend's own (a whole GET's archive was checked against its
  // ETag before its last byte went out): the one header Swift's server does not send
  const shape = (r: RawResponse) => ({ status: r.status, headers: r.headers.filter(([k]) => k !== 'Date' && k !== 'X-Backend-Archive-Checked'), body: r.body.toString('latin1') });
  async function same(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
    const a = await request(ours.port, method, path, { ...P1, ...headers }, body);
    const b = await request(swift.port, method, path, { ...P1, ...headers }, body);
    expect(shape(a), `${method} ${path} ${JSON.stringify(headers)}`).toEqual(shape(b));
    return a;
  }
  const path = (o: string) => `/sdb/${PART}/AUTH_test/c/${o}`;

  it('GET and HEAD of a durable fragment archive: same headers, in the same order, and the bytes on disk', async () => {
    const g = await same('GET', path('obj'));
    expect(g.status).toBe(200);
    expect(g.body.equals(archives.get(`obj#2@${T(1)}`)!)).toBe(true);
    expect(g.header('X-Backend-Fragments')).toBe(`{"${T(2)}": [3], "${T(1)}": [2]}`);
    expect(g.header('X-Backend-Durable-Timestamp')).toBe(T(1));
    expect(g.header('Etag')).toBe(`"${createHash('md5').update(g.body).digest('hex')}"`);
    expect(g.header('X-Backend-Archive-Checked')).toBe('etag');
    const h = await same('HEAD', path('obj'));
    expect(h.header('X-Backend-Archive-Checked')).toBeUndefined();
    expect(h.header('Content-Length')).toBe(String(g.body.length));
  });

  it('fragment preferences choose the fragment set, non-durable ones included', async () => {
    const newest = await same('GET', path('obj'), { 'X-Backend-Fragment-Preferences': JSON.stringify([{ timestamp: T(2), exclude: [] }]), 'X-Backend-Replication': 'True' });
    expect(newest.header('X-Object-Sysmeta-Ec-Frag-Index')).toBe('3');
    expect(newest.header('X-Backend-Data-Timestamp')).toBe(T(2));
    expect(newest.header('X-Backend-Durable-Timestamp')).toBe(T(1));
    expect(newest.body.equals(archives.get(`obj#3@${T(2)}`)!)).toBe(true);
    const excluded = await same('GET', path('obj'), { 'X-Backend-Fragment-Preferences': JSON.stringify([{ timestamp: T(2), exclude: [3] }]) });
    expect(excluded.header('X-Object-Sysmeta-Ec-Frag-Index')).toBe('2');
    const any = await same('GET', path('obj'), { 'X-Backend-Fragment-Preferences': '[]' });
    expect(any.header('X-Object-Sysmeta-Ec-Frag-Index')).toBe('3');
    const nothing = await same('GET', path('obj'), { 'X-Backend-Fragment-Preferences': JSON.stringify([{ timestamp: T(1), exclude: [2] }, { timestamp: T(2), exclude: [3] }]) });
    expect(nothing.status).toBe(404);
    await same('HEAD', path('obj'), { 'X-Backend-Fragment-Preferences': JSON.stringify([{ timestamp: T(2), exclude: [] }]) });
    await same('GET', path('obj'), { 'X-Backend-Fragment-Preferences': 'not json' });
  });

  it('tombstones, missing and expired objects, .meta with a new Content-Type, allowed headers', async () => {
    expect((await same('GET', path('tomb'))).header('X-Backend-Timestamp')).toBe(T(4));
    await same('HEAD', path('tomb'));
    expect((await same('GET', path('nothing-here'))).status).toBe(404);
    await same('HEAD', path('nothing-here'));
    expect((await same('GET', path('expired'))).status).toBe(404);
    expect((await same('GET', path('expired'), { 'X-Backend-Replication': 'True' })).status).toBe(200);
    const m = await same('GET', path('meta-ct'));
    expect(m.header('Content-Type')).toBe('text/x-changed');
    expect(m.header('X-Object-Meta-Old')).toBeUndefined();
    await same('HEAD', path('meta-ct'));
    const e = await same('GET', path('enc'));
    expect(e.header('Content-Encoding')).toBe('gzip');
    expect(e.header('Content-Disposition')).toBe('attachment');
  });

  it('ranges and conditional requests', async () => {
    const whole = archives.get(`obj#2@${T(1)}`)!;
    const r = await same('GET', path('obj'), { Range: 'bytes=10-99' });
    expect(r.status).toBe(206);
    expect(r.body.equals(whole.subarray(10, 100))).toBe(true);
    await same('GET', path('obj'), { Range: 'bytes=-50' });
    await same('GET', path('obj'), { Range: 'bytes=70000-' });
    await same('GET', path('obj'), { Range: 'bytes=99999999-' });
    await same('GET', path('obj'), { Range: 'bytes=junk' });
    // Several ranges: multipart/byteranges (the boundary is random; the rest must match).
    for (const spec of ['bytes=0-9,20-29', 'bytes=-10,5-6,70000-', 'bytes=1-2,1-2,1-2,1-2', 'bytes=9-9,8-8,7-7,6-6,5-5,4-4,3-3,2-2']) {
      const norm = (r: RawResponse) => {
        const b = /boundary=([0-9a-f]+)/.exec(r.header('Content-Type') ?? '')?.[1];
        const sh = shape(r);
        return b ? JSON.parse(JSON.stringify(sh).split(b).join('<boundary>')) : sh;
      };
      const [ma, mb] = [await request(ours.port, 'GET', path('obj'), { ...P1, Range: spec }), await request(swift.port, 'GET', path('obj'), { ...P1, Range: spec })];
      expect(norm(ma), spec).toEqual(norm(mb));
    }
    const etag = createHash('md5').update(whole).digest('hex');
    expect((await same('GET', path('obj'), { 'If-None-Match': `"${etag}"` })).status).toBe(304);
    expect((await same('GET', path('obj'), { 'If-Match': '"nope"' })).status).toBe(412);
    expect((await same('HEAD', path('obj'), { 'If-Match': `"${etag}"` })).status).toBe(200);
    expect((await same('HEAD', path('obj'), { 'If-None-Match': `"${etag}"` })).status).toBe(304);
    expect((await same('HEAD', path('obj'), { 'If-Match': '"nope"' })).status).toBe(412);
    expect((await same('GET', path('obj'), { 'If-Modified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT' })).status).toBe(304);
    expect((await same('GET', path('obj'), { 'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' })).status).toBe(412);
    const ecEtag = (await request(ours.port, 'HEAD', path('obj'), P1)).header('X-Object-Sysmeta-Ec-Etag')!;
    expect((await same('GET', path('obj'), { 'X-Backend-Etag-Is-At': 'X-Object-Sysmeta-Ec-Etag', 'If-Match': `"${ecEtag}"` })).status).toBe(200);
  });

  it('REPLICATE: the same pickle as Swift, and as Swift get_hashes computes for our disk', async () => {
    // A one-suffix partition: byte for byte.
    for (const devices of [ours.server.options.devices, swift.devices]) {
      const mgr = new ECDiskFileManager({ devices, mountCheck: false, hashPrefix: PREFIX, hashSuffix: SUFFIX });
      const df = mgr.diskFile(join(devices, 'sdb'), 6, 'AUTH_test', 'c', 'solo', sbx.policy, { fragIndex: 0 });
      await df.delete(T(1));
    }
    const solo = await same('REPLICATE', '/sdb/6');
    expect(solo.body.length).toBeGreaterThan(40);
    // Several suffixes: the same dict. (The order of suffixes in a fresh hashes.pkl follows the
    // directory listing: Python's is unsorted, Node's readdir sorts, so bytes may differ.)
    const hdr = { ...P1 };
    const r = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr);
    const rs = await request(swift.port, 'REPLICATE', `/sdb/${PART}`, hdr);
    expect([r.status, rs.status]).toEqual([200, 200]);
    expect(r.headers.filter(([k]) => k !== 'Date')).toEqual(rs.headers.filter(([k]) => k !== 'Date'));
    const asJson = (b: Buffer) => Object.fromEntries([...parseReplicatePickle(b)].map(([s, h]) => [s, h ? Object.fromEntries([...h].map(([k, v]) => [String(k), v])) : null]));
    expect(asJson(r.body)).toEqual(asJson(rs.body));
    expect(r.body.subarray(0, 2).toString('hex')).toBe('8002');
    const py = await swiftOps(sbx, [{ op: 'hashes', devices: ours.server.options.devices, device: 'sdb', partition: PART }]);
    expect(r.body.toString('base64')).toBe(py[0].pickle);
    expect(Object.keys(py[0].hashes).length).toBeGreaterThan(3);

    const inv = await same('REPLICATE', `/sdb/${PART}/abc-fff-zzz`);
    expect(inv.body.toString('hex')).toBe('80024e2e');
    const invalid = (d: string) => readFileSync(join(d, 'sdb', 'objects-1', String(PART), 'hashes.invalid'), 'utf8');
    expect(invalid(ours.server.options.devices)).toBe(invalid(swift.devices));
    expect(invalid(ours.server.options.devices)).toBe('abc\nfff\n');
    expect((await same('REPLICATE', '/sdb/999')).body.toString('hex')).toBe('80027d71002e');
    expect((await same('REPLICATE', '/nodev/5')).status).toBe(507);
    // The suffixes just invalidated are gone from the next answer (they do not exist).
    const again = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr);
    expect(again.body.equals(r.body)).toBe(true);
  });

  it("REPLICATE asking for more partitions: Swift ignores the header, fragmend answers each as its own REPLICATE would", async () => {
    const asJson = (b: Buffer) => Object.fromEntries([...parseReplicatePickle(b)].map(([s, h]) => [s, h ? Object.fromEntries([...h].map(([k, v]) => [String(k), v])) : null]));
    const hdr = { ...P1, 'X-Fragmend-Replicate-Batch': `6, 999,x,../5,${PART},6` };
    const plain = await request(swift.port, 'REPLICATE', `/sdb/${PART}`, P1);
    const rs = await request(swift.port, 'REPLICATE', `/sdb/${PART}`, hdr);
    expect(rs.status).toBe(200);
    expect(rs.header('X-Fragmend-Replicate-Batch')).toBeUndefined();
    expect(asJson(rs.body)).toEqual(asJson(plain.body));

    const r = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr);
    expect(r.status).toBe(200);
    expect(r.header('X-Fragmend-Replicate-Batch')).toBe('3');
    // the pieces, raw: each the bytes a REPLICATE of that partition alone returns
    const pieces: Array<[number, Buffer]> = [];
    for (let at = 0; at < r.body.length; ) {
      const nl = r.body.indexOf(10, at);
      const [part, len] = r.body.toString('latin1', at, nl).split(' ').map(Number) as [number, number];
      pieces.push([part, r.body.subarray(nl + 1, nl + 1 + len)]);
      at = nl + 1 + len;
    }
    expect(pieces.map(([p]) => p)).toEqual([PART, 6, 999]);
    for (const [p, bytes] of pieces) expect(bytes.equals((await request(ours.port, 'REPLICATE', `/sdb/${p}`, P1)).body)).toBe(true);
    expect(asJson(pieces[0]![1])).toEqual(asJson(plain.body));
    expect([...parseReplicateBatch(r.body, 'ours').keys()]).toEqual([PART, 6, 999]);
    // a partition to hash whole (its hashes.pkl gone) is hashed as its own REPLICATE would hash it,
    // for the batch's first replicateBatchHashMs; after that it is left out, and answered when
    // asked alone
    const opts = ours.server.options as { replicateBatchMaxBytes: number; replicateBatchHashMs: number };
    const pkl6 = join(ours.server.options.devices, 'sdb', 'objects-1', '6', 'hashes.pkl');
    const six = readFileSync(pkl6);
    rmSync(pkl6);
    const hashed = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr);
    expect(hashed.header('X-Fragmend-Replicate-Batch')).toBe('3');
    expect(parseReplicateBatch(hashed.body, 'ours').get(6)).toEqual(parseReplicatePickle(pieces[1]![1]));
    expect(readFileSync(pkl6).length).toBe(six.length);
    rmSync(pkl6);
    const hashFor = opts.replicateBatchHashMs;
    try {
      opts.replicateBatchHashMs = 0;
      const without = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr);
      expect(without.header('X-Fragmend-Replicate-Batch')).toBe('2');
      expect([...parseReplicateBatch(without.body, 'ours').keys()]).toEqual([PART, 999]);
      expect(existsSync(pkl6)).toBe(false);
      expect((await request(ours.port, 'REPLICATE', '/sdb/6', P1)).body.equals(pieces[1]![1])).toBe(true);
      expect(readFileSync(pkl6).length).toBe(six.length);
      expect([...parseReplicateBatch((await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr)).body, 'ours').keys()]).toEqual([PART, 6, 999]);
    } finally {
      opts.replicateBatchHashMs = hashFor;
    }
    // no more than so many bytes of answers (the path's partition's whatever its size)
    const room = opts.replicateBatchMaxBytes;
    try {
      opts.replicateBatchMaxBytes = pieces[0]![1].length + 20 + pieces[1]![1].length;
      expect([...parseReplicateBatch((await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr)).body, 'ours').keys()]).toEqual([PART, 6]);
      opts.replicateBatchMaxBytes = 1;
      const one = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr);
      expect(one.header('X-Fragmend-Replicate-Batch')).toBe('1');
      expect([...parseReplicateBatch(one.body, 'ours').keys()]).toEqual([PART]);
    } finally {
      opts.replicateBatchMaxBytes = room;
    }
    // the path's own partition is always answered, hashed whole if need be
    const pklPart = join(ours.server.options.devices, 'sdb', 'objects-1', String(PART), 'hashes.pkl');
    rmSync(pklPart);
    const own = await request(ours.port, 'REPLICATE', `/sdb/${PART}`, hdr);
    expect(parseReplicateBatch(own.body, 'ours').get(PART)).toEqual(parseReplicatePickle(pieces[0]![1]));
    // an unmounted device is a 507, asked for one partition or more
    expect((await request(ours.port, 'REPLICATE', '/nodev/5', hdr)).status).toBe(507);
    // suffixes to invalidate are answered as always, whatever the header says
    const inv = await request(ours.port, 'REPLICATE', `/sdb/${PART}/abc`, hdr);
    expect(inv.body.toString('hex')).toBe('80024e2e');
    expect(inv.header('X-Fragmend-Replicate-Batch')).toBeUndefined();
  });

  it('PUT, POST and DELETE: same statuses and headers, same files and metadata as Swift writes', async () => {
    const body = Buffer.from(ec.encode(obj(5000, 9))[1]!);
    const md5 = createHash('md5').update(body).digest('hex');
    const putHdr = (ts: string, extra: Record<string, string> = {}) => ({
      'X-Timestamp': ts,
      'Content-Type': 'application/x-test',
      'X-Object-Sysmeta-Ec-Frag-Index': '1',
      'X-Object-Sysmeta-Ec-Etag': 'e'.repeat(32),
      'X-Object-Sysmeta-Ec-Content-Length': '5000',
      'X-Object-Meta-Mixed_Case': 'Yes',
      'x-object-meta-lower': 'v',
      'Content-Disposition': 'inline',
      'X-Object-Transient-Sysmeta-T': 't',
      'X-Backend-Container-Update-Override-Etag': 'ignored',
      ...extra,
    });
    expect((await same('PUT', path('new'), { ...putHdr(T(20)), ETag: md5 }, body)).status).toBe(201);
    expect((await same('PUT', path('new'), putHdr(T(20)), body)).status).toBe(409);
    expect((await same('PUT', path('new'), putHdr(T(19)), body)).status).toBe(409);
    expect((await same('PUT', path('nondurable'), { ...putHdr(T(21)), 'X-Backend-No-Commit': 'True' }, body)).status).toBe(201);
    expect((await same('PUT', path('chunked'), { ...putHdr(T(22)), 'Transfer-Encoding': 'chunked' }, Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]))).status).toBe(201);
    expect((await same('PUT', path('bad-etag'), { ...putHdr(T(23)), ETag: '0'.repeat(32) }, body)).status).toBe(422);
    expect((await same('PUT', path('no-type'), { 'X-Timestamp': T(24), 'X-Object-Sysmeta-Ec-Frag-Index': '1' }, body)).status).toBe(400);
    expect((await same('PUT', path('no-ts'), { 'Content-Type': 'a/b', 'X-Object-Sysmeta-Ec-Frag-Index': '1' }, body)).status).toBe(400);
    expect((await same('PUT', path('bad-ts'), putHdr('yesterday'), body)).status).toBe(400);
    expect((await same('PUT', path('past'), putHdr(T(25), { 'X-Delete-At': String(base) }), body)).status).toBe(400);
    expect((await same('PUT', path('big-meta'), putHdr(T(26), { 'X-Object-Meta-Big': 'x'.repeat(300) }), body)).status).toBe(400);
    expect((await same('PUT', path('no-length'), putHdr(T(27)))).status).toBe(411);

    expect((await same('POST', path('new'), { 'X-Timestamp': T(30), 'X-Object-Meta-Posted': 'yes', 'Content-Type': 'text/posted', 'X-Object-Sysmeta-Ignored': 'no' })).status).toBe(202);
    expect((await same('POST', path('new'), { 'X-Timestamp': T(29), 'X-Object-Meta-Stale': 'yes' })).status).toBe(409);
    expect((await same('POST', path('absent'), { 'X-Timestamp': T(30) })).status).toBe(404);
    expect((await same('POST', path('nondurable'), { 'X-Timestamp': T(31) })).status).toBe(404);
    expect((await same('POST', path('new'), { 'X-Timestamp': T(32), 'X-Delete-At': String(base) })).status).toBe(400);

    expect((await same('DELETE', path('chunked'), { 'X-Timestamp': T(33) })).status).toBe(204);
    expect((await same('DELETE', path('chunked'), { 'X-Timestamp': T(33) })).status).toBe(404);
    expect((await same('DELETE', path('new'), { 'X-Timestamp': T(20) })).status).toBe(409);
    expect((await same('DELETE', path('never-was'), { 'X-Timestamp': T(34) })).status).toBe(404);
    expect((await same('DELETE', path('never-was2'), { 'X-Timestamp': T(35), 'X-If-Delete-At': String(base) })).status).toBe(404);

    const tree = async (devices: string) => (await swiftOps(sbx, [{ op: 'tree', devices, device: 'sdb', partition: PART }]))[0];
    const [ta, tb] = [await tree(ours.server.options.devices), await tree(swift.devices)];
    expect(ta).toEqual(tb);
    for (const [p, f] of Object.entries(ta)) expect(Object.keys((f as { metadata: object }).metadata), p).toEqual(Object.keys(tb[p].metadata));
    const names = Object.keys(ta).map((p) => p.split('/').pop());
    expect(names).toContain(`${T(20)}#1#d.data`);
    expect(names).toContain(`${T(21)}#1.data`);
    expect(names).toContain(`${T(30)}+0.meta`);
    expect(names).toContain(`${T(34)}.ts`);
    // And what was put reads back.
    const g = await same('GET', path('new'));
    expect(g.body.equals(body)).toBe(true);
  });

  it("a proxy's multiphase MIME PUT (100-continue, metadata footer, commit): the same exchange and files as Swift", async () => {
    const fa = Buffer.from(ec.encode(obj(9000, 4))[4]!);
    const faMd5 = createHash('md5').update(fa).digest('hex');
    const boundary = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const footer = Buffer.from(
      JSON.stringify({
        'X-Object-Sysmeta-Ec-Frag-Index': '4',
        'X-Object-Sysmeta-Ec-Etag': 'f'.repeat(32),
        'X-Object-Sysmeta-Ec-Content-Length': '9000',
        'X-Object-Sysmeta-Ec-Scheme': 'liberasurecode_rs_vand 4+2',
        'X-Object-Sysmeta-Ec-Segment-Size': '1048576',
        'X-Backend-Container-Update-Override-Etag': 'f'.repeat(32),
        'X-Backend-Container-Update-Override-Size': '9000',
        Etag: faMd5,
      }),
    );
    const chunk = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const phase1 = Buffer.concat([
      chunk(Buffer.from(`--${boundary}\r\nX-Document: object body\r\n\r\n`)),
      chunk(fa.subarray(0, 1000)),
      chunk(fa.subarray(1000)),
      chunk(
        Buffer.concat([
          Buffer.from(`\r\n--${boundary}\r\nX-Document: object metadata\r\nContent-MD5: ${createHash('md5').update(footer).digest('hex')}\r\n\r\n`),
          footer,
          Buffer.from(`\r\n--${boundary}\r\n`),
        ]),
      ),
      // The proxy closes the first phase with an empty chunk.
      Buffer.from('0\r\n\r\n'),
    ]);
    const phase2 = Buffer.concat([chunk(Buffer.from(`X-Document: put commit\r\n\r\nput_commit_confirmation\r\n--${boundary}--`)), Buffer.from('0\r\n\r\n')]);
    const head =
      `PUT ${path('mime')} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nX-Backend-Storage-Policy-Index: 1\r\n` +
      `X-Timestamp: ${T(60)}\r\nContent-Type: application/x-mime\r\nX-Object-Meta-Via: proxy\r\nX-Backend-Obj-Content-Length: ${fa.length}\r\n` +
      `X-Backend-Obj-Multipart-Mime-Boundary: ${boundary}\r\nX-Backend-Obj-Metadata-Footer: yes\r\nX-Backend-Obj-Multiphase-Commit: yes\r\nConnection: close\r\n\r\n`;
    const exchange = (port: number) =>
      new Promise<string[]>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => s.write(head));
        let buf = '';
        const seen: string[] = [];
        let step = 0;
        s.on('data', (d: Buffer) => {
          buf += d.toString('latin1');
          for (;;) {
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0 || step >= 2) break;
            seen.push(buf.slice(0, end).split('\r\n').filter((l) => !l.startsWith('Date:')).join('|'));
            buf = buf.slice(end + 4);
            s.write(step === 0 ? phase1 : phase2);
            step++;
          }
        });
        s.on('close', () => resolve([...seen, buf.split('\r\n').filter((l) => !l.startsWith('Date:')).join('|')]));
        s.on('error', reject);
      });
    const a = await exchange(ours.port);
    const b = await exchange(swift.port);
    expect(a).toEqual(b);
    expect(a[0]).toBe('HTTP/1.1 100 Continue|X-Obj-Multiphase-Commit: yes|X-Obj-Metadata-Footer: yes');
    expect(a[2]).toMatch(/^HTTP\/1\.1 201 Created\|/);
    const tree = async (devices: string) => (await swiftOps(sbx, [{ op: 'tree', devices, device: 'sdb', partition: PART }]))[0];
    const [ta, tb] = [await tree(ours.server.options.devices), await tree(swift.devices)];
    const mime = (t: Record<string, unknown>) => Object.fromEntries(Object.entries(t).filter(([p]) => p.includes(`${T(60)}`)));
    expect(Object.keys(mime(ta))).toHaveLength(1);
    expect(Object.keys(mime(ta))[0]).toMatch(new RegExp(`${T(60)}#4#d\\.data$`));
    expect(mime(ta)).toEqual(mime(tb));
    expect((await same('GET', path('mime'))).body.equals(fa)).toBe(true);
  });

  it('bad paths, policies and methods: refused with a clear status; Swift agrees where it has an answer', async () => {
    expect((await same('GET', '/sdb/5/AUTH_test/c')).status).toBe(400);
    expect((await same('GET', '/../5/AUTH_test/c/o')).status).toBe(400);
    expect((await same('GET', '/sdb/../AUTH_test/c/o')).status).toBe(400);
    expect((await same('GET', '/sdb/5/AUTH_test/c/o', { 'X-Backend-Storage-Policy-Index': '7' })).status).toBe(503);
    expect((await same('GET', '/nodev/5/AUTH_test/c/o')).status).toBe(507);
    expect((await same('FOO', '/sdb/5/AUTH_test/c/o')).status).toBe(405);
    expect((await same('REPLICATE', '/sdb')).status).toBe(400);
    // Where fragmend is stricter than Swift: partitions are numbers, policies erasure-coded.
    const bad = await request(ours.port, 'GET', '/sdb/5x/AUTH_test/c/o', P1);
    expect([bad.status, bad.body.toString()]).toEqual([400, 'Invalid partition: 5x']);
    const repl = await request(ours.port, 'GET', '/sdb/5/AUTH_test/c/o', { 'X-Backend-Storage-Policy-Index': '0' });
    expect(repl.status).toBe(400);
    expect(repl.body.toString()).toMatch(/erasure-coded policies only: policy 0 \(repl\) is a replication policy/);
    const none = await request(ours.port, 'PUT', '/sdb/5/AUTH_test/c/o', { 'X-Timestamp': T(40), 'Content-Type': 'a/b' }, 'x');
    expect(none.status).toBe(400);
  });

  it('malformed HTTP is answered and closed; the server keeps serving', async () => {
    const raw = async (bytes: string) =>
      new Promise<string>((resolve) => {
        const s = connect(ours.port, '127.0.0.1', () => s.write(bytes));
        let out = '';
        s.on('data', (d: Buffer) => (out += d.toString('latin1')));
        s.on('close', () => resolve(out));
        s.on('error', () => resolve(out));
      });
    expect(await raw('this is not http\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(`GET /${'a'.repeat(10_000)} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 414 /);
    expect(await raw(`GET /sdb/5/a/c/o HTTP/1.1\r\nX-Big: ${'b'.repeat(70_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw('PUT /sdb/5/a/c/o HTTP/1.1\r\nContent-Length: 12x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    // Two requests on one keep-alive connection, the second one pipelined.
    const two = await raw(`HEAD ${path('obj')} HTTP/1.1\r\nX-Backend-Storage-Policy-Index: 1\r\n\r\nGET ${path('tomb')} HTTP/1.1\r\nX-Backend-Storage-Policy-Index: 1\r\nConnection: close\r\n\r\n`);
    expect(two.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 404']);
    expect((await request(ours.port, 'HEAD', path('obj'), P1)).status).toBe(200);
  });

  it('a device that is not mounted (mount_check) is 507 for every verb', async () => {
    const strict = new ObjectServer({ devices: ours.server.options.devices, mountCheck: true, bindIp: '127.0.0.1', bindPort: 0, swiftConf: sbx.swiftConf, logRequests: false, logLevel: 'ERROR' });
    const { port } = await strict.start();
    try {
      for (const [m, p] of [
        ['GET', path('obj')],
        ['PUT', path('obj')],
        ['DELETE', path('obj')],
        ['REPLICATE', `/sdb/${PART}`],
        ['SSYNC', `/sdb/${PART}`],
      ] as const) {
        expect((await request(port, m, p, { ...P1, 'X-Timestamp': T(50) })).status, m).toBe(507);
      }
    } finally {
      await strict.stop();
    }
  });
});
