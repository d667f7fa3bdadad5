// A GET of an EC archive whose fragment headers are corrupt, against fragmend's object server
// and a real swift-object-server over identical devices: Swift's ECDiskFileReader checks every
// fragment_size slice with PyECLib's get_metadata, quarantines the archive when one is refused
// and cuts the response; fragmend's server must do the same, and leave alone what Swift leaves
// alone (a corrupt payload under a good header and a matching ETag). What Swift only finds at
// the end (an MD5 that does not match, a bad last header), fragmend's finds before sending the
// last bytes. Ranged and multi-range GETs are checked where Swift's reader checks them: ranges
// from the first byte, as far as its disk_chunk_size reads go. The FragmentCheck unit cases are
// held against PyECLib's get_metadata on the same bytes.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDriver } from '../../src/codec/index.js';
import { FragmentCheck } from '../../src/swift/archive-check.js';
import { ECDiskFileManager } from '../../src/swift/diskfile.js';
import { hashPath } from '../../src/swift/hash-path.js';
import { PYTHON, pyeclibEnabled } from '../helpers/pyeclib.js';
import { makeSandbox, PREFIX, realSwiftEnabled, request, startOurServer, startSwiftServer, SUFFIX, type LogCapture, type Sandbox, type SwiftServer } from './harness.js';
import type { ObjectServer } from '../../src/server/object-server.js';

const PART = 5;
const SEGMENT = 1048576;
const enabled = realSwiftEnabled();
const P1 = { 'X-Backend-Storage-Policy-Index': '1' };

/** A 4+2 archive of fragment index `fi` of an object: one fragment per 1 MiB segment. */
function archiveOf(ec: ECDriver, object: Uint8Array, fi: number): Buffer {
  const parts: Buffer[] = [];
  for (let off = 0; off < object.length; off += SEGMENT) parts.push(Buffer.from(ec.encode(object.subarray(off, off + SEGMENT))[fi]!));
  return Buffer.concat(parts);
}

const objectBytes = (size: number, seed: number) => new Uint8Array(size).map((_, i) => (i * 7 + seed * 13) & 0xff);

