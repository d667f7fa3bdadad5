// The receiving end of SSYNC, as Swift 2.30's ssync_receiver.Receiver behaves: admission by
// the server-wide replication semaphore, the partition's replication lock (plus a device slot),
// MISSING_CHECK against the local diskfiles opened with the sender's X-Backend-Ssync-Frag-Index
// (committing a local non-durable fragment that the sender holds durable, instead of asking for
// its bytes), then UPDATES: every PUT/POST/DELETE subrequest is handed to the object server's
// own handlers with Swift's replication headers. Failures end the session with an ':ERROR:'
// line and a dropped connection, so a sender never mistakes a partial sync for a complete one;
// a PUT whose body breaks off is never committed.
import type { ECDiskFileManager } from '../swift/diskfile.js';
import { DiskFileDeleted, DiskFileError } from '../swift/diskfile.js';
import { acquireLock, LockTimeout, type LockOptions } from '../swift/locks.js';
import type { StoragePolicy } from '../swift/policies.js';
import { pyFloatRepr, pyInt } from '../swift/python-values.js';
import { Timestamp } from '../swift/timestamp.js';
import {
  decodeMissing,
  encodeWanted,
  errorLine,
  MISSING_CHECK_END,
  MISSING_CHECK_START,
  pyRepr,
  UPDATES_END,
  UPDATES_START,
  type LocalState,
  type OfferedObject,
} from './ssync-protocol.js';

/**
 * Where a receiver reads the sender's bytes from: up to `max` bytes, null once the stream has
 * ended. A source throws SourceTimeout when nothing arrived for timeoutMs, SourceReadError when
 * the stream broke (peer gone, bad framing).
 */
export interface ByteSource {
  read(max: number, timeoutMs: number): Promise<Uint8Array | null>;
}

export class SourceTimeout extends Error {
  constructor(message = 'read timed out') {
    super(message);
    this.name = 'SourceTimeout';
  }
}

export class SourceReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceReadError';
  }
}

/** Swift's MessageTimeout: '<seconds> second[s]: <context>', as eventlet's Timeout prints it. */
export class MessageTimeout extends Error {
  constructor(
    readonly seconds: number,
    readonly context: string,
  ) {
    super(`${pyFloatRepr(seconds)} second${seconds === 1 ? '' : 's'}: ${context}`);
    this.name = 'MessageTimeout';
  }
}

/** The sender's stream broke off (disconnect, bad chunking, a body shorter than announced). */
export class ChunkReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkReadError';
  }
}

class SsyncClientDisconnected extends Error {}

/**
 * A replication lock not granted in time, worded as Swift's LockTimeout prints itself: the
 * partition lock's timeout is an int ('15 seconds'), the device lock's what remained of it.
 */
class ReplicationLockTimeout extends Error {
  constructor(seconds: number, path: string, isFloat: boolean) {
    super(`${isFloat ? pyFloatRepr(seconds) : String(seconds)} second${seconds === 1 ? '' : 's'}: ${path}`);
  }
}

/** A swob HTTPException raised inside the session: reported as ':ERROR: <status> <repr(bytes body)>'. */
class SessionHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(body);
  }
}

const SERVICE_UNAVAILABLE_BODY = '<html><h1>Service Unavailable</h1><p>The server is currently unavailable. Please try again at a later time.</p></html>';

/** Python 3's repr() of a bytes object (given as latin-1 text), as Swift 2.30 prints HTTPException bodies. */
export function pyBytesRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = 'b' + q;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    const ch = String.fromCharCode(c);
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += '\\' + q;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c >= 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + q;
}

const PY_WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d, 0x0b, 0x0c]);

