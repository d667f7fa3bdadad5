// liberasurecode's 80-byte fragment header (fragment_header_t, packed, little-endian as
// written on x86 and ARM). Readers accept a byte-swapped header from a big-endian writer and
// both CRC flavours of the metadata checksum, as liberasurecode does.
import { backendName } from './backends.js';
import { ECBadHeader } from './errors.js';

export const HEADER_SIZE = 80;
export const FRAGMENT_MAGIC = 0x0b0c5ecc;
/** liberasurecode 1.6.2, the version Debian bookworm ships with Swift 2.30. */
export const DEFAULT_LIBEC_VERSION = 0x010602;
/** Headers written before 1.2.0 carry no metadata checksum. */
const METADATA_CHKSUM_SINCE = 0x010200;
/** Bytes 0..58: fragment_metadata_t, the span the metadata checksum covers. */
export const METADATA_SIZE = 59;

export type ChecksumType = 'none' | 'crc32' | 'md5';
const CHKSUM_CODES: Record<number, ChecksumType> = { 1: 'none', 2: 'crc32', 3: 'md5' };
export const CHKSUM_TYPE_CODE: Record<ChecksumType, number> = { none: 1, crc32: 2, md5: 3 };

const OFF = {
  idx: 0,
  size: 4,
  backendMetadataSize: 8,
  origDataSize: 12,
  chksumType: 20,
  chksum: 21,
  chksumMismatch: 53,
  backendId: 54,
  backendVersion: 55,
  magic: 59,
  libecVersion: 63,
  metadataChksum: 67,
} as const;

export interface FragmentMetadata {
  index: number;
  /** Payload bytes after the header. */
  size: number;
  fragBackendMetadataSize: number;
  /** Bytes of the segment this fragment belongs to, before padding. */
  origDataSize: number;
  chksumType: ChecksumType | number;
  /** chksum[0..7] as stored; chksum[0] is the payload CRC-32 when chksumType is 'crc32'. */
  chksum: number[];
  /** True when chksumType is 'crc32' and the payload does not match it (computed on read). */
  chksumMismatch: boolean;
  backendId: number;
  backendName: string;
  backendVersion: number;
  libecVersion: number;
  metadataChksum: number;
  /** True when the header was written on a big-endian machine. */
  byteSwapped: boolean;
}

export interface HeaderFields {
  index: number;
  size: number;
  origDataSize: number;
  chksumType: ChecksumType;
  payloadChksum: number;
  backendId: number;
  backendVersion: number;
  libecVersion: number;
}

export type Crc32 = (bytes: Uint8Array, legacy: boolean) => number;

/** Writes a complete header at buf[off .. off + 80), metadata checksum included. */
export function writeHeader(buf: Uint8Array, off: number, f: HeaderFields, crc: Crc32, legacyCrc = false): void {
  buf.fill(0, off, off + HEADER_SIZE);
  const dv = new DataView(buf.buffer, buf.byteOffset + off, HEADER_SIZE);
  dv.setUint32(OFF.idx, f.index, true);
  dv.setUint32(OFF.size, f.size, true);
  dv.setUint32(OFF.backendMetadataSize, 0, true);
  dv.setBigUint64(OFF.origDataSize, BigInt(f.origDataSize), true);
  dv.setUint8(OFF.chksumType, CHKSUM_TYPE_CODE[f.chksumType]);
  if (f.chksumType === 'crc32') dv.setUint32(OFF.chksum, f.payloadChksum >>> 0, true);
  dv.setUint8(OFF.backendId, f.backendId);
  dv.setUint32(OFF.backendVersion, f.backendVersion, true);
  dv.setUint32(OFF.magic, FRAGMENT_MAGIC, true);
  dv.setUint32(OFF.libecVersion, f.libecVersion, true);
  const meta = buf.subarray(off, off + METADATA_SIZE);
  dv.setUint32(OFF.metadataChksum, crc(meta, legacyCrc) >>> 0, true);
}

/**
 * Parses and validates a fragment's header: length, magic, libec version and metadata
 * checksum (zlib CRC-32, or liberasurecode's legacy CRC). The payload checksum is checked
 * when the header carries one. Throws ECBadHeader naming what is wrong.
 */
