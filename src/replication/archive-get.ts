// Reading fragment archives for a rebuild without making garbage: a GET over a plain socket
// whose bytes the kernel writes straight into one buffer per response (net's `onread`), and
// the local archive read from disk into one buffer. A rebuild reads k bytes for every byte it
// writes; through node:http every socket read is a fresh buffer outside V8's heap that lives
// until a collection, so the process grows with the stream and spends its time allocating.
// Here a response owns a single fragment-sized buffer for its whole life.
//
// The connections are kept: a rebuild asks the same few peers for one archive after another,
// and a connection per GET costs both ends more than a small archive's transfer (the handshake,
// the server's accept and socket set-up, the teardown). A connection goes back to the pool only
// when its response was read to the last byte of its Content-Length, with nothing beyond it,
// and the server did not say it would close; a request on a kept connection that the server
// has meanwhile closed is sent again on a new one.
//
// A peer's archive is checked against the MD5 its response's ETag names, as its bytes are handed
// out: the read that hands out the last ones fails instead when they do not add up, so a rebuild
// never produces its last segment from a rotten archive (and the SSYNC PUT carrying it is cut,
// leaving the partner nothing). Swift's object server sends a whole archive before it checks its
// MD5 (then quarantines it); its reconstructor passes the rotten bytes on. A response that says
// its server made that check before sending the last byte (`X-Backend-Archive-Checked: etag`,
// from fragmend's object server, which cuts the response otherwise) is not hashed again, and a
// rebuild that checks its sources another way (one fragment more than it needs, which the rest
// must rebuild to the byte: see fragment-fetcher.ts) turns the hashing off before it reads.
import type { Hash } from 'node:crypto';
import type { Socket } from 'node:net';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { ArchiveReadCheck } from '../swift/archive-check.js';
import { nodeCrypto } from '../swift/lazy-crypto.js';
import { BufferPool } from './buffer-pool.js';
import { connectWithin, hostOf, parseResponseHead, PeerTimeout, requestHead } from './peers.js';

/** Where a rebuild's fragments come from: a peer's response or the local archive. */
export interface FragmentReader {
  /**
   * The next n bytes (fewer only at the end of the archive, none after it). The view is
   * valid until the next read; it fails when the source ends before its length.
   */
  read(n: number): Promise<Uint8Array>;
  close(): void;
}

export class ArchiveReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveReadError';
  }
}

/** A peer's archive whose MD5 is not the one its response's ETag names. */
export class ArchiveEtagMismatch extends ArchiveReadError {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveEtagMismatch';
  }
}

export interface ArchiveGetRequest {
  ip: string;
  port: number;
  /** Quoted backend path, /<device>/<partition>/<account>/<container>/<object>. */
  path: string;
  headers: Record<string, string>;
  /** Milliseconds to connect. */
  connTimeoutMs: number;
  /** Milliseconds to wait for the response's headers. */
  headerTimeoutMs: number;
  /** Check the body against the response's ETag (the default): see the top of this file. */
  checkEtag?: boolean;
}

const MAX_HEAD = 1024 * 1024;
const SPARE = 64 * 1024;
/** an idle connection older than this is closed rather than reused (servers time theirs out) */
const IDLE_MS = 20_000;
const IDLE_PER_PEER = 8;

/** A kept connection; its socket's events go to the response using it, if any. */
interface GetConn {
  socket: Socket;
  key: string;
  owner: ArchiveGet | null;
  /** when it went idle */
  since: number;
}

const idleConns = new Map<string, GetConn[]>();

function takeIdle(key: string): GetConn | null {
  const list = idleConns.get(key);
  const now = Date.now();
  while (list?.length) {
    const c = list.pop()!;
    if (!c.socket.destroyed && now - c.since < IDLE_MS) {
      c.socket.ref();
      return c;
    }
    c.socket.destroy();
  }
  return null;
}

function keepIdle(c: GetConn): void {
  let list = idleConns.get(c.key);
  if (!list) idleConns.set(c.key, (list = []));
  if (list.length >= IDLE_PER_PEER) {
    c.socket.destroy();
    return;
  }
  c.owner = null;
  c.since = Date.now();
  // an idle connection keeps no process alive, and reads on: a hang-up (or anything unasked)
  // drops it at once
  c.socket.setTimeout(0);
  c.socket.unref();
  c.socket.resume();
  list.push(c);
}

