// The direct decoders of hashes.pkl, REPLICATE answers and object metadata against the general
// reader: for every input each either declines (undefined) or gives exactly what loads() gives.
// Inputs are pickled by CPython's own pickle module at every protocol, then damaged at random.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { decodeHashPickle, decodeMetadataPickle, encodeHashPickle } from '../../src/swift/direct-pickle.js';
import { metadataFromLoads, metadataFromPickle, metadataToPickle } from '../../src/swift/metadata.js';
import { parseReplicatePickle, readHashes, replicatePickle, type SuffixHashes } from '../../src/swift/hashes.js';
import { dumps, loads, PickleDict, PickleFloat, type PickleValue } from '../../src/swift/pickle.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prngBelow } from '../helpers/prng.js';

const PYTHON = '/usr/bin/python3';

function pythonPickles(script: string = HASH_DOCS): Array<{ protocol: number; hex: string }> {
  const r = spawnSync(PYTHON, ['-'], { input: script, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error || r.status !== 0) {
    const why = r.error?.message ?? r.stderr;
    if (process.env.CI === 'true') throw new Error(`CI=true and ${PYTHON} cannot run: ${why}`);
    console.warn(`[skipped] CPython-written pickles: ${why}`);
    return [];
  }
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { protocol: number; hex: string });
}

const HASH_DOCS = String.raw`
import json, pickle, random, sys
rnd = random.Random(7)
def md5(): return '%032x' % rnd.getrandbits(128)
def suffix(): return '%03x' % rnd.getrandbits(12)
def hashes(n, shared=False):
    d = {}
    common = md5()
    for _ in range(n):
        r = rnd.random()
        if r < 0.1: d[suffix()] = None
        elif r < 0.2: d[suffix()] = {}
        else:
            inner = {}
            if rnd.random() < 0.8: inner[None] = common if shared and rnd.random() < 0.5 else md5()
            for _ in range(rnd.randrange(0, 3)): inner[rnd.choice([0, 1, 5, 13, 255, 256, 70000, -1, -2**31])] = md5()
            d[suffix()] = inner
    return d
docs = [{}, {'abc': None}, {'abc': {None: md5()}}, {'valid': True, 'updated': 1795580685.2271483},
        {'valid': False, 'updated': 1700000000.0}, {'valid': 1, 'updated': 12}]
for n in (1, 2, 3, 10, 999, 1000, 1001, 2500):
    docs.append(hashes(n))
    docs.append(hashes(n, shared=True))
    h = hashes(n); h['valid'] = rnd.random() < 0.5; h['updated'] = rnd.random() * 2e9
    docs.append(h)
for d in docs:
    for p in range(0, 6):
        sys.stdout.write(json.dumps({'protocol': p, 'hex': pickle.dumps(d, protocol=p).hex()}) + '\n')
`;

type Canon = unknown;

/** A comparable form of a decoded outer dict; floats keep their kind and exact bits. */
function canonValue(v: unknown): Canon {
  if (v instanceof PickleFloat) return ['float', Object.is(v.value, -0) ? '-0' : String(v.value)];
  if (typeof v === 'number') return ['num', Object.is(v, -0) ? '-0' : String(v)];
  if (v instanceof Map || v instanceof PickleDict) return ['dict', [...(v as Iterable<[unknown, unknown]>)].map(([k, x]) => [canonValue(k), canonValue(x)])];
  return v;
}

/** What the general reader makes of b, in the decoder's terms: the outer dict, 'other' or 'error'. */
function reference(b: Uint8Array): Canon {
  let v: PickleValue;
  try {
    v = loads(b);
  } catch {
    return 'error';
  }
  if (!(v instanceof PickleDict)) return 'other';
  for (const [k, x] of v) {
    if (typeof k !== 'string') return 'other';
    if (x instanceof PickleDict) {
      for (const [ik, iv] of x) if (!(ik === null || (typeof ik === 'number' && Number.isInteger(ik))) || typeof iv !== 'string') return 'other';
    } else if (!(x === null || typeof x === 'boolean' || typeof x === 'number' || x instanceof PickleFloat)) {
      return 'other';
    }
  }
  return canonValue(v);
}

