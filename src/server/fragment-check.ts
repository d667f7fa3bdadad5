// The check Swift's ECDiskFileReader makes of an EC archive read from its start: the archive is
// cut into fragment_size slices (the bytes of one fragment of a full segment, header included),
// and each slice, once read whole, goes through PyECLib's get_metadata; the piece left at the end
// of the file is checked when the file was read to its end. A slice whose header get_metadata
// refuses (ECInvalidFragmentMetadata: bad magic, libec_version 0, a metadata checksum that does
// not match, too few bytes for a header) makes the reader quarantine the archive and end the
// response. The payload is not checked: get_metadata does not read it.
import { CHECKED_HEADER_SIZE, crc32Short, headerProblem } from '../codec/index.js';

export class FragmentCheck {
  /** the checked part of the current slice's header, as far as it has been read */
  private readonly header = new Uint8Array(CHECKED_HEADER_SIZE);
  private sliceStart = 0;
  private pos = 0;

  constructor(private readonly fragmentSize: number) {
    if (!Number.isInteger(fragmentSize) || fragmentSize < CHECKED_HEADER_SIZE) throw new RangeError(`bad fragment size ${fragmentSize}`);
  }

  /** The archive's next bytes. Returns why a slice they complete is bad, or null. */
  take(chunk: Uint8Array): string | null {
    let i = 0;
    while (i < chunk.length) {
      const inSlice = this.pos - this.sliceStart;
      const n =
        inSlice < CHECKED_HEADER_SIZE
          ? Math.min(CHECKED_HEADER_SIZE - inSlice, chunk.length - i)
          : Math.min(this.fragmentSize - inSlice, chunk.length - i);
      if (inSlice < CHECKED_HEADER_SIZE) this.header.set(chunk.subarray(i, i + n), inSlice);
      i += n;
      this.pos += n;
      if (this.pos - this.sliceStart === this.fragmentSize) {
        const bad = this.check(this.fragmentSize);
        if (bad) return bad;
        this.sliceStart = this.pos;
      }
    }
    return null;
  }

  /** At the end of the file: why the last, partial slice is bad, or null (none there, or good). */
  finish(): string | null {
    const left = this.pos - this.sliceStart;
    return left > 0 ? this.check(left) : null;
  }

  private check(length: number): string | null {
    const problem = headerProblem(this.header.subarray(0, Math.min(length, CHECKED_HEADER_SIZE)), crc32Short);
    // Swift's message, with the offset of the slice in the archive
    return problem === null ? null : `Invalid EC metadata at offset 0x${this.sliceStart.toString(16)}`;
  }
}
