// CRC-32 as zlib computes it (reflected, polynomial 0xEDB88320), slice-by-4, and
// liberasurecode's legacy variant (bug 1666320), which shifts the running value as a
// signed int so that bit 31 is smeared into the top byte after each step.

const CRC_TABLE: usize = memory.data(4 * 256 * 4, 16);

export function crc32Init(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let b = 0; b < 8; b++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    store<u32>(CRC_TABLE + (<usize>n << 2), c);
  }
  for (let n: u32 = 0; n < 256; n++) {
    let c = load<u32>(CRC_TABLE + (<usize>n << 2));
    for (let s: usize = 1; s < 4; s++) {
      c = load<u32>(CRC_TABLE + (<usize>(c & 0xff) << 2)) ^ (c >>> 8);
      store<u32>(CRC_TABLE + (s << 10) + (<usize>n << 2), c);
    }
  }
}

@inline function tab(s: usize, i: u32): u32 {
  return load<u32>(CRC_TABLE + (s << 10) + (<usize>(i & 0xff) << 2));
}

export function crc32(crc: u32, p: usize, len: i32): u32 {
  let c = ~crc;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    c ^= load<u32>(p + <usize>i);
    c = tab(3, c) ^ tab(2, c >>> 8) ^ tab(1, c >>> 16) ^ tab(0, c >>> 24);
  }
  for (; i < len; i++) c = tab(0, c ^ <u32>load<u8>(p + <usize>i)) ^ (c >>> 8);
  return ~c;
}

export function crc32Legacy(crc: u32, p: usize, len: i32): u32 {
  let c = ~crc;
  for (let i = 0; i < len; i++) {
    const shifted = (c >>> 8) & 0x00ffffff;
    c = tab(0, c ^ <u32>load<u8>(p + <usize>i)) ^ ((shifted ^ 0x00800000) - 0x00800000);
  }
  return ~c;
}
