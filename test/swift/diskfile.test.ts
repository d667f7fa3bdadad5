// The EC disk layer against Swift's own diskfile code on the same directories: what fragmend
// writes, Swift opens with the same metadata and data; what Swift writes, fragmend reads the
// same way; both compute the same suffix hashes and yield the same objects, and each reads the
// other's hashes.pkl.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { ConfigParser } from '../../src/swift/conf.js';
import { ArchiveReadCheck, diskFileCheck } from '../../src/swift/archive-check.js';
import { DiskFileDeleted, DiskFileNotExist, DiskFileQuarantined, ECDiskFileManager } from '../../src/swift/diskfile.js';
import { consolidateHashes, invalidateHash, readHashes } from '../../src/swift/hashes.js';
import { getOnDiskFiles } from '../../src/swift/ondisk.js';
import { parseSwiftConf, type StoragePolicy } from '../../src/swift/policies.js';
import { Timestamp } from '../../src/swift/timestamp.js';
import { swiftPythonEnabled } from '../helpers/swift-python.js';

import { PREFIX, SUFFIX, swift } from '../helpers/swift-ec-diskfile.js';

const hashesJson = (h: Map<string, Map<number | null, string> | null>) =>
  Object.fromEntries([...h].map(([s, d]) => [s, d ? Object.fromEntries([...d].map(([k, v]) => [k === null ? 'null' : String(k), v])) : null]));

let policy: StoragePolicy;
let ec: ECDriver;
// Swift's reader checks every fragment it serves (and quarantines bad ones), so bodies are
// real one-segment fragment archives.
const archive = (seed: number, fi: number, size = 4000) => ec.encode(new Uint8Array(size).map((_, i) => (i * 31 + seed) & 0xff))[fi]!;
beforeAll(async () => {
  ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
  const p = new ConfigParser({ strict: false });
  p.readString(
    `[swift-hash]\nswift_hash_path_prefix = ${PREFIX}\nswift_hash_path_suffix = ${SUFFIX}\n` +
      '[storage-policy:0]\nname = repl\ndefault = yes\n' +
      '[storage-policy:1]\nname = ec42\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n',
  );
  policy = parseSwiftConf(p).policies.byIndex(1)!;
});

