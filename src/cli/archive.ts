// Fragment archives as Swift stores them: the fragments of each segment of an object,
// concatenated. Every fragment starts with its own header, so an archive is read fragment
// by fragment without knowing the policy's segment size.
import { open, type FileHandle } from 'node:fs/promises';
import { ECBadHeader, HEADER_SIZE } from '../codec/index.js';

/** Reads one archive a fragment at a time, with positional reads (bounded memory). */
export class ArchiveReader {
  private pos = 0;
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<ArchiveReader> {
    const fh = await open(path, 'r');
    const { size } = await fh.stat();
    return new ArchiveReader(path, fh, size);
  }

  /** The next fragment, or null at the end of the archive. */
  async next(): Promise<Uint8Array | null> {
    if (this.pos >= this.size) return null;
    const head = new Uint8Array(HEADER_SIZE);
    const { bytesRead } = await this.fh.read(head, 0, HEADER_SIZE, this.pos);
    if (bytesRead < HEADER_SIZE) throw new ECBadHeader(`${this.path}: truncated fragment header at byte ${this.pos}`);
    const payload = new DataView(head.buffer).getUint32(4, true);
    const frag = new Uint8Array(HEADER_SIZE + payload);
    frag.set(head);
    const got = await this.fh.read(frag, HEADER_SIZE, payload, this.pos + HEADER_SIZE);
    if (got.bytesRead < payload) throw new ECBadHeader(`${this.path}: truncated fragment payload at byte ${this.pos}`);
    this.pos += frag.length;
    return frag;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