describe('FragmentCheck: the slices PyECLib get_metadata refuses', () => {
  let ec: ECDriver;
  beforeAll(async () => {
    ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
  });

  it.runIf(pyeclibEnabled())('refuses what get_metadata refuses, accepts what it accepts', () => {
    const frag = Buffer.from(ec.encode(objectBytes(1000, 1))[0]!);
    const cases: Array<[string, Buffer]> = [['good', frag]];
    const flip = (at: number) => {
      const b = Buffer.from(frag);
      b[at]! ^= 0x10;
      return b;
    };
    cases.push(['index flipped', flip(0)], ['size flipped', flip(5)], ['magic flipped', flip(60)], ['metadata checksum flipped', flip(68)], ['payload flipped', flip(200)]);
    cases.push(['padding flipped', flip(75)], ['header only', frag.subarray(0, 80)], ['79 bytes', frag.subarray(0, 79)], ['10 bytes', frag.subarray(0, 10)]);
    const v0 = Buffer.from(frag);
    v0.fill(0, 63, 67);
    cases.push(['libec_version 0', v0]);
    const ours = cases.map(([, b]) => {
      const c = new FragmentCheck(b.length + 1000);
      expect(c.take(b)).toBeNull();
      return c.finish() === null;
    });
    const script = [
      'import sys, json',
      'from pyeclib.ec_iface import ECDriver',
      "d = ECDriver(k=4, m=2, ec_type='liberasurecode_rs_vand')",
      'out = []',
      'for h in json.load(sys.stdin):',
      '    try:',
      '        d.get_metadata(bytes.fromhex(h)); out.append(True)',
      '    except Exception as e:',
      '        out.append(type(e).__name__)',
      'print(json.dumps(out))',
    ].join('\n');
    const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(cases.map(([, b]) => b.toString('hex'))), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const theirs = JSON.parse(r.stdout) as Array<true | string>;
    expect(theirs.filter((t) => t !== true && t !== 'ECInvalidFragmentMetadata')).toEqual([]);
    expect(Object.fromEntries(cases.map(([n], i) => [n, ours[i]]))).toEqual(Object.fromEntries(cases.map(([n], i) => [n, theirs[i] === true])));
    // the cases cover both answers
    expect(new Set(ours)).toEqual(new Set([true, false]));
  });

  it('checks each slice once it is whole, wherever the reads fall, and names its offset', () => {
    const object = objectBytes(2 * SEGMENT + 500_000, 2);
    const archive = archiveOf(ec, object, 1);
    const size = 262_224; // one fragment of a 1 MiB segment of a 4+2 policy, header included
    const bad = Buffer.from(archive);
    bad[size + 60]! ^= 0xff; // the second fragment's magic
    for (const step of [1, 79, 4096, 65536, 262144, archive.length]) {
      const good = new FragmentCheck(size);
      const check = new FragmentCheck(size);
      let found: string | null = null;
      let at = -1;
      for (let off = 0; off < archive.length; off += step) expect(good.take(archive.subarray(off, off + step))).toBeNull();
      expect(good.finish()).toBeNull();
      for (let off = 0; off < bad.length && !found; off += step) {
        found = check.take(bad.subarray(off, off + step));
        if (found) at = Math.min(off + step, bad.length);
      }
      expect(found, `reads of ${step}`).toBe(`Invalid EC metadata at offset 0x${size.toString(16)}`);
      // not before the second slice is whole
      expect(at).toBeGreaterThanOrEqual(2 * size);
      expect(at - step).toBeLessThan(2 * size);
    }
    // the last, partial slice is checked at the end only
    const lastBad = Buffer.from(archive);
    lastBad[2 * size + 61]! ^= 0xff;
    const c = new FragmentCheck(size);
    expect(c.take(lastBad)).toBeNull();
    expect(c.finish()).toBe(`Invalid EC metadata at offset 0x${(2 * size).toString(16)}`);
    // a tail too short to hold a header
    const t = new FragmentCheck(size);
    expect(t.take(Buffer.concat([archive.subarray(0, size), archive.subarray(size, size + 20)]))).toBeNull();
    expect(t.finish()).toBe(`Invalid EC metadata at offset 0x${size.toString(16)}`);
  });
});