function dropIdle(c: GetConn): void {
  const list = idleConns.get(c.key);
  const i = list ? list.indexOf(c) : -1;
  if (i >= 0) list!.splice(i, 1);
  c.socket.destroy();
}

/** Closes every kept connection (those in use close with their responses). */
export function closeIdleArchiveConnections(): void {
  for (const list of idleConns.values()) for (const c of list) c.socket.destroy();
  idleConns.clear();
}

/** The peer closed a kept connection before any of the response came. */
class StaleConnection extends Error {}

/** Fragment-sized buffers kept between rebuilds; a reader's comes back when it closes. */
export const fragmentBuffers = new BufferPool(16);

/**
 * One GET, read in place. `getArchive` resolves once the headers are in; the body is then
 * read with read(n) (a 200 must carry a Content-Length: chunked bodies are refused).
 */
export class ArchiveGet implements FragmentReader {
  statusCode = 0;
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Record<string, string> = {};
  contentLength = -1;

  private conn: GetConn | null = null;
  private reused = false;
  /** the server keeps the connection open after this response */
  private keepAlive = false;
  /** bytes came beyond the Content-Length: the connection is out of step */
  private overrun = false;
  private inHead = true;
  private head: Buffer = Buffer.allocUnsafe(16 * 1024);
  private headLen = 0;
  /** content bytes not yet read off the socket */
  private remaining = 0;
  /** content bytes read off the socket but not yet handed out (rare: see onRead) */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private buf: Buffer | null = null;
  private want = 0;
  private filled = 0;
  private waiter: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  /** the connection closed before the whole body was in */
  private ended = false;
  private closed = false;
  private spare: Buffer | null = null;
  private onHead!: { resolve: () => void; reject: (e: Error) => void };
  private headerTimeoutMs = 0;
  /** ip:port and path, for messages */
  private where = '';
  /** the ETag this end checks the body against (none: not checked), and the MD5 of what was handed out */
  private etag = '';
  private digest: Hash | null = null;
  private handed = 0;
  private checkEtag = true;
  /** The server said it checked the archive against its ETag before sending its last byte. */
  serverChecked = false;

  /** Reads on without hashing: the caller checks the bytes another way. Only before the first read. */
  skipEtagCheck(): void {
    if (this.handed === 0) this.etag = '';
  }

  /** @internal use getArchive */
  async start(req: ArchiveGetRequest, conn: GetConn | null): Promise<void> {
    let head: string;
    try {
      head = requestHead('GET', req.path, req.ip, req.port, req.headers);
    } catch (e) {
      if (conn) keepIdle(conn);
      throw new ArchiveReadError((e as Error).message);
    }
    this.reused = conn !== null;
    const c = conn ?? (await openConn(req));
    c.owner = this;
    this.conn = c;
    return new Promise<void>((resolve, reject) => {
      this.onHead = { resolve, reject };
      // the socket's idle timer covers the wait for headers; reads have their caller's timer
      this.headerTimeoutMs = req.headerTimeoutMs;
      this.where = `${req.ip}:${req.port}${req.path}`;
      this.checkEtag = req.checkEtag !== false;
      c.socket.setTimeout(req.headerTimeoutMs);
      c.socket.resume();
      // not end(): some servers drop a response once the client has half-closed
      c.socket.write(head, 'latin1');
    });
  }

  /** @internal the connection's socket went quiet for its timeout */
  onTimeout(): void {
    if (this.inHead) this.fail(new PeerTimeout(`timeout (${this.headerTimeoutMs / 1000}s) waiting for ${this.where}`));
  }

  /** @internal */
  onError(e: Error): void {
    const code = (e as NodeJS.ErrnoException).code;
    if (this.reused && this.inHead && this.headLen === 0 && (code === 'ECONNRESET' || code === 'EPIPE')) this.fail(new StaleConnection());
    else this.fail(e);
  }

