// Object metadata as Swift keeps it: a protocol-2 pickle of a dict of UTF-8 bytes, split over
// the xattrs user.swift.metadata, user.swift.metadata1, ... (64 KiB each), with the md5 hex of
// the whole pickle in user.swift.metadata_checksum. Keys and values come back as strings,
// decoded the way Python 3 Swift does it (UTF-8 with surrogateescape, so bytes that are not
// UTF-8 survive a read and a rewrite unchanged).
import { createRequire } from 'node:module';
import { decodeMetadataPickle } from './direct-pickle.js';
import { md5Hex } from './md5.js';
import { DiskFileError } from './ondisk.js';
import { dumps, loads, PickleDict, type PickleValue } from './pickle.js';
import { hasLoneSurrogate, UTF8_ENCODER, UTF8_STRICT } from './utf8.js';

export type Metadata = Record<string, string>;

type Xattr = typeof import('@napi-rs/xattr');
let xattrModule: Xattr | undefined;
/**
 * The native xattr package, loaded when first used and through require(): imported as a module
 * it costs every process that starts (a daemon's --once pass included) a scan of its CommonJS
 * source and the compilation that scan triggers.
 */
const xattr = (): Xattr => (xattrModule ??= createRequire(import.meta.url)('@napi-rs/xattr') as Xattr);

export const METADATA_KEY = 'user.swift.metadata';
export const METADATA_CHECKSUM_KEY = 'user.swift.metadata_checksum';
/**
 * fragmend's own xattr on a .data file it wrote: the CRC-32 of the file's bytes, with the size
 * and the MD5 (the ETag) those bytes had when it was taken (see archive-check.ts). Swift reads
 * only its own keys and leaves this one alone.
 */
export const CONTENT_CHECK_KEY = 'user.fragmend.content_crc32';
const XATTR_SIZE = 65536;

export class DiskFileNotExist extends DiskFileError {}
export class DiskFileBadMetadataChecksum extends DiskFileError {}
export class DiskFileXattrNotSupported extends DiskFileError {}
export class DiskFileNoSpace extends DiskFileError {}

