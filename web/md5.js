// MD5 (RFC 1321), incremental: Swift's ETag of an object is the MD5 of its bytes, and Web
// Crypto has no MD5. Fed segment by segment, so the object need not be in one buffer.

const S = new Int32Array([7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]);
// K[i] = floor(|sin(i + 1)| * 2^32), as RFC 1321 defines it.
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

export class MD5 {
  #h = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
  #block = new Uint8Array(64);
  #words = new Int32Array(16);
  #filled = 0;
  #length = 0;

  /** Adds bytes; returns this. */
  update(bytes) {
    let off = 0;
    this.#length += bytes.length;
    if (this.#filled > 0) {
      const take = Math.min(64 - this.#filled, bytes.length);
      this.#block.set(bytes.subarray(0, take), this.#filled);
      this.#filled += take;
      off = take;
      if (this.#filled < 64) return this;
      this.#compress(this.#block, 0);
      this.#filled = 0;
    }
    for (; off + 64 <= bytes.length; off += 64) this.#compress(bytes, off);
    if (off < bytes.length) {
      this.#block.set(bytes.subarray(off));
      this.#filled = bytes.length - off;
    }
    return this;
  }

  /** The digest as 32 lowercase hex digits. */
  hex() {
    const bits = this.#length * 8;
    const pad = new Uint8Array((this.#filled < 56 ? 56 : 120) - this.#filled + 8);
    pad[0] = 0x80;
    const dv = new DataView(pad.buffer);
    dv.setUint32(pad.length - 8, bits >>> 0, true);
    dv.setUint32(pad.length - 4, Math.floor(bits / 2 ** 32), true);
    this.update(pad);
    let out = '';
    for (const v of this.#h) {
      for (let b = 0; b < 4; b++) out += ((v >>> (8 * b)) & 0xff).toString(16).padStart(2, '0');
    }
    return out;
  }

  #compress(src, off) {
    const x = this.#words;
    for (let i = 0; i < 16; i++) {
      const p = off + 4 * i;
      x[i] = src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24);
    }
    const h = this.#h;
    let a = h[0];
    let b = h[1];
    let c = h[2];
    let d = h[3];
    let t;
    for (let i = 0; i < 16; i++) {
      t = (a + ((b & c) | (~b & d)) + K[i] + x[i]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((t << S[i & 3]) | (t >>> (32 - S[i & 3])))) | 0;
    }
    for (let i = 16; i < 32; i++) {
      t = (a + ((d & b) | (~d & c)) + K[i] + x[(5 * i + 1) & 15]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((t << S[4 + (i & 3)]) | (t >>> (32 - S[4 + (i & 3)])))) | 0;
    }
    for (let i = 32; i < 48; i++) {
      t = (a + (b ^ c ^ d) + K[i] + x[(3 * i + 5) & 15]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((t << S[8 + (i & 3)]) | (t >>> (32 - S[8 + (i & 3)])))) | 0;
    }
    for (let i = 48; i < 64; i++) {
      t = (a + (c ^ (b | ~d)) + K[i] + x[(7 * i) & 15]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((t << S[12 + (i & 3)]) | (t >>> (32 - S[12 + (i & 3)])))) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
  }
}