  /** @internal Where the kernel writes the next read (net calls this after every read). */
  nextBuffer(): Uint8Array {
    if (this.inHead) {
      if (this.headLen === this.head.length && this.head.length < MAX_HEAD) {
        const bigger = Buffer.allocUnsafe(Math.min(MAX_HEAD, this.head.length * 4));
        this.head.copy(bigger, 0, 0, this.headLen);
        this.head = bigger;
      }
      if (this.headLen < this.head.length) return this.head.subarray(this.headLen);
      return this.spareBuffer();
    }
    const buf = this.buf;
    if (buf && this.waiter && this.filled < this.want) return buf.subarray(this.filled, this.want);
    // Paused between reads: the next read most likely starts this buffer over (unless bytes
    // are queued: they go there first). If it does not (a bigger read), onRead sees the bytes
    // landed elsewhere and copies them.
    if (buf && this.remaining > 0 && this.queuedBytes === 0) return buf.subarray(0, Math.min(buf.length, this.remaining));
    return this.spareBuffer();
  }

  private spareBuffer(): Buffer {
    return (this.spare ??= Buffer.allocUnsafe(SPARE));
  }

  /** @internal Returns false to pause the socket. */
  onRead(n: number, b: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.inHead) {
      if (b.buffer !== this.head.buffer || b.byteOffset !== this.head.byteOffset + this.headLen) {
        // landed elsewhere: the head is full, or the read was set up before this response
        // took the connection
        if (this.headLen + n > MAX_HEAD) {
          this.fail(new ArchiveReadError(`response headers over ${MAX_HEAD} bytes`));
          return false;
        }
        if (this.headLen + n > this.head.length) {
          const bigger = Buffer.allocUnsafe(Math.min(MAX_HEAD, Math.max(this.head.length * 4, this.headLen + n)));
          this.head.copy(bigger, 0, 0, this.headLen);
          this.head = bigger;
        }
        this.head.set(b.subarray(0, n), this.headLen);
      }
      const from = Math.max(0, this.headLen - 3);
      this.headLen += n;
      const end = this.head.subarray(0, this.headLen).indexOf('\r\n\r\n', from, 'latin1');
      if (end < 0) return true;
      try {
        this.parseHead(this.head.subarray(0, end).toString('latin1'));
      } catch (e) {
        this.fail(e as Error);
        return false;
      }
      this.inHead = false;
      this.conn!.socket.setTimeout(0);
      const extra = this.head.subarray(end + 4, this.headLen);
      const body = extra.subarray(0, Math.max(0, Math.min(extra.length, this.contentLength)));
      if (extra.length > body.length) this.overrun = true;
      if (body.length) this.queue(body); // a view of the old head buffer, which is not reused
      this.remaining = Math.max(0, this.contentLength - body.length);
      this.head = Buffer.alloc(0);
      this.onHead.resolve();
      return false;
    }
    const take = Math.min(n, this.remaining);
    this.remaining -= take;
    if (n > take) this.overrun = true;
    const buf = this.buf;
    if (buf && this.waiter && b.buffer === buf.buffer && b.byteOffset === buf.byteOffset + this.filled) {
      // in place; a read that asked for less than was handed out keeps the rest aside
      const k = Math.min(take, this.want - this.filled);
      this.filled += k;
      if (take > k) this.queue(Buffer.from(b.subarray(k, take)));
    } else if (take) {
      // landed outside the pending read (a read after a pause that asked for more): copy
      let at = 0;
      if (buf && this.waiter) {
        at = Math.min(take, this.want - this.filled);
        buf.set(b.subarray(0, at), this.filled);
        this.filled += at;
      }
      if (at < take) this.queue(Buffer.from(b.subarray(at, take)));
    }
    if (this.waiter && this.filled === this.want) {
      const w = this.waiter;
      this.waiter = null;
      const view = buf!.subarray(0, this.want);
      const bad = this.handOut(view);
      if (bad) {
        w.reject(bad);
        this.fail(bad);
      } else w.resolve(view);
      return false;
    }
    return this.waiter !== null && this.remaining > 0;
  }

  /** Keeps b as it is: callers pass bytes nobody will overwrite. */
  private queue(b: Buffer): void {
    this.queued.push(b);
    this.queuedBytes += b.length;
  }

  private parseHead(text: string): void {
    let head;
    try {
      head = parseResponseHead(text);
    } catch (e) {
      throw new ArchiveReadError((e as Error).message);
    }
    this.statusCode = head.statusCode;
    Object.assign(this.headers, head.headers);
    const te = this.headers['transfer-encoding'];
    const cl = this.headers['content-length'];
    const connection = (this.headers.connection ?? '').toLowerCase();
    this.keepAlive =
      !te &&
      cl !== undefined &&
      (head.minor === 0 ? connection === 'keep-alive' : !connection.split(',').some((t) => t.trim() === 'close'));
    if (te && te.toLowerCase() !== 'identity') {
      if (this.statusCode === 200) throw new ArchiveReadError(`a ${te} body where an archive with a Content-Length was expected`);
      this.contentLength = 0;
    } else if (cl !== undefined && /^\d+$/.test(cl)) {
      this.contentLength = Number(cl);
    } else if (this.statusCode === 200) {
      throw new ArchiveReadError(cl === undefined ? 'no Content-Length' : `bad Content-Length ${JSON.stringify(cl.slice(0, 40))}`);
    } else {
      this.contentLength = 0;
    }
    const etag = /^"?([0-9a-f]{32})"?$/i.exec(this.headers.etag ?? '')?.[1];
    const checked = (this.headers['x-backend-archive-checked'] ?? '').split(',').some((t) => t.trim().toLowerCase() === 'etag');
    this.serverChecked = checked && this.statusCode === 200;
    if (this.checkEtag && this.statusCode === 200 && this.contentLength > 0 && etag && !checked) {
      // (hashed from the first read on; a caller that checks another way says so before it)
      this.etag = etag.toLowerCase();
    }
  }

  /** Bytes about to be handed out: null, or why the archive fails (its last bytes, with an MD5 not its ETag's). */
  private handOut(view: Uint8Array): ArchiveEtagMismatch | null {
    if (!this.etag) return null;
    (this.digest ??= nodeCrypto().createHash('md5')).update(view);
    this.handed += view.length;
    if (this.handed < this.contentLength) return null;
    const md5 = this.digest.digest('hex');
    const etag = this.etag;
    this.etag = '';
    this.digest = null;
    return md5 === etag ? null : new ArchiveEtagMismatch(`the archive from ${this.where} does not match its ETag ${etag} (its MD5 is ${md5})`);
  }

  read(n: number): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new ArchiveReadError('a read is already pending'));
    const want = Math.min(n, this.queuedBytes + this.remaining);
    if (want <= 0) return Promise.resolve(new Uint8Array(0));
    if (!this.buf || this.buf.length < want) {
      fragmentBuffers.give(this.buf);
      this.buf = fragmentBuffers.take(Math.max(want, n));
    }
    const buf = this.buf;
    this.want = want;
    this.filled = 0;
    while (this.filled < want && this.queued.length) {
      const q = this.queued[0]!;
      const k = Math.min(q.length, want - this.filled);
      q.copy(buf, this.filled, 0, k);
      this.filled += k;
      this.queuedBytes -= k;
      if (k === q.length) this.queued.shift();
      else this.queued[0] = q.subarray(k);
    }
    if (this.filled === want) {
      const view = buf.subarray(0, want);
      const bad = this.handOut(view);
      if (!bad) return Promise.resolve(view);
      this.fail(bad);
      return Promise.reject(bad);
    }
    if (this.ended || this.closed) return Promise.reject(new ArchiveReadError(`response ended ${this.remaining} bytes short of its Content-Length`));
    return new Promise<Uint8Array>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.conn?.socket.resume();
    });
  }

  private settleShort(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.reject(new ArchiveReadError(`response ended ${this.remaining} bytes short of its Content-Length`));
  }

  /** @internal */
  onEnd(): void {
    this.keepAlive = false;
    if (this.inHead) {
      this.fail(this.reused && this.headLen === 0 ? new StaleConnection() : new ArchiveReadError('connection closed before the response headers'));
      return;
    }
    if (this.remaining > 0) this.ended = true;
    if (this.waiter && this.filled < this.want) this.settleShort();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    if (this.inHead) this.onHead?.reject(e);
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const c = this.conn;
    this.conn = null;
    if (c) {
      c.owner = null;
      const complete = !this.failure && !this.inHead && !this.ended && !this.overrun && this.remaining === 0;
      if (complete && this.keepAlive) keepIdle(c);
      else c.socket.destroy();
    }
    const w = this.waiter;
    this.waiter = null;
    w?.reject(new ArchiveReadError('response closed while a read was pending'));
    // the socket reads into it no more
    fragmentBuffers.give(this.buf);
    this.buf = null;
  }
}

