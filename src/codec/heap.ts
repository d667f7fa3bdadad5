// A first-fit allocator over a wasm module's linear memory. The codec's tables live here for
// the life of a coder, and each call borrows scratch regions for its shards. Blocks are
// 64-byte aligned so SIMD loads of a shard start on a cache line.

const ALIGN = 64;
const PAGE = 65536;

const alignUp = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

export class WasmHeap {
  private readonly memory: WebAssembly.Memory;
  /** Free blocks as [start, size], sorted by start, never adjacent. */
  private free: Array<[number, number]> = [];
  private readonly sizes = new Map<number, number>();
  private view: Uint8Array;
  private words: Uint32Array;

  constructor(memory: WebAssembly.Memory, base: number) {
    this.memory = memory;
    const start = alignUp(base);
    const end = memory.buffer.byteLength;
    if (end > start) this.free.push([start, end - start]);
    this.view = new Uint8Array(memory.buffer);
    this.words = new Uint32Array(memory.buffer);
  }

  /** The memory as bytes; a fresh view after the memory grew. */
  get u8(): Uint8Array {
    if (this.view.buffer !== this.memory.buffer) this.view = new Uint8Array(this.memory.buffer);
    return this.view;
  }

  /** The memory as 32-bit words (little-endian, as wasm is); a fresh view after growth. */
  get u32(): Uint32Array {
    if (this.words.buffer !== this.memory.buffer) this.words = new Uint32Array(this.memory.buffer);
    return this.words;
  }

  /** The memory's current ArrayBuffer (replaced, and the old one detached, when it grows). */
  get buffer(): ArrayBuffer {
    return this.memory.buffer;
  }

  /**
   * Where `view` starts in this memory, or -1 when it is not a view of it: a view of the
   * current buffer can be handed to the kernels in place, with no copy.
   */
  offsetOf(view: Uint8Array): number {
    return view.buffer === this.memory.buffer ? view.byteOffset : -1;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  alloc(bytes: number): number {
    const size = alignUp(Math.max(bytes, 1));
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < this.free.length; i++) {
        const [start, avail] = this.free[i]!;
        if (avail < size) continue;
        if (avail === size) this.free.splice(i, 1);
        else this.free[i] = [start + size, avail - size];
        this.sizes.set(start, size);
        return start;
      }
      this.grow(size);
    }
    throw new RangeError(`wasm heap cannot provide ${bytes} bytes`);
  }

  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    this.insertFree(ptr, size);
  }

  /** Allocates, runs fn, and releases, whatever fn does. */
  with<T>(bytes: number, fn: (ptr: number) => T): T {
    const ptr = this.alloc(bytes);
    try {
      return fn(ptr);
    } finally {
      this.release(ptr);
    }
  }

  private grow(size: number): void {
    const oldEnd = this.memory.buffer.byteLength;
    const last = this.free[this.free.length - 1];
    const tail = last && last[0] + last[1] === oldEnd ? last[1] : 0;
    // Growing detaches every view of the memory, callers' included: grow by at least a
    // quarter (and 1 MiB) so that it happens rarely.
    const pages = Math.max(Math.ceil((size - tail) / PAGE), Math.ceil(oldEnd / 4 / PAGE), 16);
    this.memory.grow(pages);
    this.insertFree(oldEnd, pages * PAGE);
  }

  private insertFree(start: number, size: number): void {
    let i = 0;
    while (i < this.free.length && this.free[i]![0] < start) i++;
    this.free.splice(i, 0, [start, size]);
    // Merge with the next block, then with the previous one.
    const next = this.free[i + 1];
    if (next && start + size === next[0]) {
      this.free[i] = [start, size + next[1]];
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    const cur = this.free[i]!;
    if (prev && prev[0] + prev[1] === cur[0]) {
      this.free[i - 1] = [prev[0], prev[1] + cur[1]];
      this.free.splice(i, 1);
    }
  }
}
