// The promise-returning file calls the Swift layer and the reconstructor make, built on node:fs's
// callback API. node:fs/promises would do the same, but loading it (with the readline and stream
// modules it pulls in) is a noticeable part of a daemon's start, and node:fs is loaded anyway.
// Each function resolves and rejects as its node:fs/promises namesake does.
import * as fs from 'node:fs';
import type * as fsp from 'node:fs/promises';
import { promisify } from 'node:util';

export const readdir = promisify(fs.readdir) as unknown as typeof fsp.readdir;
export const readFile = promisify(fs.readFile) as unknown as typeof fsp.readFile;
export const writeFile = promisify(fs.writeFile) as unknown as typeof fsp.writeFile;
export const stat = promisify(fs.stat) as unknown as typeof fsp.stat;
export const unlink = promisify(fs.unlink) as unknown as typeof fsp.unlink;
export const rm = promisify(fs.rm) as unknown as typeof fsp.rm;
export const rmdir = promisify(fs.rmdir) as unknown as typeof fsp.rmdir;
export const mkdir = promisify(fs.mkdir) as unknown as typeof fsp.mkdir;
export const rename = promisify(fs.rename) as unknown as typeof fsp.rename;

const openFd = promisify(fs.open);
const fsync = promisify(fs.fsync);
const close = promisify(fs.close);
const readFd = promisify(fs.readFile) as (fd: number) => Promise<Buffer>;
const writeFd = promisify(fs.writeFile) as (fd: number, data: string | Uint8Array) => Promise<void>;

/** An open file: the part of node:fs/promises' FileHandle these modules use. */
export class OpenFile {
  private closed = false;
  constructor(readonly fd: number) {}

  sync(): Promise<void> {
    return fsync(this.fd);
  }

  /** Up to `length` bytes into `buf` at `offset`, from the current position; resolves with how many came. */
  read(buf: Uint8Array, offset: number, length: number): Promise<number> {
    return new Promise((resolve, reject) => fs.read(this.fd, buf, offset, length, null, (err, n) => (err ? reject(err) : resolve(n))));
  }

  /** The whole file from the start (as FileHandle.readFile reads a file opened for reading). */
  readFile(): Promise<Buffer> {
    return readFd(this.fd);
  }

  /** All of `data`, at the end of the file for 'a', else at the current position. */
  writeFile(data: string | Uint8Array): Promise<void> {
    return writeFd(this.fd, data);
  }

  /** Closes the file now (a plain call); a second close does nothing, nor does a failing one. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* nothing to do about it */
    }
  }

  /** Closes the file; a second close does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await close(this.fd);
  }
}

export async function open(path: string, flags: string | number = 'r', mode?: number): Promise<OpenFile> {
  return new OpenFile(await openFd(path, flags, mode));
}
