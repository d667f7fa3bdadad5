// GF(2^16) with the primitive polynomial 0x1100B: the field of liberasurecode's
// built-in rs_vand and of Jerasure/gf-complete at w=16. Region data is read as
// little-endian 16-bit words, which is the host order liberasurecode uses on x86 and ARM.

const POLY16: u32 = 0x1100b;
const ORDER16: usize = 65535;

const GF16_EXP: usize = memory.data(<i32>(ORDER16 * 2 * 2), 16);
const GF16_LOG: usize = memory.data(65536 * 2, 16);

export function gf16Init(): void {
  let x: u32 = 1;
  for (let i: u32 = 0; i < <u32>ORDER16; i++) {
    store<u16>(GF16_EXP + (<usize>i << 1), <u16>x);
    store<u16>(GF16_EXP + ((<usize>i + ORDER16) << 1), <u16>x);
    store<u16>(GF16_LOG + (<usize>x << 1), <u16>i);
    x <<= 1;
    if (x & 0x10000) x ^= POLY16;
  }
}

@inline export function gf16Mul(a: u32, b: u32): u32 {
  if (a == 0 || b == 0) return 0;
  const s = <usize>load<u16>(GF16_LOG + (<usize>a << 1)) + <usize>load<u16>(GF16_LOG + (<usize>b << 1));
  return <u32>load<u16>(GF16_EXP + (s << 1));
}

@inline export function gf16Inv(a: u32): u32 {
  return <u32>load<u16>(GF16_EXP + ((ORDER16 - <usize>load<u16>(GF16_LOG + (<usize>a << 1))) << 1));
}
