// Swift's name hashing (swift.common.utils.hash_path) and the partition it selects.
//
// Swift hashes HASH_PATH_PREFIX + "/" + "/".join(parts) + HASH_PATH_SUFFIX as bytes. It reads
// swift.conf as latin1 and re-encodes as latin1, so the prefix and suffix are the raw bytes
// of the file. A string given here is encoded as UTF-8, which is the same thing for a UTF-8
// swift.conf; pass a Uint8Array for a file holding other bytes.
import { Md5 } from './md5.js';
import { hasLoneSurrogate } from './utf8.js';

/** A path component: text (hashed as UTF-8, like a Python str) or bytes (hashed as given). */
export type PathPart = string | Uint8Array;

/** HASH_PATH_PREFIX / HASH_PATH_SUFFIX from swift.conf's [swift-hash] section. */
export interface HashPathConfig {
  prefix: string | Uint8Array;
  suffix: string | Uint8Array;
}

const SLASH = Buffer.from('/');

function toBytes(value: PathPart, what: string): Uint8Array {
  if (typeof value !== 'string') return value;
  // Python's str.encode('utf8') refuses lone surrogates; TextEncoder would silently turn them
  // into U+FFFD and hash a name Swift can never produce.
  if (hasLoneSurrogate(value)) throw new TypeError(`${what} is not valid Unicode (lone surrogate)`);
  return Buffer.from(value, 'utf8');
}

// Python truthiness: Swift drops an empty container or object rather than hashing "a//".
const present = (p: PathPart | null | undefined): p is PathPart => p != null && p.length > 0;

/** The 16-byte md5 digest Swift's hash_path(..., raw_digest=True) returns. */
export function hashPathRaw(
  prefix: string | Uint8Array,
  suffix: string | Uint8Array,
  account: PathPart,
  container?: PathPart | null,
  object?: PathPart | null,
): Uint8Array {
  if (present(object) && !present(container)) {
    throw new TypeError('container is required if object is provided');
  }
  const h = new Md5();
  h.update(toBytes(prefix, 'hash path prefix'));
  h.update(SLASH);
  h.update(toBytes(account, 'account'));
  if (present(container)) {
    h.update(SLASH);
    h.update(toBytes(container, 'container'));
  }
  if (present(object)) {
    h.update(SLASH);
    h.update(toBytes(object, 'object'));
  }
  h.update(toBytes(suffix, 'hash path suffix'));
  return h.digest();
}

/** Swift's hash_path: lowercase hex md5, the name of an object's hash directory. */
export function hashPath(
  prefix: string | Uint8Array,
  suffix: string | Uint8Array,
  account: PathPart,
  container?: PathPart | null,
  object?: PathPart | null,
): string {
  return Buffer.from(hashPathRaw(prefix, suffix, account, container, object)).toString('hex');
}

/** The top 32 bits of a digest (raw bytes or hex), as Swift's struct.unpack_from('>I'). */
export function hashTop32(hash: string | Uint8Array): number {
  if (typeof hash === 'string') {
    if (!/^[0-9a-fA-F]{8}/.test(hash)) throw new TypeError('hash must start with 8 hex digits');
    return Number.parseInt(hash.slice(0, 8), 16);
  }
  if (hash.length < 4) throw new TypeError('hash must have at least 4 bytes');
  return ((hash[0]! << 24) | (hash[1]! << 16) | (hash[2]! << 8) | hash[3]!) >>> 0;
}

/** The partition of a hash: its top 32 bits shifted right by part_shift (32 - part power). */
export function getPartition(hash: string | Uint8Array, partShift: number): number {
  if (!Number.isInteger(partShift) || partShift < 0 || partShift > 32) {
    throw new RangeError(`part_shift must be an integer in 0..32, got ${partShift}`);
  }
  // JS shifts count modulo 32, so x >>> 32 would be x; Python gives 0.
  return partShift === 32 ? 0 : hashTop32(hash) >>> partShift;
}