/** bytes.strip(): ASCII whitespace only (latin-1 0xa0 is not whitespace to Python's bytes). */
function pyStrip(b: Uint8Array): Uint8Array {
  let s = 0;
  let e = b.length;
  while (s < e && PY_WHITESPACE.has(b[s]!)) s++;
  while (e > s && PY_WHITESPACE.has(b[e - 1]!)) e--;
  return b.subarray(s, e);
}

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
const strStrip = (s: string) => s.replace(/^[ \t\n\r\x0b\x0c]+|[ \t\n\r\x0b\x0c]+$/g, '');

/**
 * Lines and byte runs from a ByteSource, never holding more than one line (or one read) at a
 * time beyond what the source delivered: a fast sender cannot make the receiver buffer a
 * whole fragment archive.
 */
class SessionInput {
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;

  constructor(
    private readonly src: ByteSource,
    private readonly timeoutSeconds: number,
    private readonly chunkSize: number,
  ) {}

  private async fill(context: string): Promise<boolean> {
    if (this.eof) return false;
    let got: Uint8Array | null;
    try {
      got = await this.src.read(this.chunkSize, this.timeoutSeconds * 1000);
    } catch (e) {
      if (e instanceof SourceTimeout) throw new MessageTimeout(this.timeoutSeconds, context);
      throw new ChunkReadError(`${context}: ${(e as Error).message}`);
    }
    if (got === null) {
      this.eof = true;
      return false;
    }
    const chunk = Buffer.from(got.buffer, got.byteOffset, got.length);
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  /**
   * The next line with its terminator, or what is left before the end of the stream, or null
   * at the end. A line longer than maxLen is a protocol error, not a truncation (Swift would
   * read the rest of it as the next line).
   */
  async readLine(maxLen: number, context: string): Promise<Uint8Array | null> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0) {
        if (nl + 1 > maxLen) throw new Error(`${context}: line longer than ${maxLen} bytes`);
        const line = this.buf.subarray(0, nl + 1);
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      if (this.buf.length >= maxLen) throw new Error(`${context}: line longer than ${maxLen} bytes`);
      if (!(await this.fill(context))) {
        if (!this.buf.length) return null;
        const rest = this.buf;
        this.buf = Buffer.alloc(0);
        return rest;
      }
    }
  }

  /** Up to max bytes, or null at the end of the stream. */
  async read(max: number, context: string): Promise<Uint8Array | null> {
    if (!this.buf.length && !(await this.fill(context))) return null;
    const n = Math.min(max, this.buf.length);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

export interface SsyncSubrequest {
  method: 'PUT' | 'POST' | 'DELETE';
  /** The object path as the sender wrote it (still URL-quoted), e.g. /AUTH_test/c/o. */
  path: string;
  /**
   * Header names lower-cased, in the order received (a repeated name keeps its first place and
   * its last value), followed by X-Backend-Storage-Policy-Index, X-Backend-Replication,
   * X-Backend-Ssync-Frag-Index and X-Backend-Replication-Headers.
   */
  headers: Map<string, string>;
  /** PUT: exactly Content-Length bytes, then null; a sender that stops early makes it throw. */
  body: ByteSource | null;
}

export interface SsyncSubresponse {
  status: number;
  body?: string;
}

/** A counting semaphore taken without waiting (Swift's replication_semaphore.acquire(False)). */
export interface Semaphore {
  tryAcquire(): boolean;
  release(): void;
}

export class CountingSemaphore implements Semaphore {
  private held = 0;
  constructor(readonly limit: number) {}
  tryAcquire(): boolean {
    if (this.held >= this.limit) return false;
    this.held++;
    return true;
  }
  release(): void {
    if (this.held > 0) this.held--;
  }
  get inUse(): number {
    return this.held;
  }
}

export interface ReceiverLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SsyncReceiverOptions {
  manager: ECDiskFileManager;
  device: string;
  /** The device's directory (already checked to be present and mounted). */
  devPath: string;
  partition: string;
  policy: StoragePolicy;
  /** X-Backend-Ssync-Frag-Index: the index this node holds; null for a replicator-style session. */
  fragIndex: number | null;
  /** Runs one subrequest through the object server's own PUT/POST/DELETE. */
  apply(sub: SsyncSubrequest): Promise<SsyncSubresponse>;
  semaphore?: Semaphore | null;
  /** Seconds to wait for each read from the sender (client_timeout). */
  clientTimeout: number;
  /** Longest line and largest read (network_chunk_size). */
  networkChunkSize: number;
  replicationLockTimeout: number;
  /** Device slots (0: no device lock), replication_concurrency_per_device. */
  replicationConcurrencyPerDevice: number;
  failureThreshold?: number;
  failureRatio?: number;
  log: ReceiverLog;
  remoteAddr?: string;
}

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const CRLF = enc('\r\n');

export class SsyncReceiver {
  /** Whether the connection must be dropped (no final chunk) once run() is over. */
  disconnect = true;
  private readonly input: SessionInput;
  private readonly where: string;

  constructor(
    private readonly opts: SsyncReceiverOptions,
    source: ByteSource,
  ) {
    this.input = new SessionInput(source, opts.clientTimeout, opts.networkChunkSize);
    this.where = `${opts.remoteAddr ?? '-'}/${opts.device}/${opts.partition}`;
  }

  /** The response body, one HTTP chunk per yielded piece, as Swift's Receiver.__call__ yields it. */
  async *run(): AsyncGenerator<Uint8Array, void, void> {
    const { log } = this.opts;
    try {
      // A first piece forces the status line and headers out before the sender's lines are read.
      yield CRLF;
      const sem = this.opts.semaphore ?? null;
      if (sem && !sem.tryAcquire()) throw new SessionHttpError(503, SERVICE_UNAVAILABLE_BODY);
      try {
        const release = await this.replicationLock();
        try {
          yield* this.missingCheck();
          yield* this.updates();
        } finally {
          release();
        }
        this.disconnect = false;
      } finally {
        sem?.release();
      }
    } catch (e) {
      if (e instanceof SsyncClientDisconnected) {
        log.error({ device: this.opts.device, partition: this.opts.partition }, 'ssync client disconnected');
        this.disconnect = true;
      } else if (e instanceof ReplicationLockTimeout) {
        log.debug({}, `${this.where} SSYNC LOCK TIMEOUT: ${e.message}`);
        yield enc(errorLine(0, e.message));
      } else if (e instanceof MessageTimeout) {
        log.error({}, `${this.where} TIMEOUT in ssync.Receiver: ${e.message}`);
        yield enc(errorLine(408, e.message));
      } else if (e instanceof ChunkReadError) {
        log.error({}, `${this.where} read failed in ssync.Receiver: ${e.message}`);
      } else if (e instanceof SessionHttpError) {
        yield enc(`:ERROR: ${e.status} ${pyBytesRepr(e.body)}\n`);
      } else {
        log.error({ err: e }, `${this.where} EXCEPTION in ssync.Receiver`);
        yield enc(errorLine(0, (e as Error).message ?? String(e)));
      }
    }
  }

  /** Swift's replication_lock: the partition's .lock-replication, then a device slot. */
  private async replicationLock(): Promise<() => void> {
    const o = this.opts;
    const deadline = Date.now() + o.replicationLockTimeout * 1000;
    const partPath = o.manager.partPath(o.devPath, o.policy, o.partition);
    const lock = async (dir: string, opts: LockOptions, isFloat: boolean) => {
      try {
        return await acquireLock(dir, opts);
      } catch (e) {
        if (e instanceof LockTimeout) throw new ReplicationLockTimeout(opts.timeout!, e.path, isFloat);
        throw e;
      }
    };
    const releasePart = await lock(partPath, { name: 'replication', timeout: o.replicationLockTimeout }, false);
    if (!o.replicationConcurrencyPerDevice) return releasePart;
    try {
      const releaseDev = await lock(o.devPath, { timeout: Math.max(0, (deadline - Date.now()) / 1000), limit: o.replicationConcurrencyPerDevice }, true);
      return () => {
        releaseDev();
        releasePart();
      };
    } catch (e) {
      releasePart();
      throw e;
    }
  }

  private readLine(context: string): Promise<Uint8Array | null> {
    return this.input.readLine(this.opts.networkChunkSize, context);
  }

  /** What this node holds for an offered hash (Receiver._check_local). */
  private async checkLocal(remote: OfferedObject, makeDurable = true): Promise<LocalState> {
    const o = this.opts;
    const df = o.manager.diskFileFromHash(o.devPath, o.partition, remote.hash, o.policy, { fragIndex: o.fragIndex, openExpired: true });
    let result: LocalState;
    try {
      await df.open();
      const md = df.metadata;
      result = {
        tsData: df.dataTimestamp,
        tsMeta: df.timestamp,
        tsCtype: new Timestamp(md['Content-Type-Timestamp'] ?? df.datafileMetadata['X-Timestamp']!),
      };
    } catch (e) {
      if (e instanceof DiskFileDeleted) result = { tsData: e.timestamp };
      else if (e instanceof DiskFileError) result = {};
      else throw e;
    }
    const durable = df.durableTimestamp;
    const frags = df.fragments.get(remote.tsData.internal);
    if ((durable === null || durable.compare(remote.tsData) < 0) && o.fragIndex !== null && frags?.includes(o.fragIndex)) {
      // The sender offers a fragment we already hold, newer than anything durable here.
      if (remote.durable) {
        if (makeDurable) {
          try {
            await df.writer().commit(remote.tsData);
            return this.checkLocal(remote, false);
          } catch (e) {
            o.log.error({ err: e }, `${this.where} EXCEPTION in ssync.Receiver while attempting commit of ${df.datadir}`);
          }
        }
      } else {
        // Both hold the same non-durable fragment: its data is in sync even if an older
        // durable one is what opened.
        result.tsData = remote.tsData;
      }
    }
    return result;
  }

  private async *missingCheck(): AsyncGenerator<Uint8Array> {
    let line = await this.readLine('missing_check start');
    if (!line) throw new SsyncClientDisconnected();
    if (latin1(pyStrip(line)) !== MISSING_CHECK_START) {
      throw new Error(`Looking for ${MISSING_CHECK_START} got ${pyBytesRepr(latin1(line.subarray(0, 1024)))}`);
    }
    const wanted: string[] = [];
    for (;;) {
      line = await this.readLine('missing_check line');
      if (!line || latin1(pyStrip(line)) === MISSING_CHECK_END) break;
      const remote = decodeMissing(latin1(line));
      const want = encodeWanted(remote, await this.checkLocal(remote));
      if (want) wanted.push(want);
    }
    yield enc(MISSING_CHECK_START + '\r\n');
    if (wanted.length) yield enc(wanted.join('\r\n'));
    yield CRLF;
    yield enc(MISSING_CHECK_END + '\r\n');
  }

  private async *updates(): AsyncGenerator<Uint8Array> {
    const o = this.opts;
    const threshold = o.failureThreshold ?? 100;
    const ratio = o.failureRatio ?? 1.0;
    const line = await this.readLine('updates start');
    if (!line) throw new SsyncClientDisconnected();
    if (latin1(pyStrip(line)) !== UPDATES_START) {
      throw new Error(`Looking for ${UPDATES_START} got ${pyBytesRepr(latin1(line.subarray(0, 1024)))}`);
    }
    let successes = 0;
    let failures = 0;
    const tally = (sub: SsyncSubrequest, resp: SsyncSubresponse) => {
      if ((resp.status >= 200 && resp.status < 300) || resp.status === 404) {
        successes++;
      } else {
        o.log.warn({ status: resp.status }, `ssync subrequest failed with ${resp.status}: ${sub.method} /${o.device}/${o.partition}${sub.path} (${resp.body ?? ''})`);
        failures++;
      }
      if (failures >= threshold && (!successes || failures / successes > ratio)) {
        throw new Error(`Too many ${failures} failures to ${successes} successes`);
      }
    };
    // A PUT whose body has all been read finishes (xattrs, fsync, rename, directory syncs: mostly
    // waits for the disk) while the next subrequest's body is read. One at a time, and never
    // alongside a subrequest for the same object or one that is not a PUT, so what Swift does
    // in order still happens in order; the answer, which Swift gives only for the session as a
    // whole, waits for it.
    let finishing: { sub: SsyncSubrequest; done: Promise<SsyncSubresponse> } | null = null;
    const settle = async () => {
      const f = finishing;
      if (!f) return;
      finishing = null;
      tally(f.sub, await f.done);
    };
    try {
      for (let next = await this.readSubrequest(); next; next = await this.readSubrequest()) {
        const { sub, body } = next;
        if (finishing && (sub.method !== 'PUT' || finishing.sub.path === sub.path)) await settle();
        const done = o.apply(sub);
        if (body) {
          // (a failure is taken up where it is awaited, below or in settle())
          done.catch(() => undefined);
          if (await Promise.race([body.consumed.then(() => true), done.then(() => false, () => false)])) {
            await settle();
            finishing = { sub, done };
            continue;
          }
        }
        await settle();
        const resp = await done;
        // A body that stalled leaves the stream out of step: the session ends here (Swift would
        // read on and take the rest of the body for subrequest lines). A body cut short by the end
        // of the stream is a failed subrequest, as in Swift; the next read then finds the end.
        if (body?.error instanceof MessageTimeout) throw body.error;
        tally(sub, resp);
        // The subrequest may have failed before reading its body: skip the rest of it.
        if (body && !body.error) await body.drain();
      }
      await settle();
    } finally {
      // A session that ends early still lets a PUT under way finish before its lock goes.
      const f = finishing as { done: Promise<SsyncSubresponse> } | null;
      if (f) await f.done.catch(() => undefined);
    }
    if (failures) throw new SessionHttpError(500, `ERROR: With :UPDATES: ${failures} failures to ${successes} successes`);
    yield enc(UPDATES_START + '\r\n');
    yield enc(UPDATES_END + '\r\n');
  }

  /** The next subrequest's line and headers, its body left in the stream; null at :UPDATES: END. */
  private async readSubrequest(): Promise<{ sub: SsyncSubrequest; body: SubrequestBody | null } | null> {
    const o = this.opts;
    const line = await this.readLine('updates line');
    if (!line || latin1(pyStrip(line)) === UPDATES_END) return null;
    const first = latin1(pyStrip(line));
    const sp = first.indexOf(' ');
    if (sp < 0) throw new Error('not enough values to unpack (expected 2, got 1)');
    const method = first.slice(0, sp);
    const path = first.slice(sp + 1);
    const headers = new Map<string, string>();
    const replicationHeaders: string[] = [];
    let contentLength: number | null = null;
    for (;;) {
      const raw = await this.readLine('updates line');
      if (!raw) throw new Error(`Got no headers for ${method} ${path}`);
      const h = latin1(pyStrip(raw));
      if (!h) break;
      const colon = h.indexOf(':');
      if (colon < 0) throw new Error('not enough values to unpack (expected 2, got 1)');
      const name = strStrip(h.slice(0, colon)).toLowerCase();
      const value = strStrip(h.slice(colon + 1));
      headers.set(name, value);
      // X-Backend-Replication-Headers makes the object server keep exactly what was sent,
      // except Etag (it writes its own ETag) and X-Backend-No-Commit (not metadata).
      if (name !== 'etag' && name !== 'x-backend-no-commit') replicationHeaders.push(name);
      if (name === 'content-length') {
        const n = pyInt(value);
        if (n === null) throw new Error(`invalid literal for int() with base 10: ${pyRepr(value)}`);
        if (n < 0) throw new Error(`Invalid Content-Length ${n} for ${method} ${path}`);
        contentLength = n;
      }
    }
    let body: SubrequestBody | null = null;
    if (method === 'DELETE' || method === 'POST') {
      if (contentLength !== null && contentLength !== 0) throw new Error(`${method} subrequest with content-length ${path}`);
    } else if (method === 'PUT') {
      if (contentLength === null) throw new Error(`No content-length sent for ${method} ${path}`);
      body = new SubrequestBody(this.input, contentLength, `${method} ${path}`, o.networkChunkSize);
    } else {
      throw new Error(`Invalid subrequest method ${method}`);
    }
    headers.set('x-backend-storage-policy-index', String(o.policy.index));
    headers.set('x-backend-replication', 'True');
    // A primary must not 409 a fragment index other than the one it holds.
    if (o.fragIndex !== null) headers.set('x-backend-ssync-frag-index', String(o.fragIndex));
    if (replicationHeaders.length) headers.set('x-backend-replication-headers', replicationHeaders.join(' '));
    return { sub: { method, path, headers, body }, body };
  }
}

/** A PUT subrequest's body: the next Content-Length bytes of the session, no more. */
class SubrequestBody implements ByteSource {
  error: Error | null = null;
  private left: number;
  /** Resolves once the whole body has been read from the session: the stream is the next subrequest's. */
  readonly consumed: Promise<void>;
  private markConsumed!: () => void;

  constructor(
    private readonly input: SessionInput,
    length: number,
    private readonly what: string,
    private readonly chunkSize: number,
  ) {
    this.left = length;
    this.consumed = new Promise((resolve) => (this.markConsumed = resolve));
    if (length <= 0) this.markConsumed();
  }

  async read(max: number): Promise<Uint8Array | null> {
    if (this.error) throw this.error;
    if (this.left <= 0) return null;
    let chunk: Uint8Array | null;
    try {
      chunk = await this.input.read(Math.min(max, this.left, this.chunkSize), 'updates content');
    } catch (e) {
      this.error = e as Error;
      // The object server sees the same kinds of failure it sees on a plain PUT.
      throw e instanceof MessageTimeout ? new SourceTimeout(e.message) : new SourceReadError((e as Error).message);
    }
    if (!chunk) {
      this.error = new ChunkReadError(`Early termination for ${this.what}`);
      throw new SourceReadError(this.error.message);
    }
    this.left -= chunk.length;
    if (this.left <= 0) this.markConsumed();
    return chunk;
  }

  async drain(): Promise<void> {
    while (this.left > 0) await this.read(this.chunkSize);
  }
}

/** A ByteSource over an async iterable (a stream, a generator), pulling one piece at a time. */
export function byteSourceFromIterable(src: AsyncIterable<Uint8Array>): ByteSource {
  const it = src[Symbol.asyncIterator]();
  let pending: Buffer = Buffer.alloc(0);
  let next: Promise<IteratorResult<Uint8Array>> | null = null;
  let done = false;
  return {
    async read(max: number, timeoutMs: number): Promise<Uint8Array | null> {
      while (!pending.length) {
        if (done) return null;
        next ??= it.next();
        let timer: NodeJS.Timeout | undefined;
        const r = await Promise.race([
          next,
          new Promise<'timeout'>((resolve) => {
            if (timeoutMs > 0) timer = setTimeout(() => resolve('timeout'), timeoutMs);
          }),
        ]).catch((e: unknown) => {
          next = null;
          throw new SourceReadError((e as Error).message ?? String(e));
        });
        clearTimeout(timer);
        if (r === 'timeout') throw new SourceTimeout();
        next = null;
        if (r.done) done = true;
        else pending = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
      }
      const out = pending.subarray(0, Math.min(max, pending.length));
      pending = pending.subarray(out.length);
      return out;
    },
  };
}