describe.runIf(enabled)('object server: GET of an archive with corrupt fragment headers, as Swift answers it', () => {
  let sbx: Sandbox;
  let ours: { server: ObjectServer; port: number; logs: LogCapture };
  let swift: SwiftServer;
  let ec: ECDriver;
  let ourDevices: string;
  let swiftDevices: string;
  const ts = `${Math.floor(Date.now() / 1000) - 1000}.00000`;
  const FRAG = 262_224;
  const archives = new Map<string, Buffer>();

  /**
   * Objects by name: how their archive is spoiled after it is made, and whether the ETag stored
   * is that of the spoiled bytes (corrupt before the PUT) or of the good ones (rot on disk).
   */
  const spoil: Record<string, { at?: number[]; etagOfStored: boolean }> = {
    good: { etagOfStored: true },
    'first-header': { at: [61], etagOfStored: true },
    'second-header': { at: [FRAG + 67], etagOfStored: true },
    'last-header': { at: [2 * FRAG + 2], etagOfStored: true },
    'payload-only': { at: [FRAG + 5000], etagOfStored: true },
    'payload-rot': { at: [FRAG + 5000], etagOfStored: false },
    'header-rot': { at: [FRAG + 60], etagOfStored: false },
    'ranged-first-header': { at: [61], etagOfStored: true },
    'ranged-late': { at: [61], etagOfStored: true },
    'ranged-rot': { at: [FRAG + 5000], etagOfStored: false },
    'multi-first': { at: [61], etagOfStored: true },
    'multi-second': { at: [61], etagOfStored: true },
    'multi-late': { at: [61], etagOfStored: true },
    'multi-to-end': { at: [2 * FRAG + 2], etagOfStored: false },
    'multi-to-end-last': { at: [2 * FRAG + 2], etagOfStored: true },
    'chunk-overshoot': { at: [61], etagOfStored: true },
  };

  async function populate(devices: string) {
    const mgr = new ECDiskFileManager({ devices, mountCheck: false, hashPrefix: PREFIX, hashSuffix: SUFFIX });
    let seed = 0;
    for (const [name, how] of Object.entries(spoil)) {
      const object = objectBytes(2 * SEGMENT + 400_000, ++seed);
      const good = archiveOf(ec, object, 2);
      const stored = Buffer.from(good);
      for (const at of how.at ?? []) stored[at]! ^= 0x5a;
      archives.set(name, stored);
      const df = mgr.diskFile(join(devices, 'sdb'), PART, 'AUTH_test', 'c', name, sbx.policy, { fragIndex: 2 });
      const w = df.writer(stored.length);
      await w.open();
      try {
        await w.write(stored);
        await w.put({
          'X-Timestamp': ts,
          'Content-Type': 'application/octet-stream',
          'Content-Length': String(stored.length),
          ETag: createHash('md5')
            .update(how.etagOfStored ? stored : good)
            .digest('hex'),
          'X-Object-Sysmeta-Ec-Frag-Index': '2',
          'X-Object-Sysmeta-Ec-Etag': createHash('md5').update(object).digest('hex'),
          'X-Object-Sysmeta-Ec-Content-Length': String(object.length),
          'X-Object-Sysmeta-Ec-Scheme': 'liberasurecode_rs_vand 4+2',
          'X-Object-Sysmeta-Ec-Segment-Size': String(SEGMENT),
        });
        await w.commit(ts);
      } finally {
        await w.close();
      }
    }
  }

  beforeAll(async () => {
    ec = await ECDriver.create({ k: 4, m: 2, ecType: 'liberasurecode_rs_vand' });
    sbx = makeSandbox('fragcheck');
    expect(sbx.policy.ec!.fragmentSize).toBe(FRAG);
    ourDevices = sbx.devices('ours');
    swiftDevices = sbx.devices('swift');
    await populate(ourDevices);
    await populate(swiftDevices);
    ours = await startOurServer(sbx, ourDevices);
    swift = await startSwiftServer(sbx, 'swift-fragcheck', swiftDevices);
  });

  afterAll(async () => {
    await ours?.server.stop();
    await swift?.stop();
    sbx?.cleanup();
  });

  const objPath = (name: string) => `/sdb/${PART}/AUTH_test/c/${name}`;
  /** The archive's files under quarantined/, or null when it was not quarantined. */
  function quarantined(devices: string, name: string): string[] | null {
    const dir = join(devices, 'sdb', 'quarantined', 'objects-1', hashPath(PREFIX, SUFFIX, 'AUTH_test', 'c', name));
    return existsSync(dir) ? readdirSync(dir).sort() : null;
  }

  /** GET on both servers; what each sent and whether each quarantined the archive. */
  async function both(name: string, headers: Record<string, string> = {}) {
    const out = [];
    for (const [port, devices] of [
      [ours.port, ourDevices],
      [swift.port, swiftDevices],
    ] as const) {
      const r = await request(port, 'GET', objPath(name), { ...P1, ...headers });
      const length = Number(r.header('Content-Length'));
      // Swift quarantines from a thread of its own: give either a moment
      let q = quarantined(devices, name);
      for (let i = 0; i < 50 && q === null && spoil[name]!.at; i++) {
        await new Promise((res) => setTimeout(res, 20));
        q = quarantined(devices, name);
      }
      out.push({ status: r.status, complete: r.body.length === length, body: r.body, quarantined: q });
    }
    return { ours: out[0]!, swift: out[1]! };
  }

  it('an archive with good headers is served whole and kept, by both', async () => {
    for (const name of ['good', 'payload-only']) {
      const { ours: a, swift: b } = await both(name);
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      expect(a.complete && b.complete).toBe(true);
      expect(a.body.equals(archives.get(name)!)).toBe(true);
      expect(b.body.equals(archives.get(name)!)).toBe(true);
      expect([a.quarantined, b.quarantined]).toEqual([null, null]);
    }
  });

  it('a bad header in a whole slice: the response is cut before that slice ends and the archive quarantined, by both', async () => {
    for (const name of ['first-header', 'second-header', 'header-rot']) {
      const { ours: a, swift: b } = await both(name);
      expect(a.status, name).toBe(200);
      expect(b.status, name).toBe(200);
      expect([a.complete, b.complete], name).toEqual([false, false]);
      const firstBad = Math.floor(spoil[name]!.at![0]! / FRAG);
      for (const r of [a, b]) {
        // what was sent is the archive's start, short of the end of the bad slice
        expect(r.body.length, name).toBeLessThan((firstBad + 1) * FRAG);
        expect(r.body.equals(archives.get(name)!.subarray(0, r.body.length)), name).toBe(true);
      }
      expect(a.quarantined, name).not.toBeNull();
      expect(a.quarantined, name).toEqual(b.quarantined);
      expect(ours.logs.has(new RegExp(`Invalid EC metadata at offset 0x${(firstBad * FRAG).toString(16)}`)), name).toBe(true);
      // gone for the next GET
      expect((await request(ours.port, 'GET', objPath(name), P1)).status).toBe(404);
      expect((await request(swift.port, 'GET', objPath(name), P1)).status).toBe(404);
    }
  });

  // What Swift finds only once the file is read to its end (the last fragment's header, the MD5)
  // it finds having sent the whole archive; fragmend's server checks it before the last bytes go
  // out, and cuts the response there: the client takes the archive from elsewhere rather than
  // use wrong bytes. Both quarantine the archive to the same place.
  for (const [name, what] of [
    ['last-header', 'a bad header in the last, partial slice'],
    ['payload-rot', 'payload rot under good headers (its MD5 no longer matches)'],
  ] as const) {
    it(`${what}: Swift serves it whole, fragmend cuts it before its end; both quarantine it`, async () => {
      const { ours: a, swift: b } = await both(name);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect([a.complete, b.complete]).toEqual([false, true]);
      expect(b.body.equals(archives.get(name)!)).toBe(true);
      expect(a.body.equals(archives.get(name)!.subarray(0, a.body.length))).toBe(true);
      expect(a.quarantined).not.toBeNull();
      expect(a.quarantined).toEqual(b.quarantined);
    });
  }

  it('a range from the start covering a bad slice is cut and quarantines; one that does not start at 0 checks nothing', async () => {
    const late = await both('ranged-late', { Range: `bytes=1000-${FRAG + 1000}` });
    expect([late.ours.status, late.swift.status]).toEqual([206, 206]);
    expect([late.ours.complete, late.swift.complete]).toEqual([true, true]);
    expect([late.ours.quarantined, late.swift.quarantined]).toEqual([null, null]);
    const first = await both('ranged-first-header', { Range: `bytes=0-${FRAG + 1000}` });
    expect([first.ours.status, first.swift.status]).toEqual([206, 206]);
    expect([first.ours.complete, first.swift.complete]).toEqual([false, false]);
    expect(first.ours.quarantined).not.toBeNull();
    expect(first.ours.quarantined).toEqual(first.swift.quarantined);
  });

  it('a range from the first byte to the last is checked as a whole GET: Swift quarantines it after, fragmend before its end', async () => {
    const { ours: a, swift: b } = await both('ranged-rot', { Range: 'bytes=0-' });
    expect([a.status, b.status]).toEqual([206, 206]);
    expect([a.complete, b.complete]).toEqual([false, true]);
    expect(a.quarantined).not.toBeNull();
    expect(a.quarantined).toEqual(b.quarantined);
  });

  // A multi-range GET: Swift's reader checks the fragments of each range that starts at 0, and
  // makes its end checks only when its last range starts at 0 and reads to the end (it makes
  // them on closing, after the last range).
  it('a multi-range GET checks the fragments of a range from the start, first or not; ranges elsewhere check nothing', async () => {
    for (const [name, range] of [
      ['multi-first', `bytes=0-${FRAG - 1},${2 * FRAG}-${2 * FRAG + 99}`],
      ['multi-second', `bytes=${2 * FRAG}-${2 * FRAG + 99},0-${FRAG - 1}`],
    ] as const) {
      const { ours: a, swift: b } = await both(name, { Range: range });
      expect([a.status, b.status], name).toEqual([206, 206]);
      expect([a.complete, b.complete], name).toEqual([false, false]);
      expect(a.quarantined, name).not.toBeNull();
      expect(a.quarantined, name).toEqual(b.quarantined);
    }
    const late = await both('multi-late', { Range: `bytes=100-199,${FRAG}-${FRAG + 99}` });
    expect([late.ours.status, late.swift.status]).toEqual([206, 206]);
    expect([late.ours.complete, late.swift.complete]).toEqual([true, true]);
    expect([late.ours.quarantined, late.swift.quarantined]).toEqual([null, null]);
  });

  it('a multi-range GET reading to the end makes the end checks only in its last range', async () => {
    // a bad last header and a wrong MD5, read to the end by a range that is not the last: unchecked
    const notLast = await both('multi-to-end', { Range: 'bytes=0-,100-199' });
    expect([notLast.ours.status, notLast.swift.status]).toEqual([206, 206]);
    expect([notLast.ours.complete, notLast.swift.complete]).toEqual([true, true]);
    expect(notLast.ours.body.length).toBe(notLast.swift.body.length);
    expect([notLast.ours.quarantined, notLast.swift.quarantined]).toEqual([null, null]);
    // the same read as the last range: both cut the response and quarantine the archive
    const last = await both('multi-to-end-last', { Range: 'bytes=100-199,0-' });
    expect([last.ours.status, last.swift.status]).toEqual([206, 206]);
    expect([last.ours.complete, last.swift.complete]).toEqual([false, false]);
    expect(last.ours.quarantined).not.toBeNull();
    expect(last.ours.quarantined).toEqual(last.swift.quarantined);
  });

  it("a range from the start is checked as far as Swift's disk_chunk_size reads go, past its end", async () => {
    // The reader reads 64 KiB chunks until one goes past the range's end. Ten bytes short of
    // the fourth chunk's end, it stops there, short of the first fragment's end (262224): nothing
    // whole to check.
    const short = await both('chunk-overshoot', { Range: `bytes=0-${4 * 65536 - 11}` });
    expect([short.ours.complete, short.swift.complete]).toEqual([true, true]);
    expect([short.ours.quarantined, short.swift.quarantined]).toEqual([null, null]);
    // Ending exactly at the fourth chunk's end, it reads a fifth, which completes the bad first
    // fragment: Swift has sent the whole range and quarantines; fragmend checks before sending
    // the range's last piece, and cuts it there.
    const over = await both('chunk-overshoot', { Range: `bytes=0-${4 * 65536 - 1}` });
    expect([over.ours.status, over.swift.status]).toEqual([206, 206]);
    expect([over.ours.complete, over.swift.complete]).toEqual([false, true]);
    expect(over.ours.quarantined).not.toBeNull();
    expect(over.ours.quarantined).toEqual(over.swift.quarantined);
  });

  it('says so when it checks the MD5 before the last byte (a whole GET), and only then', async () => {
    const whole = await request(ours.port, 'GET', objPath('good'), P1);
    expect(whole.header('X-Backend-Archive-Checked')).toBe('etag');
    const from0 = await request(ours.port, 'GET', objPath('good'), { ...P1, Range: 'bytes=0-' });
    expect(from0.header('X-Backend-Archive-Checked')).toBe('etag');
    for (const range of ['bytes=0-999', 'bytes=5-', 'bytes=0-9,20-29']) {
      const r = await request(ours.port, 'GET', objPath('good'), { ...P1, Range: range });
      expect(r.status, range).toBe(206);
      expect(r.header('X-Backend-Archive-Checked'), range).toBeUndefined();
    }
  });

  it('the server keeps serving after cutting a response', async () => {
    const r = await request(ours.port, 'GET', objPath('good'), P1);
    expect(r.status).toBe(200);
    expect(r.body.equals(archives.get('good')!)).toBe(true);
  });
});
