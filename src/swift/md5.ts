// MD5 (RFC 1321) for the short inputs Swift hashes all the time: object names (hash_path),
// file names in a suffix (the suffix hashes), metadata pickles (their checksum xattr), a
// partition number (the ring's handoff order). For these, a call into node:crypto costs more
// than the hashing, and loading node:crypto at all is a good part of a daemon's start: a
// reconstructor pass that never hashes bulk data need not load it. Bulk data (an archive's
// ETag) still goes through node:crypto, which is several times faster per byte.

const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;
const R = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const utf8 = new TextEncoder();
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export class Md5 {
  private a = 0x67452301;
  private b = 0xefcdab89 | 0;
  private c = 0x98badcfe | 0;
  private d = 0x10325476;
  private readonly block = new Uint8Array(64);
  private readonly x = new Int32Array(16);
  private fill = 0;
  private length = 0;
  private done = false;

  /** Adds bytes, or a string as its UTF-8 bytes. */
  update(data: Uint8Array | string): this {
    if (this.done) throw new Error('md5: update after digest');
    const bytes = typeof data === 'string' ? utf8.encode(data) : data;
    const { block } = this;
    let i = 0;
    const n = bytes.length;
    this.length += n;
    if (this.fill) {
      const take = Math.min(64 - this.fill, n);
      block.set(bytes.subarray(0, take), this.fill);
      this.fill += take;
      i = take;
      if (this.fill < 64) return this;
      this.compress(block, 0);
      this.fill = 0;
    }
    for (; i + 64 <= n; i += 64) this.compress(bytes, i);
    if (i < n) {
      block.set(bytes.subarray(i), 0);
      this.fill = n - i;
    }
    return this;
  }

  /** The 16-byte digest; the hash takes no more input after it. */
  digest(): Uint8Array {
    if (!this.done) {
      const bits = this.length * 8;
      const { block } = this;
      block[this.fill++] = 0x80;
      if (this.fill > 56) {
        block.fill(0, this.fill);
        this.compress(block, 0);
        this.fill = 0;
      }
      block.fill(0, this.fill, 56);
      const view = new DataView(block.buffer);
      view.setUint32(56, bits >>> 0, true);
      view.setUint32(60, Math.floor(bits / 2 ** 32), true);
      this.compress(block, 0);
      this.done = true;
    }
    const out = new Uint8Array(16);
    const v = new DataView(out.buffer);
    v.setInt32(0, this.a, true);
    v.setInt32(4, this.b, true);
    v.setInt32(8, this.c, true);
    v.setInt32(12, this.d, true);
    return out;
  }

  hex(): string {
    const d = this.digest();
    let s = '';
    for (let i = 0; i < 16; i++) s += HEX[d[i]!];
    return s;
  }

  private compress(m: Uint8Array, at: number): void {
    const { x } = this;
    for (let i = 0; i < 16; i++) {
      const j = at + i * 4;
      x[i] = m[j]! | (m[j + 1]! << 8) | (m[j + 2]! << 16) | (m[j + 3]! << 24);
    }
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      const s = R[((i >> 4) << 2) | (i & 3)]!;
      const t = (a + f + K[i]! + x[g]!) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((t << s) | (t >>> (32 - s)))) | 0;
    }
    this.a = (this.a + a) | 0;
    this.b = (this.b + b) | 0;
    this.c = (this.c + c) | 0;
    this.d = (this.d + d) | 0;
  }
}

/** md5 hex of bytes, or of a string's UTF-8 bytes */
export const md5Hex = (data: Uint8Array | string): string => new Md5().update(data).hex();
