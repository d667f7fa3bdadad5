// Buffers kept for reuse. A fresh buffer of a fragment's size is fresh pages, which the kernel
// faults in and zeroes on the first read into them: for a read that fills it once, more than
// the copy itself. Who gives a buffer back promises nothing will read or write it afterwards
// (a socket that may still be sending from it keeps it out).
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(private readonly keep: number) {}

  /** A buffer of at least n bytes, from the free list when one is big enough. */
  take(n: number): Buffer {
    const { free } = this;
    for (let i = free.length - 1; i >= 0; i--) {
      const b = free[i]!;
      if (b.length >= n) {
        free[i] = free[free.length - 1]!;
        free.pop();
        return b;
      }
    }
    return Buffer.allocUnsafeSlow(n);
  }

  give(b: Buffer | null | undefined): void {
    if (b && this.free.length < this.keep && !this.free.includes(b)) this.free.push(b);
  }
}