const root = mkdtempSync(join(tmpdir(), 'fragmend-disk-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function newDevices(): { devices: string; dev: string; mgr: ECDiskFileManager } {
  const devices = join(root, `devs${n++}`);
  mkdirSync(join(devices, 'sda'), { recursive: true });
  const mgr = new ECDiskFileManager({ devices, mountCheck: false, hashPrefix: PREFIX, hashSuffix: SUFFIX });
  return { devices, dev: join(devices, 'sda'), mgr };
}

const baseMeta = (ts: string, fi: number, body: Uint8Array) => ({
  'X-Timestamp': ts,
  'Content-Type': 'application/octet-stream',
  'Content-Length': String(body.length),
  // The on-disk ETag is the md5 of the fragment archive; Swift's reader checks it.
  ETag: createHash('md5').update(body).digest('hex'),
  'X-Object-Sysmeta-Ec-Frag-Index': String(fi),
  'X-Object-Sysmeta-Ec-Etag': '0123456789abcdef0123456789abcdef',
  'X-Object-Sysmeta-Ec-Content-Length': '4000',
  'X-Object-Sysmeta-Ec-Scheme': 'liberasurecode_rs_vand 4+2',
  'X-Object-Sysmeta-Ec-Segment-Size': '1048576',
  'X-Object-Meta-Color': 'blue \u00e9',
});

describe.runIf(swiftPythonEnabled())('EC diskfiles, fragmend and Swift on the same device', () => {
  it('Swift opens what fragmend wrote: same metadata, data, durability; same suffix hashes', async () => {
    const { devices, dev, mgr } = newDevices();
    const objs = ['o1', 'o2', 'o\u00fcnicode', 'o4'];
    // Recent timestamps: anything older than reclaim_age (a week) is reclaimed on sight.
    const base = Math.floor(Date.now() / 1000) - 1000;
    const at = (d: number, rest = '.00000') => `${base + d}${rest}`;
    const ts = [at(0), at(1, '.12345'), at(2, '.00000_0000000000000003'), at(3)];
    for (let i = 0; i < objs.length; i++) {
      const df = mgr.diskFile(dev, 7, 'AUTH_a', 'c', objs[i]!, policy, { fragIndex: i % 6 });
      const body = archive(i, i % 6);
      const w = df.writer(body.length);
      await w.open();
      await w.write(body);
      // with fragmend's content check xattr, as its object server writes them
      await w.put(baseMeta(ts[i]!, i % 6, body), '.data', { contentMd5: createHash('md5').update(body).digest('hex') });
      if (i !== 3) await w.commit(ts[i]!); // o4 stays non-durable
      await w.close();
    }
    // A tombstone over o2 and a POST on o1.
    await mgr.diskFile(dev, 7, 'AUTH_a', 'c', 'o2', policy).delete(at(5));
    await mgr.diskFile(dev, 7, 'AUTH_a', 'c', 'o1', policy).writeMetadata({ 'X-Timestamp': at(6), 'X-Object-Meta-Color': 'red' });

    const theirs = swift(devices, [
      { op: 'open', part: 7, obj: 'o1', fi: 0 },
      { op: 'open', part: 7, obj: 'o2' },
      { op: 'open', part: 7, obj: 'o\u00fcnicode', fi: 2 },
      { op: 'open', part: 7, obj: 'o4', fi: 3 },
      { op: 'hashes', part: 7 },
      { op: 'yield', part: 7 },
    ]);
    const o1 = await mgr.diskFile(dev, 7, 'AUTH_a', 'c', 'o1', policy, { fragIndex: 0 }).open();
    expect(o1.contentCrc32).toBe(crc32(archive(0, 0)));
    expect(theirs[0].metadata).toEqual(o1.metadata);
    expect(theirs[0].metadata['X-Object-Meta-Color']).toBe('red');
    expect(theirs[0].datafile['X-Object-Meta-Color']).toBe('blue \u00e9');
    expect(Buffer.from(theirs[0].body, 'base64')).toEqual(Buffer.from(await o1.readAll()));
    expect(theirs[0].durable).toBe(at(0));
    expect(theirs[1]).toEqual({ deleted: at(5) });
    await expect(mgr.diskFile(dev, 7, 'AUTH_a', 'c', 'o2', policy).open()).rejects.toBeInstanceOf(DiskFileDeleted);
    expect(theirs[2].metadata.name).toBe('/AUTH_a/c/o\u00fcnicode');
    expect(theirs[3]).toEqual({ notexist: true }); // non-durable: not an object yet
    await expect(mgr.diskFile(dev, 7, 'AUTH_a', 'c', 'o4', policy, { fragIndex: 3 }).open()).rejects.toBeInstanceOf(DiskFileNotExist);

    const ours = await mgr.getHashes(dev, 7, policy);
    expect(hashesJson(ours.hashes)).toEqual(theirs[4]);
    const yielded: unknown[] = [];
    for await (const [h, info] of mgr.yieldHashes(dev, 7, policy)) {
      const r: Record<string, unknown> = { ts_data: info.tsData.internal };
      if (info.tsMeta) r.ts_meta = info.tsMeta.internal;
      if (info.durable !== undefined) r.durable = info.durable;
      yielded.push([h, r]);
    }
    const sortPairs = (xs: any[]) => [...xs].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    expect(sortPairs(yielded)).toEqual(sortPairs(theirs[5]));
  });

  it('fragmend reads what Swift wrote and agrees on hashes, tombstones, .meta and non-durables', async () => {
    const { devices, dev, mgr } = newDevices();
    const b64 = (seed: number, fi: number) => Buffer.from(archive(seed, fi)).toString('base64');
    const etag = (seed: number, fi: number) => createHash('md5').update(archive(seed, fi)).digest('hex');
    swift(devices, [
      { op: 'put', part: 3, obj: 'a', fi: 1, body: b64(1, 1), metadata: { 'X-Timestamp': '1700000100.00000', 'Content-Type': 'text/plain', ETag: etag(1, 1), 'X-Object-Sysmeta-Ec-Frag-Index': '1' } },
      { op: 'put', part: 3, obj: 'b', fi: 4, body: b64(2, 4), metadata: { 'X-Timestamp': '1700000101.00000', 'Content-Type': 'text/plain', ETag: etag(2, 4), 'X-Object-Sysmeta-Ec-Frag-Index': '4' }, durable: false },
      { op: 'put', part: 3, obj: 'c', fi: 5, body: b64(3, 5), metadata: { 'X-Timestamp': '1700000102.00000', 'Content-Type': 'text/plain', ETag: etag(3, 5), 'X-Object-Sysmeta-Ec-Frag-Index': '5' } },
      { op: 'delete', part: 3, obj: 'c', ts: '1700000103.00000' },
      { op: 'post', part: 3, obj: 'a', metadata: { 'X-Timestamp': '1700000104.00000', 'X-Object-Meta-K': 'v', 'Content-Type': 'text/x', 'Content-Type-Timestamp': '1700000104.00000' } },
    ]);
    const [hashes, yielded, openA] = swift(devices, [{ op: 'hashes', part: 3 }, { op: 'yield', part: 3 }, { op: 'open', part: 3, obj: 'a', fi: 1 }]);
    // Swift wrote hashes.pkl; fragmend reads it, and computes the same hashes from scratch.
    const partPath = join(dev, 'objects-1', '3');
    const pkl = await readHashes(partPath);
    expect(pkl.valid).toBe(true);
    expect(hashesJson(pkl.suffixes)).toEqual(hashes);
    rmSync(join(partPath, 'hashes.pkl'));
    const fresh = await mgr.getHashes(dev, 3, policy);
    expect(hashesJson(fresh.hashes)).toEqual(hashes);
    // And Swift reads the hashes.pkl fragmend just wrote.
    expect(swift(devices, [{ op: 'read_pkl', path: partPath }])[0]).toEqual(hashes);

    const a = await mgr.diskFile(dev, 3, 'AUTH_a', 'c', 'a', policy, { fragIndex: 1 }).open();
    expect(a.metadata).toEqual(openA.metadata);
    expect(a.metadata['Content-Type']).toBe('text/x');
    const names: string[] = [];
    for await (const [h, info] of mgr.yieldHashes(dev, 3, policy)) names.push(`${h}:${info.tsData.internal}:${info.durable ?? '-'}:${info.tsMeta?.internal ?? '-'}`);
    const theirNames = yielded.map(([h, i]: [string, any]) => `${h}:${i.ts_data}:${i.durable ?? '-'}:${i.ts_meta ?? '-'}`);
    expect(names.sort()).toEqual(theirNames.sort());
    // The non-durable b is invisible to a plain open but present with fragment preferences.
    await expect(mgr.diskFile(dev, 3, 'AUTH_a', 'c', 'b', policy).open()).rejects.toBeInstanceOf(DiskFileNotExist);
    const b = await mgr.diskFile(dev, 3, 'AUTH_a', 'c', 'b', policy, { fragPrefs: [] }).open();
    expect(b.metadata['X-Object-Sysmeta-Ec-Frag-Index']).toBe('4');
  });

  it('invalidations and recalculation: a changed suffix is rehashed, others are trusted', async () => {
    const { devices, dev, mgr } = newDevices();
    const body = new Uint8Array(20);
    for (const [obj, ts] of [['x1', '1700000200.00000'], ['x2', '1700000201.00000']]) {
      const w = mgr.diskFile(dev, 9, 'AUTH_a', 'c', obj!, policy, { fragIndex: 0 }).writer();
      await w.open();
      await w.write(body);
      await w.put(baseMeta(ts!, 0, body));
      await w.commit(ts!);
      await w.close();
    }
    const first = await mgr.getHashes(dev, 9, policy);
    expect(first.hashed).toBeGreaterThan(0);
    const again = await mgr.getHashes(dev, 9, policy);
    expect(again.hashed).toBe(0);
    const suffix = [...first.hashes.keys()][0]!;
    await invalidateHash(join(dev, 'objects-1', '9', suffix));
    expect(readFileSync(join(dev, 'objects-1', '9', 'hashes.invalid'), 'utf8')).toBe(`${suffix}\n`);
    const state = await consolidateHashes(join(dev, 'objects-1', '9'));
    expect(state.suffixes.get(suffix)).toBeNull();
    expect(readFileSync(join(dev, 'objects-1', '9', 'hashes.invalid'), 'utf8')).toBe('');
    const third = await mgr.getHashes(dev, 9, policy);
    expect(third.hashed).toBe(1);
    expect(hashesJson(third.hashes)).toEqual(swift(devices, [{ op: 'hashes', part: 9 }])[0]);
  });

  it('a recalculated suffix that hashes as before leaves hashes.pkl as it was; a changed one rewrites it', async () => {
    const { devices, dev, mgr } = newDevices();
    const body = new Uint8Array(20);
    const put = async (obj: string, ts: string) => {
      const w = mgr.diskFile(dev, 5, 'AUTH_a', 'c', obj, policy, { fragIndex: 0 }).writer();
      await w.open();
      await w.write(body);
      await w.put(baseMeta(ts, 0, body));
      await w.commit(ts);
      await w.close();
    };
    await put('y1', '1700000300.00000');
    const pkl = join(dev, 'objects-1', '5', 'hashes.pkl');
    const first = await mgr.getHashes(dev, 5, policy);
    const suffix = [...first.hashes.keys()][0]!;
    const written = readFileSync(pkl);
    const before = statSync(pkl);
    await new Promise((r) => setTimeout(r, 20));
    const same = await mgr.getHashes(dev, 5, policy, [suffix]);
    expect(same.hashed).toBe(1);
    expect(hashesJson(same.hashes)).toEqual(hashesJson(first.hashes));
    expect(statSync(pkl).mtimeMs).toBe(before.mtimeMs);
    expect(statSync(pkl).ino).toBe(before.ino);
    expect(readFileSync(pkl).equals(written)).toBe(true);
    // the same suffix with a newer object in it (no invalidation recorded): recalculation finds it
    const w = mgr.diskFile(dev, 5, 'AUTH_a', 'c', 'y1', policy, { fragIndex: 0 }).writer();
    await w.open();
    await w.write(body);
    await w.put(baseMeta('1700000301.00000', 0, body));
    await w.commit('1700000301.00000');
    await w.close();
    rmSync(join(dev, 'objects-1', '5', 'hashes.invalid'), { force: true });
    const changed = await mgr.getHashes(dev, 5, policy, [suffix]);
    expect(changed.hashes.get(suffix)).not.toEqual(first.hashes.get(suffix));
    expect(statSync(pkl).ino).not.toBe(before.ino);
    const onDisk = await readHashes(join(dev, 'objects-1', '5'));
    expect(onDisk.suffixes.get(suffix)).toEqual(changed.hashes.get(suffix));
    expect(hashesJson(changed.hashes)).toEqual(swift(devices, [{ op: 'hashes', part: 5 }])[0]);
  });
});

describe('disk layer without Swift', () => {
  it('a writer that is closed without put leaves nothing behind', async () => {
    const { dev, mgr } = newDevices();
    const w = mgr.diskFile(dev, 1, 'AUTH_a', 'c', 'gone', policy, { fragIndex: 0 }).writer();
    await w.open();
    await w.write(new Uint8Array(100));
    await w.close();
    expect(readdirSync(join(dev, 'tmp-1'))).toEqual([]);
    expect(existsSync(join(dev, 'objects-1'))).toBe(false);
  });

  it('purge removes exactly the reverted fragment and then the empty directory', async () => {
    const { dev, mgr } = newDevices();
    const body = new Uint8Array(8);
    const ts = '1700000300.00000';
    const df = mgr.diskFile(dev, 2, 'AUTH_a', 'c', 'p', policy, { fragIndex: 5 });
    const w = df.writer();
    await w.open();
    await w.write(body);
    await w.put(baseMeta(ts, 5, body));
    await w.commit(ts);
    await w.close();
    await df.purge(new Timestamp(ts), 4); // another index: nothing happens
    expect(readdirSync(df.datadir)).toEqual([`${ts}#5#d.data`]);
    await df.purge(new Timestamp(ts), 5);
    expect(existsSync(df.datadir)).toBe(false);
  });

  it('a corrupt metadata checksum quarantines the object', async () => {
    const { dev, mgr } = newDevices();
    const body = new Uint8Array(8);
    const ts = '1700000400.00000';
    const df = mgr.diskFile(dev, 4, 'AUTH_a', 'c', 'q', policy, { fragIndex: 1 });
    const w = df.writer();
    await w.open();
    await w.write(body);
    await w.put(baseMeta(ts, 1, body));
    await w.commit(ts);
    await w.close();
    const xattr = await import('@napi-rs/xattr');
    await xattr.setAttribute(join(df.datadir, `${ts}#1#d.data`), 'user.swift.metadata_checksum', Buffer.from('0'.repeat(32)));
    await expect(mgr.diskFile(dev, 4, 'AUTH_a', 'c', 'q', policy, { fragIndex: 1 }).open()).rejects.toBeInstanceOf(DiskFileQuarantined);
    expect(readdirSync(join(dev, 'quarantined', 'objects-1'))).toEqual([df.hash]);
  });

  it('reclaim: old tombstones and old non-durable fragments go, recent ones stay', async () => {
    const { dev } = newDevices();
    const mgr = new ECDiskFileManager({ devices: join(dev, '..'), mountCheck: false, hashPrefix: PREFIX, hashSuffix: SUFFIX, reclaimAge: 3600, commitWindow: 0 });
    const dir = join(dev, 'objects-1', '5', 'abc', 'f'.repeat(29) + 'abc');
    mkdirSync(dir, { recursive: true });
    const old = new Timestamp(Date.now() / 1000 - 7200);
    const recent = new Timestamp(Date.now() / 1000 - 60);
    writeFileSync(join(dir, `${old.internal}#2.data`), '');
    writeFileSync(join(dir, `${recent.internal}.ts`), '');
    const r = await mgr.cleanupOnDiskFiles(dir, { policy });
    expect(r.files).toEqual([`${recent.internal}.ts`]);
    expect(getOnDiskFiles(readdirSync(dir)).tsInfo?.timestamp.internal).toBe(recent.internal);
    expect(statSync(dir).isDirectory()).toBe(true);
  });
});

describe("fragmend's content check (the CRC-32 recorded with a .data file it writes)", () => {
  const CHECK = 'user.fragmend.content_crc32';
  const md5hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

  async function written(name: string, body: Uint8Array, opts: { contentMd5?: string; etag?: string } = {}) {
    const { dev, mgr } = newDevices();
    const ts = '1700000500.00000';
    const df = mgr.diskFile(dev, 3, 'AUTH_a', 'c', name, policy, { fragIndex: 2 });
    const w = df.writer();
    await w.open();
    // in two pieces: the CRC runs across writes
    await w.write(body.subarray(0, 1000));
    await w.write(body.subarray(1000));
    await w.put({ ...baseMeta(ts, 2, body), ...(opts.etag ? { ETag: opts.etag } : {}) }, '.data', { contentMd5: opts.contentMd5 });
    await w.commit(ts);
    await w.close();
    const file = join(df.datadir, `${ts}#2#d.data`);
    const open = () => mgr.diskFile(dev, 3, 'AUTH_a', 'c', name, policy, { fragIndex: 2 }).open();
    return { dev, file, open };
  }
  const xattr = () => import('@napi-rs/xattr');
  const stored = async (file: string) => {
    try {
      return (await (await xattr()).getAttribute(file, CHECK))?.toString('latin1') ?? null;
    } catch {
      return null;
    }
  };

  it('is written when the MD5 the writer was given is the ETag of the bytes written, and read back', async () => {
    const body = archive(7, 2);
    const { file, open } = await written('crc-ok', body, { contentMd5: md5hex(body) });
    expect(await stored(file)).toBe(`crc32 ${crc32(body).toString(16).padStart(8, '0')} ${body.length} ${md5hex(body)}`);
    expect((await open()).contentCrc32).toBe(crc32(body));
  });

  it('is not written without that MD5, when it is not the ETag, nor on .meta or .ts files', async () => {
    const body = archive(8, 2);
    const none = await written('crc-none', body);
    expect(await stored(none.file)).toBeNull();
    expect((await none.open()).contentCrc32).toBeNull();
    const other = await written('crc-other', body, { contentMd5: md5hex(body), etag: '0'.repeat(32) });
    expect(await stored(other.file)).toBeNull();
    const { dev, mgr } = newDevices();
    const df = mgr.diskFile(dev, 3, 'AUTH_a', 'c', 'crc-meta', policy);
    const now = Math.floor(Date.now() / 1000);
    await df.writeMetadata({ 'X-Timestamp': `${now - 2}.00000` });
    expect(readdirSync(df.datadir)).toEqual([`${now - 2}.00000.meta`]);
    expect(await stored(join(df.datadir, `${now - 2}.00000.meta`))).toBeNull();
    await df.delete(`${now - 1}.00000`);
    expect(readdirSync(df.datadir)).toEqual([`${now - 1}.00000.ts`]);
    expect(await stored(join(df.datadir, `${now - 1}.00000.ts`))).toBeNull();
  });

  it('is not used when it does not name the file as it is (another size or ETag, or a value not of this form)', async () => {
    const body = archive(9, 2);
    const { file, open } = await written('crc-stale', body, { contentMd5: md5hex(body) });
    const crc = crc32(body).toString(16).padStart(8, '0');
    for (const value of [`crc32 ${crc} ${body.length + 1} ${md5hex(body)}`, `crc32 ${crc} ${body.length} ${'1'.repeat(32)}`, `crc32 ${crc}`, 'garbage', `crc32 ${crc} ${body.length} ${md5hex(body)} more`]) {
      await (await xattr()).setAttribute(file, CHECK, Buffer.from(value));
      expect((await open()).contentCrc32, value).toBeNull();
    }
  });

  async function readThrough(file: string, df: Awaited<ReturnType<typeof written>>['open']) {
    const d = await df();
    const warnings: string[] = [];
    let md5Taken = 0;
    const opts = diskFileCheck(d, { warn: (m) => void warnings.push(m) });
    const check = new ArchiveReadCheck({
      ...opts,
      md5OfFile: () => {
        md5Taken++;
        return opts.md5OfFile!();
      },
    });
    const bytes = readFileSync(file);
    let error: unknown = null;
    try {
      for (let off = 0; off < bytes.length; off += 777) await check.take(bytes.subarray(off, off + 777));
      await check.eof();
    } catch (e) {
      error = e;
    }
    return { error, warnings, md5Taken, checksEtag: check.checksEtag };
  }

  it('checks an archive read whole by the CRC-32 alone; rot in its payload is confirmed by its MD5 and quarantined', async () => {
    const body = archive(10, 2, 40_000);
    const { dev, file, open } = await written('crc-read', body, { contentMd5: md5hex(body) });
    const good = await readThrough(file, open);
    expect(good).toEqual({ error: null, warnings: [], md5Taken: 0, checksEtag: true });
    // payload rot under a good header, in place (same inode and xattrs)
    const rotten = readFileSync(file);
    rotten[5000]! ^= 0x10;
    writeFileSync(file, rotten);
    const bad = await readThrough(file, open);
    expect(bad.md5Taken).toBe(1);
    expect(bad.error).toBeInstanceOf(DiskFileQuarantined);
    expect(String((bad.error as Error).message)).toMatch(new RegExp(`ETag ${md5hex(body)} and file's md5 ${md5hex(rotten)} do not match`));
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(join(dev, 'quarantined', 'objects-1')).length).toBe(1);
  });

  it('a record gone bad on good bytes costs an MD5 and a warning, not the archive', async () => {
    const body = archive(11, 2, 40_000);
    const { file, open } = await written('crc-badrecord', body, { contentMd5: md5hex(body) });
    const wrong = (crc32(body) ^ 1) >>> 0;
    await (await xattr()).setAttribute(file, CHECK, Buffer.from(`crc32 ${wrong.toString(16).padStart(8, '0')} ${body.length} ${md5hex(body)}`));
    const r = await readThrough(file, open);
    expect(r.error).toBeNull();
    expect(r.md5Taken).toBe(1);
    expect(r.warnings.join('\n')).toMatch(/content check recorded with .* does not match its bytes, which match its ETag/);
    expect(existsSync(file)).toBe(true);
  });
});