/** decodeHashPickle either declines or agrees with loads(); returns whether it decoded. */
function agrees(b: Uint8Array): boolean {
  const fast = decodeHashPickle(b);
  if (fast === undefined) return false;
  expect(canonValue(fast)).toEqual(reference(b));
  return true;
}

const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const toHexStr = (b: Uint8Array) => Buffer.from(b).toString("hex");

/**
 * 6000 damaged copies of the samples at protocols 2+ shorter than maxHex (a byte changed, cut
 * short, inserted or deleted), each given to agrees(); how many it decoded and declined.
 */
function fuzz(samples: Array<{ protocol: number; hex: string }>, maxHex: number, seed: number, agrees: (b: Uint8Array) => boolean) {
  const rnd = prngBelow(seed);
  const bases = samples.filter((s) => s.protocol >= 2 && s.hex.length < maxHex).map((s) => fromHex(s.hex));
  let decoded = 0;
  let declined = 0;
  for (let i = 0; i < 6000; i++) {
    let b = new Uint8Array(bases[rnd(bases.length)]!);
    const kind = rnd(4);
    const at = rnd(b.length);
    if (kind === 0) b[at] = rnd(256);
    else if (kind === 1) b = b.subarray(0, at);
    else if (kind === 2) b = new Uint8Array([...b.subarray(0, at), rnd(256), ...b.subarray(at)]);
    else b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + 1)]);
    if (agrees(b)) decoded++;
    else declined++;
  }
  return { decoded, declined };
}

describe('decodeHashPickle', () => {
  const samples = pythonPickles();

  it('decodes what CPython pickles at protocols 2 to 5 exactly as loads() does, and leaves protocols 0 and 1 to it', () => {
    if (!samples.length) return;
    // protocols 4 and 5 cut pickles into frames of 64 KiB; only a single frame is decoded here
    const expected = (s: { protocol: number; hex: string }) => s.protocol === 2 || s.protocol === 3 || (s.protocol >= 4 && s.hex.length / 2 < 65536);
    for (const s of samples) {
      expect(agrees(fromHex(s.hex)), `protocol ${s.protocol}: ${s.hex.slice(0, 80)}`).toBe(expected(s));
    }
    expect(samples.filter((s) => s.protocol >= 4 && !expected(s)).length).toBeGreaterThan(0);
  });

  it('decodes our own dumps() of hashes.pkl and of REPLICATE answers', () => {
    const inner = new PickleDict([
      [null, 'a7586e2c2de497a619ce24b524ab7f4a'],
      [3, '2a5cc8bed689d3da8ae3dd1aa56a575e'],
    ]);
    const answer = dumps(new PickleDict([['147', inner], ['abc', null], ['fff', new PickleDict()]]), { protocol: 2 });
    expect(agrees(answer)).toBe(true);
    const state = dumps(new PickleDict([['valid', true], ['147', inner], ['updated', 1795580685.25]]), { protocol: 2 });
    expect(agrees(state)).toBe(true);
    expect([...decodeHashPickle(answer)!.keys()]).toEqual(['147', 'abc', 'fff']);
  });

  it('declines what is not of that shape, leaving the verdict to loads()', () => {
    const cases: PickleValue[] = [
      null,
      [1, 2],
      new PickleDict([[1, null]]), // an int suffix
      new PickleDict([['abc', 'str']]), // a str where a dict belongs
      new PickleDict([['abc', new PickleDict([['x', 'y']])]]), // a str index
      new PickleDict([['abc', new PickleDict([[5, 7]])]]), // an int hash
      new PickleDict([['abc', new PickleDict([[5, new PickleDict()]])]]), // a third level
      new PickleDict([['caf\u00e9', null]]), // not ASCII
      new PickleDict([['abc', new PickleDict([[2.5, 'x']])]]), // a float index
      new PickleDict([['abc', new PickleDict([[2n ** 40n, 'x']])]]), // a long index
    ];
    for (const c of cases) {
      const b = dumps(c, { protocol: 2 });
      expect(decodeHashPickle(b), toHexStr(b)).toBeUndefined();
    }
    // one dict under two suffixes (BINGET of a dict)
    const shared = fromHex('80027d710028580300000061616171017d71025803000000626262710368027552e'.replace('7552e', '752e'));
    expect((loads(shared) as PickleDict).size).toBe(2);
    expect(decodeHashPickle(shared)).toBeUndefined();
    expect(decodeHashPickle(new Uint8Array(0))).toBeUndefined();
    expect(decodeHashPickle(fromHex('80027d71002e00'))).toBeUndefined(); // trailing byte
    expect(decodeHashPickle(fromHex('80027d7100'))).toBeUndefined(); // no STOP
    expect(decodeHashPickle(fromHex('80027d71002e'))!.size).toBe(0);
  });

  it('damaged pickles: declined, or decoded exactly as loads() decodes them', () => {
    if (!samples.length) return;
    const { decoded, declined } = fuzz(samples, 4000, 0x2545f491, agrees);
    // both outcomes occur: the property was exercised both ways
    expect(decoded).toBeGreaterThan(100);
    expect(declined).toBeGreaterThan(100);
  });
});

