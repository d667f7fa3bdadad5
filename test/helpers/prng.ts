// xorshift32 emitting each state as 4 little-endian bytes: the same generator as
// scripts/gen-golden.py, so fixtures need not store their inputs.
export function prngBytes(seed: number, length: number): Uint8Array {
  let s = seed >>> 0 || 1;
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    words[i] = s;
  }
  const bytes = new Uint8Array(words.buffer, 0, length);
  // Uint32Array is host-endian; every platform Node runs on is little-endian.
  return bytes.slice();
}

/** The same xorshift32, as a source of integers: below(n) is in [0, n). */
export function prngBelow(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}