/** Sends the GET (on a kept connection to the peer when there is one); resolves with the response once its headers are in. */
export async function getArchive(req: ArchiveGetRequest): Promise<ArchiveGet> {
  const kept = takeIdle(`${hostOf(req.ip)}:${req.port}`);
  if (kept) {
    const g = new ArchiveGet();
    try {
      await g.start(req, kept);
      return g;
    } catch (e) {
      if (!(e instanceof StaleConnection)) throw e;
    }
  }
  const g = new ArchiveGet();
  await g.start(req, null);
  return g;
}

/** where reads on a connection nobody is using land (they only drop it) */
let unasked: Buffer | undefined;

async function openConn(req: ArchiveGetRequest): Promise<GetConn> {
  const host = hostOf(req.ip);
  let conn: GetConn | null = null;
  const onread = {
    buffer: () => conn?.owner?.nextBuffer() ?? (unasked ??= Buffer.allocUnsafe(SPARE)),
    callback: (n: number, b: Uint8Array) => {
      if (conn?.owner) return conn.owner.onRead(n, b);
      // bytes nobody asked for: the connection is out of step
      if (conn) dropIdle(conn);
      return false;
    },
  };
  const socket = await connectWithin({ host, port: req.port, noDelay: true, onread }, req.connTimeoutMs, `${req.ip}:${req.port}`);
  const c: GetConn = { socket, key: `${host}:${req.port}`, owner: null, since: 0 };
  conn = c;
  socket.on('error', (e) => (c.owner ? c.owner.onError(e) : dropIdle(c)));
  socket.on('end', () => (c.owner ? c.owner.onEnd() : dropIdle(c)));
  socket.on('close', () => (c.owner ? c.owner.onEnd() : dropIdle(c)));
  socket.on('timeout', () => c.owner?.onTimeout());
  return c;
}

