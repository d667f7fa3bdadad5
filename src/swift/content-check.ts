// fragmend's record of a data file's bytes, kept in its own xattr (CONTENT_CHECK_KEY) on the
// .data files fragmend's object server writes: the CRC-32 of the bytes, with their size and
// their MD5 (the ETag the metadata names) at the time.
//
// Swift's reader checks an archive read to its end by its MD5 against the ETag, which is what
// finds bytes that rotted on the disk. The CRC-32 finds the same rot at an eighth of the CPU
// (zlib's CRC runs at several GB/s, MD5 at under one), and it was taken from the very bytes whose
// MD5 was the ETag, so bytes that still match it match the ETag. A record that does not name the
// file's current size and ETag is not used. A file that fails it is checked by its MD5 before
// anything is done about it: a record that went bad itself costs a second read, never an archive.
export interface ContentCheck {
  crc32: number;
  size: number;
  etag: string;
}

const FORMAT = /^crc32 ([0-9a-f]{8}) (\d{1,16}) ([0-9a-f]{32})$/;

export function formatContentCheck(c: ContentCheck): string {
  return `crc32 ${c.crc32.toString(16).padStart(8, '0')} ${c.size} ${c.etag}`;
}

/** The record, or null when it is not one this version writes. */
export function parseContentCheck(value: string): ContentCheck | null {
  const m = FORMAT.exec(value);
  return m ? { crc32: parseInt(m[1]!, 16), size: Number(m[2]), etag: m[3]! } : null;
}