export function readHeader(fragment: Uint8Array, crc: Crc32, what = 'fragment'): FragmentMetadata {
  if (!(fragment instanceof Uint8Array)) throw new ECBadHeader(`${what} is not a Uint8Array`);
  if (fragment.length < HEADER_SIZE) {
    throw new ECBadHeader(`${what} is ${fragment.length} bytes, shorter than the ${HEADER_SIZE}-byte fragment header`);
  }
  const problem = headerProblem(fragment, crc, what);
  if (problem) throw new ECBadHeader(problem);
  const dv = new DataView(fragment.buffer, fragment.byteOffset, HEADER_SIZE);
  const le = dv.getUint32(OFF.magic, true) === FRAGMENT_MAGIC;
  const libecVersion = dv.getUint32(OFF.libecVersion, le);
  const metadataChksum = dv.getUint32(OFF.metadataChksum, le);
  const chksumCode = dv.getUint8(OFF.chksumType);
  const chksum: number[] = [];
  for (let i = 0; i < 8; i++) chksum.push(dv.getUint32(OFF.chksum + 4 * i, le));
  const size = dv.getUint32(OFF.size, le);
  const origDataSize = Number(dv.getBigUint64(OFF.origDataSize, le));
  const backendId = dv.getUint8(OFF.backendId);
  const md: FragmentMetadata = {
    index: dv.getUint32(OFF.idx, le),
    size,
    fragBackendMetadataSize: dv.getUint32(OFF.backendMetadataSize, le),
    origDataSize,
    chksumType: CHKSUM_CODES[chksumCode] ?? chksumCode,
    chksum,
    chksumMismatch: false,
    backendId,
    backendName: backendName(backendId),
    backendVersion: dv.getUint32(OFF.backendVersion, le),
    libecVersion,
    metadataChksum,
    byteSwapped: !le,
  };
  if (HEADER_SIZE + size > fragment.length) {
    throw new ECBadHeader(`${what} header says ${size} payload bytes but the fragment holds ${fragment.length - HEADER_SIZE}`);
  }
  if (md.chksumType === 'crc32') {
    const payload = fragment.subarray(HEADER_SIZE, HEADER_SIZE + size);
    const c = chksum[0]!;
    md.chksumMismatch = crc(payload, false) !== c && crc(payload, true) !== c;
  }
  return md;
}

/** Bytes up to the end of the metadata checksum: what a header check reads. */
export const CHECKED_HEADER_SIZE = OFF.metadataChksum + 4;

/**
 * What is wrong with the header at the start of `fragment`, or null: the checks liberasurecode's
 * fragment-metadata reader makes (PyECLib's get_metadata raises ECInvalidFragmentMetadata for
 * them): magic in either byte order, a libec_version other than 0, and the metadata checksum
 * (either CRC flavour) for headers of 1.2.0 on. The payload is not read, nor is the size field
 * held against the bytes given: get_metadata accepts a header on its own.
 */
export function headerProblem(fragment: Uint8Array, crc: Crc32, what = 'fragment'): string | null {
  if (fragment.length < CHECKED_HEADER_SIZE) return `${what} is ${fragment.length} bytes, too short to hold a fragment header`;
  const dv = new DataView(fragment.buffer, fragment.byteOffset, CHECKED_HEADER_SIZE);
  const magicLE = dv.getUint32(OFF.magic, true);
  let le = true;
  if (magicLE !== FRAGMENT_MAGIC) {
    if (dv.getUint32(OFF.magic, false) !== FRAGMENT_MAGIC) return `${what} has bad magic 0x${magicLE.toString(16)}: not a liberasurecode fragment`;
    le = false;
  }
  const libecVersion = dv.getUint32(OFF.libecVersion, le);
  if (libecVersion === 0) return `${what} header has libec_version 0`;
  if (libecVersion >= METADATA_CHKSUM_SINCE) {
    const metadataChksum = dv.getUint32(OFF.metadataChksum, le);
    const meta = fragment.subarray(0, METADATA_SIZE);
    if (crc(meta, false) !== metadataChksum && crc(meta, true) !== metadataChksum) {
      return `${what} header fails its metadata checksum (0x${metadataChksum.toString(16)}): corrupt header`;
    }
  }
  return null;
}

/** The header's index field, or -1 when the bytes are too short to hold one. */
export function peekIndex(fragment: Uint8Array): number {
  if (fragment.length < HEADER_SIZE) return -1;
  return new DataView(fragment.buffer, fragment.byteOffset, 8).getUint32(0, true);
}
