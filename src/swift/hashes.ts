// Suffix hashes of a partition as Swift keeps them: hashes.pkl (a protocol-2 pickle of
// {suffix: {None: md5, fi: md5} | None, 'valid': bool, 'updated': float}) and hashes.invalid
// (suffixes appended one per line, folded into hashes.pkl by consolidate), both under the
// partition's .lock so a Swift object server on the same disk never sees a torn update.
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { open, readFile, writeFile } from './afs.js';
import { basename, dirname, join } from 'node:path';
import { renamer } from './fsutil.js';
import { withLock } from './locks.js';
import { decodeHashPickle, encodeHashPickle } from './direct-pickle.js';
import { randomHex } from './lazy-crypto.js';
import { dumps, float, loads, PickleDict, PickleFloat, type PickleValue } from './pickle.js';

export const HASH_FILE = 'hashes.pkl';
export const HASH_INVALIDATIONS_FILE = 'hashes.invalid';

/** md5 hex by fragment index; null is the key for tombstones, .meta and durability. */
export type SuffixHashes = Map<number | null, string>;

export interface HashesState {
  valid: boolean;
  updated: number;
  suffixes: Map<string, SuffixHashes | null>;
}

export const isValidSuffix = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{3}$/.test(s);

const INVALID: () => HashesState = () => ({ valid: false, updated: -1, suffixes: new Map() });

/** {null: md5, fi: md5} as a Python dict. */
export function suffixHashesToPickle(h: SuffixHashes): PickleDict {
  return new PickleDict([...h].map(([k, v]) => [k, v] as [number | null, string]));
}

export function suffixHashesFromPickle(v: PickleValue): SuffixHashes | null {
  if (v === null) return null;
  if (!(v instanceof PickleDict)) throw new TypeError('suffix hash is not a dict');
  const out: SuffixHashes = new Map();
  for (const [k, h] of v) {
    if (k !== null && !(typeof k === 'number' && Number.isInteger(k))) throw new TypeError('suffix hash key is not None or an int');
    if (typeof h !== 'string') throw new TypeError('suffix hash value is not a str');
    out.set(k, h);
  }
  return out;
}

/**
 * The items of a hashes pickle's outer dict (hashes.pkl, a REPLICATE answer): from the direct
 * decoder, whose suffix hashes are Maps already checked, or from loads() for whatever it
 * declines. Throws loads()'s errors, and a TypeError when the pickle is not a dict.
 */
function hashPickleItems(bytes: Uint8Array, what: string): Iterable<[unknown, unknown]> {
  const fast = decodeHashPickle(bytes);
  if (fast) return fast;
  const v = loads(bytes);
  if (!(v instanceof PickleDict)) throw new TypeError(`${what} is not a dict`);
  return v;
}

/** A suffix's hashes from either source of hashPickleItems. */
const suffixHashesOf = (v: unknown): SuffixHashes | null => (v instanceof Map ? (v as SuffixHashes) : suffixHashesFromPickle(v as PickleValue));

/** The REPLICATE answer: {suffix: {None|fi: md5}} pickled at protocol 2. */
export function replicatePickle(hashes: Map<string, SuffixHashes | null>): Uint8Array {
  return encodeHashPickle(hashes) ?? dumps(new PickleDict([...hashes].map(([s, h]) => [s, h ? suffixHashesToPickle(h) : null] as [string, PickleValue])), { protocol: 2 });
}

/** Parses a REPLICATE answer (what a Swift peer returned). */
export function parseReplicatePickle(bytes: Uint8Array): Map<string, SuffixHashes | null> {
  const out = new Map<string, SuffixHashes | null>();
  for (const [k, h] of hashPickleItems(bytes, 'REPLICATE answer')) {
    if (typeof k !== 'string') throw new TypeError('REPLICATE answer has a non-str suffix');
    out.set(k, suffixHashesOf(h));
  }
  return out;
}

/** Swift's read_hashes: anything unreadable or odd gives { valid: false }. */
export async function readHashes(partPath: string): Promise<HashesState> {
  let bytes: Uint8Array;
  try {
    // a few KiB read in place, as Swift reads it: cheaper than a thread-pool round trip (the
    // Buffer is this call's own, so the decoders may read it as it is)
    bytes = readFileSync(join(partPath, HASH_FILE));
  } catch {
    return INVALID();
  }
  try {
    const state: HashesState = { valid: true, updated: -1, suffixes: new Map() };
    for (const [k, val] of hashPickleItems(bytes, HASH_FILE)) {
      if (k === 'valid') state.valid = val === true || (typeof val === 'number' && val !== 0);
      else if (k === 'updated') state.updated = val instanceof PickleFloat ? val.value : typeof val === 'number' ? val : -1;
      else if (isValidSuffix(k)) state.suffixes.set(k, suffixHashesOf(val));
      else return INVALID();
    }
    return state;
  } catch {
    return INVALID();
  }
}

function statePickle(state: HashesState): Uint8Array {
  const d = new PickleDict();
  d.set('valid', state.valid);
  for (const [s, h] of state.suffixes) d.set(s, h ? suffixHashesToPickle(h) : null);
  d.set('updated', float(state.updated));
  return dumps(d, { protocol: 2 });
}

/** Swift's write_hashes/write_pickle: a temp file in the partition, fsync, rename. */
export async function writeHashes(partPath: string, state: HashesState): Promise<void> {
  const tmp = join(partPath, `tmp${randomHex(6)}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(statePickle({ ...state, updated: Date.now() / 1000 }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await renamer(tmp, join(partPath, HASH_FILE));
}

/** Folds hashes.invalid into hashes.pkl (under the partition lock) and returns the result. */
export async function consolidateHashes(partPath: string): Promise<HashesState> {
  // Nothing to fold in: hashes.pkl is replaced by rename, so it reads whole without the lock.
  // An invalidation appended meanwhile is seen by the next call, as it would be had it come
  // just after this one.
  const pending = statSync(join(partPath, HASH_INVALIDATIONS_FILE), { throwIfNoEntry: false })?.size ?? 0;
  if (pending === 0) return readHashes(partPath);
  return withLock(partPath, async () => {
    const state = await readHashes(partPath);
    let text: string;
    try {
      text = await readFile(join(partPath, HASH_INVALIDATIONS_FILE), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return state;
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    if (!lines.length) return state;
    for (const line of lines) state.suffixes.set(line.trim(), null);
    await writeHashes(partPath, state);
    await writeFile(join(partPath, HASH_INVALIDATIONS_FILE), '');
    return state;
  });
}

/** Marks a suffix for rehashing: appends it to hashes.invalid under the partition lock. */
export async function invalidateHash(suffixDir: string): Promise<void> {
  const partPath = dirname(suffixDir);
  // a plain append, as Swift makes it: one short write under a lock taken with plain calls
  await withLock(partPath, () => appendFileSync(join(partPath, HASH_INVALIDATIONS_FILE), basename(suffixDir) + '\n'));
}

export function hashesEqual(a: HashesState, b: HashesState): boolean {
  if (a.valid !== b.valid || a.updated !== b.updated || a.suffixes.size !== b.suffixes.size) return false;
  for (const [s, h] of a.suffixes) {
    if (!b.suffixes.has(s)) return false;
    const o = b.suffixes.get(s) ?? null;
    if ((h === null) !== (o === null)) return false;
    if (h && o && !sameSuffixHashes(h, o)) return false;
  }
  return true;
}

/** Whether two suffixes' hashes ({None|index: md5}) say the same. */
export function sameSuffixHashes(a: SuffixHashes, b: SuffixHashes): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
