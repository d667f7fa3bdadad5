// GF(2^8) with the primitive polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D):
// the field of ISA-L, and so of liberasurecode's isa_l_rs_vand and isa_l_rs_cauchy.

const POLY8: u32 = 0x11d;

// exp is stored twice over so that exp[log a + log b] never needs a modulo.
const GF8_EXP: usize = memory.data(512, 16);
const GF8_LOG: usize = memory.data(256, 16);

export function gf8Init(): void {
  let x: u32 = 1;
  for (let i: u32 = 0; i < 255; i++) {
    store<u8>(GF8_EXP + i, <u8>x);
    store<u8>(GF8_EXP + i + 255, <u8>x);
    store<u8>(GF8_LOG + x, <u8>i);
    x <<= 1;
    if (x & 0x100) x ^= POLY8;
  }
}

@inline export function gf8Mul(a: u32, b: u32): u32 {
  if (a == 0 || b == 0) return 0;
  return <u32>load<u8>(GF8_EXP + <usize>load<u8>(GF8_LOG + a) + <usize>load<u8>(GF8_LOG + b));
}

// Callers never pass 0: a zero pivot is found and reported before inversion.
@inline export function gf8Inv(a: u32): u32 {
  return <u32>load<u8>(GF8_EXP + 255 - <usize>load<u8>(GF8_LOG + a));
}
