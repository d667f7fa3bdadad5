// CRC-32 (zlib's) and liberasurecode's legacy variant in plain JS, for the 59-byte header
// metadata every fragment carries: copying those bytes into wasm memory and back costs more
// than the CRC itself. Long inputs go to the wasm slice-by-4 code instead.

const TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let b = 0; b < 8; b++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/**
 * zlib's CRC-32 of short inputs in plain JS, or with `legacy` liberasurecode's pre-1.6 variant:
 * what a fragment header's metadata checksum is made of (bytes 0-58 of the header).
 */
export function crc32Short(bytes: Uint8Array, legacy = false): number {
  let c = -1;
  if (legacy) {
    // liberasurecode_crc32_alt shifts the running value as a signed int (bug 1666320).
    for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >> 8);
  } else {
    for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  }
  return ~c >>> 0;
}