describe('the readers that use it', () => {
  it('readHashes and parseReplicatePickle give the same results through either decoder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fragmend-hp-'));
    try {
      const inner = new PickleDict([[null, 'a7586e2c2de497a619ce24b524ab7f4a'], [5, '2a5cc8bed689d3da8ae3dd1aa56a575e']]);
      const doc = new PickleDict([['valid', true], ['9ec', inner], ['abc', null], ['updated', 1795580685.2271483]]);
      // the same document at protocol 1 takes the general reader
      for (const protocol of [1, 2]) {
        writeFileSync(join(dir, 'hashes.pkl'), dumps(doc, { protocol }));
        const st = await readHashes(dir);
        expect(st.valid).toBe(true);
        expect(st.updated).toBe(1795580685.2271483);
        expect([...st.suffixes.keys()]).toEqual(['9ec', 'abc']);
        expect([...st.suffixes.get('9ec')!]).toEqual([[null, 'a7586e2c2de497a619ce24b524ab7f4a'], [5, '2a5cc8bed689d3da8ae3dd1aa56a575e']]);
        expect(st.suffixes.get('abc')).toBeNull();
      }
      // a suffix that is not three hex digits makes hashes.pkl invalid, as before
      writeFileSync(join(dir, 'hashes.pkl'), dumps(new PickleDict([['valid', true], ['xyz', null]]), { protocol: 2 }));
      expect((await readHashes(dir)).valid).toBe(false);
      for (const protocol of [1, 2]) {
        const answer = dumps(new PickleDict([['9ec', inner], ['abc', null]]), { protocol });
        const m = parseReplicatePickle(answer);
        expect([...m.keys()]).toEqual(['9ec', 'abc']);
        expect(m.get('9ec')!.get(5)).toBe('2a5cc8bed689d3da8ae3dd1aa56a575e');
        expect(() => parseReplicatePickle(dumps(new PickleDict([['9ec', 7]]), { protocol }))).toThrow('suffix hash is not a dict');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Metadata as Swift writes it under Python 3 (bytes keys and values, which protocol 2 spells
// _codecs.encode(text, 'latin1')), and the shapes around it the decoder must leave alone.
const METADATA_DOCS = String.raw`
import json, pickle, random, sys
rnd = random.Random(11)
def md(n, extra=None):
    d = {b'name': b'/AUTH_test/c-ec42/obj-%d' % rnd.getrandbits(20), b'X-Timestamp': b'1795580685.22714',
         b'Content-Length': b'%d' % rnd.getrandbits(24), b'ETag': ('%032x' % rnd.getrandbits(128)).encode(),
         b'Content-Type': b'application/octet-stream', b'X-Object-Sysmeta-Ec-Frag-Index': b'3',
         b'X-Object-Sysmeta-Ec-Etag': ('%032x' % rnd.getrandbits(128)).encode()}
    for i in range(n): d[b'X-Object-Meta-K%d' % i] = b'v' * rnd.randrange(0, 40)
    if extra: d.update(extra)
    return d
shared = b'shared-value'
docs = [{}, md(0), md(3), md(100), md(300),
        md(2, {b'X-Object-Meta-Empty': b''}),
        md(2, {b'X-Object-Meta-A': shared, b'X-Object-Meta-B': shared}),
        md(1, {b'X-Object-Meta-Long': b'x' * 300}),
        md(1, {b'X-Object-Meta-Huge': b'y' * 100000}),
        md(1, {b'X-Object-Meta-Caf\xc3\xa9': b'\xe2\x98\x83'}),
        md(1, {b'X-Object-Meta-Raw': b'\xff\xfe'}),
        {'name': '/a/c/o', 'ETag': 'abc'},
        {b'name': b'/a/c/o', 'name': '/a/c/other', b'x': b'1'},
        {'name': '/a/c/o', b'name': b'/a/c/bytes'},
        {b'name': b'/a/c/o', b'Content-Length': 12},
        {b'name': (b'/a', b'c')},
        [b'name', b'/a/c/o'],
        {b'name': {b'x': b'y'}}]
for d in docs:
    for p in range(0, 6):
        sys.stdout.write(json.dumps({'protocol': p, 'hex': pickle.dumps(d, protocol=p).hex()}) + '\n')
`;

/** What loads() makes of b as metadata: the dict with its keys in order, or 'error'. */
function metadataReference(b: Uint8Array): unknown {
  try {
    return Object.entries(metadataFromLoads(b));
  } catch {
    return 'error';
  }
}

/** decodeMetadataPickle either declines or agrees with loads(); returns whether it decoded. */
function metadataAgrees(b: Uint8Array): boolean {
  const fast = decodeMetadataPickle(b);
  if (fast === undefined) return false;
  expect(Object.entries(fast), toHexStr(b).slice(0, 200)).toEqual(metadataReference(b));
  return true;
}

describe('decodeMetadataPickle', () => {
  const samples = pythonPickles(METADATA_DOCS);

  it('decodes the metadata CPython pickles at protocols 2 to 5 exactly as loads() does, and declines the rest', () => {
    if (!samples.length) return;
    let decoded = 0;
    for (const s of samples) {
      const b = fromHex(s.hex);
      const ok = metadataAgrees(b);
      if (ok) decoded++;
      // protocols 0 and 1 are the general reader's; so is a pickle over 64 KiB at 4 and 5 (frames)
      if (s.protocol < 2 || (s.protocol >= 4 && b.length >= 65536)) expect(ok, s.hex.slice(0, 80)).toBe(false);
    }
    // Swift's own shape at protocol 2, with every key ASCII, is decoded
    const swiftShape = samples.filter((s) => s.protocol === 2).slice(1, 9);
    for (const s of swiftShape) expect(decodeMetadataPickle(fromHex(s.hex)), s.hex.slice(0, 80)).toBeDefined();
    expect(decoded).toBeGreaterThan(40);
  });

  it('decodes what metadataToPickle writes, including b"" values and shared ones, and keeps the key order', () => {
    const md = { name: '/AUTH_test/c/o', 'X-Timestamp': '1795580685.22714', 'Content-Length': '0', 'X-Object-Meta-Empty': '', '123': 'numeric key', 'X-Object-Meta-Z': 'z' };
    const b = metadataToPickle(md);
    expect(metadataAgrees(b)).toBe(true);
    expect(metadataFromPickle(b)).toEqual(md);
    expect(Object.keys(decodeMetadataPickle(b)!)).toEqual(Object.keys(md));
  });

  it('keeps a str key and a bytes key of the same text apart, as Python does', () => {
    // {b'k': b'1', 'k': '2'} then b'k' set again to b'3': the bytes key keeps its place, and the
    // str key, set later, is the one a caller sees
    const b = fromHex('80037d284301' + '6b' + '4301' + '31' + '8c01' + '6b' + '8c01' + '32' + '4301' + '6b' + '4301' + '33' + '752e');
    expect(metadataReference(b)).toEqual([['k', '2']]);
    expect(metadataAgrees(b)).toBe(true);
  });

  it('declines non-ASCII text and bytes, leaving their decoding (surrogateescape) to loads()', () => {
    const md = { name: '/a/c/caf\u00e9', 'X-Object-Meta-Raw': '\udcff\udcfe' };
    const b = metadataToPickle(md);
    expect(decodeMetadataPickle(b)).toBeUndefined();
    expect(metadataFromPickle(b)).toEqual(md);
  });

  it('reads Python 2 pickles (plain strings) as loads() does', () => {
    // {'name': '/a/c/o', 'ETag': 'x'} as Python 2 pickles it at protocol 2: SHORT_BINSTRING
    const py2 = fromHex('80027d71002855046e616d6571015506' + Buffer.from('/a/c/o').toString('hex') + '71025504455461677103550178710475' + '2e');
    expect(metadataReference(py2)).toEqual([
      ['name', '/a/c/o'],
      ['ETag', 'x'],
    ]);
    expect(metadataAgrees(py2)).toBe(true);
  });

  it('damaged metadata pickles: declined, or decoded exactly as loads() decodes them', () => {
    if (!samples.length) return;
    const { decoded, declined } = fuzz(samples, 8000, 0x3c6ef372, metadataAgrees);
    expect(decoded).toBeGreaterThan(100);
    expect(declined).toBeGreaterThan(100);
  });
});

describe('encodeHashPickle', () => {
  /** what replicatePickle gave before it had a direct encoder */
  const viaDumps = (h: Map<string, SuffixHashes | null>) => dumps(new PickleDict([...h].map(([s, x]) => [s, x ? new PickleDict([...x]) : null] as [string, PickleValue])), { protocol: 2 });

  it('writes the bytes dumps() writes, for answers of every size and shape', () => {
    const rnd = prngBelow(0x1b873593);
    const md5 = () => Array.from({ length: 32 }, () => '0123456789abcdef'[rnd(16)]).join('');
    const shared = md5();
    const indexes = [0, 1, 5, 13, 255, 256, 65535, 65536, 2 ** 31 - 1, -1, -(2 ** 31)];
    const sizes = [0, 1, 2, 3, 10, 90, 255, 256, 999, 1000, 1001, 2000, 2500];
    let decoded = 0;
    for (const size of sizes) {
      for (let round = 0; round < 3; round++) {
        const h = new Map<string, SuffixHashes | null>();
        for (let i = 0; i < size; i++) {
          const suffix = (0x1000 + i * 7).toString(16).slice(-3) + (i >= 4096 ? String(i) : '');
          const r = rnd(10);
          if (r === 0) h.set(suffix, null);
          else if (r === 1) h.set(suffix, new Map());
          else {
            const inner: SuffixHashes = new Map();
            if (rnd(5)) inner.set(null, rnd(3) ? md5() : shared);
            for (let j = rnd(3); j > 0; j--) inner.set(indexes[rnd(indexes.length)]!, rnd(4) ? md5() : shared);
            // an inner dict of 1000 and more items, batched like the outer one
            if (size === 2 && round === 2) for (let j = 0; j < 1000; j++) inner.set(j, md5());
            h.set(suffix, inner);
          }
        }
        const direct = encodeHashPickle(h);
        expect(direct, `size ${size}`).toBeDefined();
        expect(Buffer.from(direct!).equals(Buffer.from(viaDumps(h))), `size ${size} round ${round}`).toBe(true);
        expect(replicatePickle(h)).toEqual(direct);
        // and it reads back as what was written
        expect([...parseReplicatePickle(direct!)].map(([s, x]) => [s, x && [...x]])).toEqual([...h].map(([s, x]) => [s, x && [...x]]));
        decoded++;
      }
    }
    expect(decoded).toBe(sizes.length * 3);
    // the last one-byte memo index (255) read back: entry 84's md5 is the 256th object memoized
    // (the dict, then a suffix, its dict and its md5 per entry), and entry 85 refers to it
    const h = new Map<string, SuffixHashes | null>();
    for (let i = 0; i < 90; i++) h.set((0x100 + i).toString(16), new Map([[null, md5()]]));
    const edge = [...h.values()][84]!.get(null)!;
    [...h.values()][85]!.set(3, edge);
    const bytes = encodeHashPickle(h)!;
    expect(Buffer.from(bytes).equals(Buffer.from(viaDumps(h)))).toBe(true);
    expect(Buffer.from(bytes).includes(Buffer.from([0x4b, 3, 0x68, 255]))).toBe(true);
  });

  it('leaves to dumps() what it does not cover, and replicatePickle still answers', () => {
    const cases: Array<Map<string, SuffixHashes | null>> = [
      new Map([['caf\u00e9', null]]),
      new Map([['abc', new Map([[null, 'm\u00e9']])]]),
      new Map([['abc', new Map([[2 ** 31, 'x']])]]),
      new Map([['abc', new Map([[1.5, 'x']])]]),
    ];
    for (const h of cases) {
      expect(encodeHashPickle(h)).toBeUndefined();
      expect(Buffer.from(replicatePickle(h)).equals(Buffer.from(viaDumps(h)))).toBe(true);
    }
  });
});