/** Python's bytes.decode('utf8', 'surrogateescape'). */
export function decodeSurrogateEscape(bytes: Uint8Array): string {
  // valid UTF-8, the usual case, decodes as it is
  try {
    return UTF8_STRICT.decode(bytes);
  } catch {
    // some byte is not UTF-8: each such byte becomes U+DC80..U+DCFF, below
  }
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let len = 0;
    let cp = 0;
    if (b < 0x80) {
      len = 1;
      cp = b;
    } else if (b >= 0xc2 && b <= 0xdf) {
      len = 2;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      cp = b & 0x07;
    }
    let ok = len > 0 && i + len <= bytes.length;
    for (let j = 1; ok && j < len; j++) {
      const c = bytes[i + j]!;
      if ((c & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
    if (ok && ((len === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len === 4 && (cp < 0x10000 || cp > 0x10ffff)))) ok = false;
    if (!ok) {
      out += String.fromCharCode(0xdc00 + b);
      i += 1;
    } else {
      out += String.fromCodePoint(cp);
      i += len;
    }
  }
  return out;
}

/** Python's str.encode('utf8', 'surrogateescape'). */
export function encodeSurrogateEscape(s: string): Uint8Array {
  // without a lone surrogate (names and metadata nearly always), a string is plain UTF-8
  if (!hasLoneSurrogate(s)) return UTF8_ENCODER.encode(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff) {
      out.push(c - 0xdc00);
      continue;
    }
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    if (cp >= 0xd800 && cp <= 0xdfff) throw new DiskFileError(`metadata string has a lone surrogate U+${cp.toString(16)}`);
    out.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
  }
  return Uint8Array.from(out);
}

function toStr(v: PickleValue, what: string): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return decodeSurrogateEscape(v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  throw new DiskFileError(`metadata ${what} is not a string: ${typeof v}`);
}

/** The metadata dict from a pickle (as read_metadata decodes it). */
export function metadataFromPickle(bytes: Uint8Array): Metadata {
  return decodeMetadataPickle(bytes) ?? metadataFromLoads(bytes);
}

/** metadataFromPickle through the general reader only. */
export function metadataFromLoads(bytes: Uint8Array): Metadata {
  const value = loads(bytes);
  if (!(value instanceof PickleDict)) throw new DiskFileError('metadata pickle is not a dict');
  const md: Metadata = {};
  for (const [k, v] of value) md[toStr(k as PickleValue, 'key')] = toStr(v, 'value');
  return md;
}

/** The pickle Swift writes for a metadata dict: protocol 2, UTF-8 bytes keys and values. */
export function metadataToPickle(md: Metadata): Uint8Array {
  const d = new PickleDict();
  for (const [k, v] of Object.entries(md)) d.set(encodeSurrogateEscape(k), encodeSurrogateEscape(String(v)));
  return dumps(d, { protocol: 2 });
}

function xattrError(e: unknown, path: string): Error {
  const code = (e as NodeJS.ErrnoException).code ?? String((e as Error).message);
  if (/ENOTSUP|EOPNOTSUPP|not supported/i.test(code)) return new DiskFileXattrNotSupported(`Filesystem at ${path} does not support xattr`);
  if (/ENOSPC|EDQUOT/.test(code)) return new DiskFileNoSpace(`No space left on device for ${path}`);
  if (/ENOENT/.test(code)) return new DiskFileNotExist(`${path} does not exist`);
  return e as Error;
}

function getXattr(path: string, name: string): Uint8Array | null {
  try {
    const v = xattr().getAttributeSync(path, name);
    return v ? new Uint8Array(v.buffer, v.byteOffset, v.length) : null;
  } catch (e) {
    const msg = String((e as Error).message ?? e);
    if (/ENODATA|ENOATTR|No data available|not found/i.test(msg)) return null;
    throw xattrError(e, path);
  }
}

// The xattr calls are plain calls, as Swift makes them: each is one quick system call on an
// inode the read or write at hand has just looked up, where a thread-pool round trip costs
// several system calls, two thread switches and a promise.

/** Raw pickle bytes and stored checksum of a file (null when the file has no metadata), with fragmend's content check when it has one. */
export async function readRawMetadata(path: string): Promise<{ pickle: Uint8Array; checksum: string | null; contentCheck: string | null } | null> {
  let names: Set<string>;
  try {
    names = new Set(xattr().listAttributesSync(path) ?? []);
  } catch (e) {
    throw xattrError(e, path);
  }
  const parts: Uint8Array[] = [];
  for (let key = 0; names.has(key ? `${METADATA_KEY}${key}` : METADATA_KEY); key++) {
    const part = getXattr(path, key ? `${METADATA_KEY}${key}` : METADATA_KEY);
    if (!part) break;
    parts.push(part);
  }
  if (!parts.length) return null;
  const pickle = parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts));
  const sum = names.has(METADATA_CHECKSUM_KEY) ? getXattr(path, METADATA_CHECKSUM_KEY) : null;
  const check = names.has(CONTENT_CHECK_KEY) ? getXattr(path, CONTENT_CHECK_KEY) : null;
  return {
    pickle,
    checksum: sum ? Buffer.from(sum.buffer, sum.byteOffset, sum.length).toString('ascii') : null,
    contentCheck: check ? Buffer.from(check.buffer, check.byteOffset, check.length).toString('latin1') : null,
  };
}

/** Swift's read_metadata: checksum verified when present. */
export async function readMetadata(path: string): Promise<Metadata> {
  return (await readMetadataAndCheck(path)).md;
}

/** readMetadata, and the file's content check xattr (CONTENT_CHECK_KEY) as stored, or null. */
export async function readMetadataAndCheck(path: string): Promise<{ md: Metadata; contentCheck: string | null }> {
  const raw = await readRawMetadata(path);
  if (!raw) return { md: metadataFromPickle(new Uint8Array(0)), contentCheck: null };
  if (raw.checksum !== null) {
    const computed = md5Hex(raw.pickle);
    if (raw.checksum !== computed) {
      throw new DiskFileBadMetadataChecksum(`Metadata checksum mismatch for ${path}: stored checksum='${raw.checksum}', computed='${computed}'`);
    }
  }
  return { md: metadataFromPickle(raw.pickle), contentCheck: raw.contentCheck };
}

/** Swift's write_metadata: the pickle in 64 KiB xattrs, then its md5 checksum; and fragmend's content check, when given. */
export async function writeMetadata(path: string, md: Metadata, contentCheck?: string): Promise<void> {
  const pickle = metadataToPickle(md);
  try {
    let key = 0;
    for (let off = 0; off < pickle.length; off += XATTR_SIZE, key++) {
      xattr().setAttributeSync(path, key ? `${METADATA_KEY}${key}` : METADATA_KEY, pickle.subarray(off, off + XATTR_SIZE));
    }
    xattr().setAttributeSync(path, METADATA_CHECKSUM_KEY, md5Hex(pickle));
    if (contentCheck !== undefined) xattr().setAttributeSync(path, CONTENT_CHECK_KEY, Buffer.from(contentCheck, 'latin1'));
  } catch (e) {
    throw xattrError(e, path);
  }
}
