// The check Swift's ECDiskFileReader makes of an EC archive read from its start: the archive is
// cut into fragment_size slices (the bytes of one fragment of a full segment, header included),
// and each slice, once read whole, goes through PyECLib's get_metadata; the piece left at the end
// of the file is checked when the file was read to its end. A slice whose header get_metadata
// refuses (ECInvalidFragmentMetadata: bad magic, libec_version 0, a metadata checksum that does
// not match, too few bytes for a header) makes the reader quarantine the archive and end the
// response. The payload is not checked: get_metadata does not read it.
//
// ArchiveReadCheck adds the rest of what that reader checks, the size and MD5 of an archive read
// to its end. The object server's GETs use it, and so do the reads the reconstructor makes of its
// own disk (where Swift's reconstructor GETs its archives from its object server, which checks
// them). An archive fragmend's object server wrote carries the CRC-32 of its bytes, taken when
// their MD5 was its ETag (content-check.ts); its bytes are checked by that instead, and only one
// that fails it is hashed with MD5, read again from the disk, to decide.
import type { Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { crc32Short } from '../codec/crc.js';
import { CHECKED_HEADER_SIZE, headerProblem } from '../codec/fragment.js';
import { open } from './afs.js';
import { DiskFileQuarantined, type ECDiskFile } from './diskfile.js';
import { nodeCrypto } from './lazy-crypto.js';

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

const md5 = (): Hash => nodeCrypto().createHash('md5');

/**
 * The MD5 (hex) of a file's bytes, read again in 1 MiB pieces (only an archive that failed its
 * CRC-32 is). Through the thread pool: an archive may be gigabytes, and the server reading it
 * goes on serving meanwhile.
 */
async function md5OfFile(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const hash = md5();
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n: number; (n = await fh.read(buf, 0, buf.length)) > 0; ) hash.update(buf.subarray(0, n));
    return hash.digest('hex');
  } finally {
    fh.closeSync();
  }
}

export interface ArchiveReadCheckOptions {
  /** The archive's Content-Length. */
  size: number;
  /** Its ETag (the MD5 of its bytes); none: not compared. */
  etag?: string;
  /**
   * The CRC-32 recorded of the bytes whose MD5 is `etag`: the bytes read are compared with it in
   * place of the ETag, and only when they differ is `md5OfFile` asked for the MD5 that decides.
   */
  crc32?: number | null;
  /** The MD5 (hex) of the archive as it is on the disk now, read again; see `crc32`. */
  md5OfFile?: () => Promise<string>;
  /** The policy's fragment_size, for an EC archive; none: no fragment headers checked. */
  fragmentSize?: number;
  /** Moves the archive to quarantine (Swift's quarantine_renamer). */
  quarantine: (why: string) => Promise<unknown>;
  /**
   * Whether reading the archive to its end checks its size, its MD5 and its last, partial
   * fragment (the default). Swift's reader makes those checks on closing, and only when its last
   * read started at the first byte: a multi-range GET whose range from 0 is not its last has
   * its whole fragments checked and nothing more.
   */
  endChecks?: boolean;
}

/**
 * The checks of an open diskfile's data file, quarantining it as Swift's reader does and
 * logging it as Swift logs it; with `md5: false` (a read that stops short of the end) the
 * fragment headers and size only.
 */
export function diskFileCheck(df: ECDiskFile, log: { warn(msg: string): void } | undefined, opts: { md5?: boolean } = {}): ArchiveReadCheckOptions {
  const dataFile = df.dataFile!;
  return {
    size: df.contentLength,
    etag: opts.md5 === false ? undefined : df.datafileMetadata.ETag,
    crc32: df.contentCrc32,
    md5OfFile: async () => {
      const md5 = await md5OfFile(dataFile);
      if (md5 === df.datafileMetadata.ETag) log?.warn(`The content check recorded with ${dataFile} does not match its bytes, which match its ETag`);
      return md5;
    },
    fragmentSize: df.policy.ec?.fragmentSize,
    quarantine: async (why) => {
      log?.warn(`Quarantined object ${df.dataFile}: ${why}`);
      await df.quarantine(df.dataFile!, why);
    },
  };
}

/**
 * The checks of Swift's EC reader over an archive read from its start, made before the bytes are
 * used rather than after they are sent: a fragment with a bad header, and an archive whose bytes
 * do not add up to its size and ETag, are quarantined, and the read fails with
 * DiskFileQuarantined on the bytes that showed it (for a bad MD5, the last ones), so that a
 * rebuild, a push or a GET never hands on the archive's end. Swift sends them and quarantines
 * after; what it rebuilt from them, pushed or served has gone out by then.
 */
export class ArchiveReadCheck {
  private readonly frags: FragmentCheck | null;
  private readonly hash: Hash | null;
  /** the running CRC-32, when the bytes are checked by the recorded one (see ArchiveReadCheckOptions.crc32) */
  private crc: number | null;
  private read = 0;
  private failed: DiskFileQuarantined | null = null;
  /** Every byte of the archive has been taken and checked. */
  complete = false;

  constructor(private readonly o: ArchiveReadCheckOptions) {
    this.frags = o.fragmentSize ? new FragmentCheck(o.fragmentSize) : null;
    this.crc = o.etag && typeof o.crc32 === 'number' ? 0 : null;
    this.hash = o.etag && this.crc === null ? md5() : null;
  }

  /** The archive's bytes are compared with its ETag, or with a CRC-32 taken when they matched it (when it is read to its end). */
  get checksEtag(): boolean {
    return (this.hash !== null || this.crc !== null) && this.o.endChecks !== false;
  }

  /** The archive's next bytes, in order from its start (any past its size fail it). */
  async take(chunk: Uint8Array): Promise<void> {
    if (this.failed) throw this.failed;
    this.read += chunk.length;
    if (this.read > this.o.size) return this.fail(`Bytes read: ${this.read}, does not match metadata: ${this.o.size}`);
    const bad = this.frags?.take(chunk);
    if (bad) return this.fail(bad);
    if (this.crc !== null) this.crc = crc32(chunk, this.crc);
    else this.hash?.update(chunk);
    if (this.read === this.o.size && this.o.endChecks !== false) return this.end();
  }

  /** The file ended here (a read found nothing more). */
  async eof(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.o.endChecks === false) return;
    if (this.read !== this.o.size) return this.fail(`Bytes read: ${this.read}, does not match metadata: ${this.o.size}`);
    if (!this.complete) return this.end();
  }

  private async end(): Promise<void> {
    this.complete = true;
    let got = this.hash?.digest('hex');
    if (this.crc !== null && this.crc !== this.o.crc32) {
      // rot, or a record gone bad: the MD5 of what the disk holds decides
      got = this.o.md5OfFile
        ? await this.o.md5OfFile().catch((e: Error) => `unreadable (${e.message})`)
        : `not taken (its CRC-32 ${this.crc.toString(16)} is not the ${this.o.crc32!.toString(16)} recorded)`;
    }
    if (got !== undefined && got !== this.o.etag) return this.fail(`ETag ${this.o.etag} and file's md5 ${got} do not match`);
    const bad = this.frags?.finish();
    if (bad) return this.fail(bad);
  }

  private async fail(why: string): Promise<never> {
    this.failed = new DiskFileQuarantined(why);
    await this.o.quarantine(why).catch(() => undefined);
    throw this.failed;
  }
}
