// Field dispatch by word width: w = 8 (GF(2^8)) or w = 16 (GF(2^16)).
import { gf8Mul, gf8Inv } from './gf256';
import { gf16Mul, gf16Inv } from './gf65536';

@inline export function gfMul(w: i32, a: u32, b: u32): u32 {
  return w == 16 ? gf16Mul(a, b) : gf8Mul(a, b);
}

@inline export function gfInv(w: i32, a: u32): u32 {
  return w == 16 ? gf16Inv(a) : gf8Inv(a);
}

@inline export function gfDiv(w: i32, a: u32, b: u32): u32 {
  return gfMul(w, a, gfInv(w, b));
}