/**
 * The local archive, read from disk into one buffer. Plain reads, as Swift's reconstructor
 * makes them: the file is usually in the page cache, where a read through the thread pool
 * costs twice the CPU of the copy itself.
 */
export class LocalArchive implements FragmentReader {
  private buf: Buffer | null = null;
  private pos = 0;
  private closed = false;
  private constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly check: ArchiveReadCheck | null,
  ) {}

  /** With `check`, the bytes read are checked as Swift's object server checks a GET's (see ArchiveReadCheck). */
  static async open(path: string, check?: ArchiveReadCheck): Promise<LocalArchive> {
    const fd = openSync(path, 'r');
    try {
      return new LocalArchive(fd, fstatSync(fd).size, check ?? null);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  async read(n: number): Promise<Uint8Array> {
    if (this.closed) throw new ArchiveReadError('local archive closed');
    const want = Math.min(n, this.size - this.pos);
    if (want <= 0) {
      await this.check?.eof();
      return new Uint8Array(0);
    }
    if (!this.buf || this.buf.length < want) {
      fragmentBuffers.give(this.buf);
      this.buf = fragmentBuffers.take(Math.max(want, n));
    }
    let got = 0;
    while (got < want) {
      const k = readSync(this.fd, this.buf, got, want - got, this.pos + got);
      if (k === 0) throw new ArchiveReadError(`local archive ended ${want - got} bytes short of its size`);
      got += k;
    }
    this.pos += want;
    await this.check?.take(this.buf.subarray(0, want));
    return this.buf.subarray(0, want);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fragmentBuffers.give(this.buf);
    this.buf = null;
    try {
      closeSync(this.fd);
    } catch {
      /* already gone */
    }
  }
}
