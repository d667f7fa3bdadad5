// A chunked HTTP/1.1 request over a plain socket, full duplex: the request body (one chunk per
// message) keeps flowing while the response is read. SSYNC needs exactly this, and Swift's
// sender does the same over its own buffered connection.
import type { Socket } from 'node:net';
import { connectWithin, hostOf, PeerTimeout, requestHead } from './peers.js';

const CRLF = Buffer.from('\r\n');

export class ConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionError';
  }
}

export interface RawResponse {
  status: number;
  reason: string;
  headers: Record<string, string>;
  body: AsyncIterable<Uint8Array>;
}

const MAX_HEAD = 65536;

/** Decodes a chunked body; a malformed chunk header is an error, not data. */
async function* dechunk(src: AsyncIterator<Buffer>, first: Buffer): AsyncGenerator<Uint8Array> {
  let buf = first;
  const fill = async (): Promise<boolean> => {
    const r = await src.next();
    if (r.done) return false;
    buf = buf.length ? Buffer.concat([buf, r.value]) : r.value;
    return true;
  };
  for (;;) {
    let nl: number;
    while ((nl = buf.indexOf('\r\n')) < 0) {
      if (buf.length > 1024) throw new ConnectionError('bad chunk header in response');
      if (!(await fill())) throw new ConnectionError('connection closed inside a chunked response');
    }
    const size = parseInt(buf.subarray(0, nl).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size) || size < 0) throw new ConnectionError('bad chunk size in response');
    buf = buf.subarray(nl + 2);
    if (size === 0) return;
    let left = size;
    while (left > 0) {
      if (!buf.length && !(await fill())) throw new ConnectionError('connection closed inside a response chunk');
      const take = Math.min(left, buf.length);
      yield buf.subarray(0, take);
      buf = buf.subarray(take);
      left -= take;
    }
    while (buf.length < 2) if (!(await fill())) throw new ConnectionError('connection closed after a response chunk');
    buf = buf.subarray(2);
  }
}

export class ChunkedRequest {
  private readonly socket: Socket;
  private readonly incoming: AsyncIterator<Buffer>;
  private closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.incoming = (socket as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    socket.on('error', () => undefined);
  }

  /** Connects and sends the request head; rejects after connectTimeoutMs. */
  static async open(host: string, port: number, method: string, path: string, headers: Record<string, string | number>, connectTimeoutMs: number): Promise<ChunkedRequest> {
    let head: string;
    try {
      // a head that cannot be sent is refused before anything is connected
      head = requestHead(method, path, host, port, { 'Transfer-Encoding': 'chunked', ...headers });
    } catch (e) {
      throw new ConnectionError((e as Error).message);
    }
    let socket: Socket;
    try {
      socket = await connectWithin({ host: hostOf(host), port, noDelay: true }, connectTimeoutMs, `${host}:${port}`);
    } catch (e) {
      throw new ConnectionError(e instanceof PeerTimeout ? `${connectTimeoutMs / 1000} seconds: connect to ${host}:${port}` : `connect to ${host}:${port}: ${(e as Error).message}`);
    }
    socket.write(head);
    return new ChunkedRequest(socket);
  }

  /** Sends one HTTP chunk and waits (up to timeoutMs) until the socket takes it. */
  async sendChunk(data: Uint8Array | string, timeoutMs: number, context: string): Promise<void> {
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (!body.length) return;
    if (body.length < 16384) {
      await this.write(Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, CRLF]), timeoutMs, context);
      return;
    }
    // a big chunk goes out without being copied: head, body and tail in one corked write
    if (this.closed || this.socket.destroyed) throw new ConnectionError(`${context}: connection closed`);
    this.socket.cork();
    this.socket.write(`${body.length.toString(16)}\r\n`, 'latin1');
    this.socket.write(body);
    const done = this.write(CRLF, timeoutMs, context);
    this.socket.uncork();
    await done;
  }

  /** The terminating zero-length chunk. */
  async finish(timeoutMs: number): Promise<void> {
    await this.write(Buffer.from('0\r\n\r\n'), timeoutMs, 'disconnect').catch(() => undefined);
  }

  private write(buf: Buffer, timeoutMs: number, context: string): Promise<void> {
    if (this.closed || this.socket.destroyed) return Promise.reject(new ConnectionError(`${context}: connection closed`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ConnectionError(`${timeoutMs / 1000} seconds: ${context}`)), timeoutMs);
      this.socket.write(buf, (err) => {
        clearTimeout(timer);
        if (err) reject(new ConnectionError(`${context}: ${err.message}`));
        else resolve();
      });
    });
  }

  /** Reads the status line and headers (within timeoutMs); the body streams after. */
  async response(timeoutMs: number): Promise<RawResponse> {
    let buf = Buffer.alloc(0);
    const deadline = Date.now() + timeoutMs;
    let end: number;
    while ((end = buf.indexOf('\r\n\r\n')) < 0) {
      if (buf.length > MAX_HEAD) throw new ConnectionError('response head too large');
      const left = deadline - Date.now();
      if (left <= 0) throw new ConnectionError(`${timeoutMs / 1000} seconds: waiting for the response`);
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        this.incoming.next(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new ConnectionError(`${timeoutMs / 1000} seconds: waiting for the response`)), left))),
      ]).finally(() => clearTimeout(timer));
      if (r.done) throw new ConnectionError('connection closed before a response');
      buf = Buffer.concat([buf, r.value]);
    }
    const [statusLine, ...headerLines] = buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine!);
    if (!m) throw new ConnectionError(`bad status line ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    for (const h of headerLines) {
      const i = h.indexOf(':');
      if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
    }
    const rest = buf.subarray(end + 4);
    const src = this.incoming;
    let body: AsyncIterable<Uint8Array>;
    if ((headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) {
      body = { [Symbol.asyncIterator]: () => dechunk(src, rest) };
    } else {
      const length = headers['content-length'] !== undefined ? Number(headers['content-length']) : Infinity;
      body = {
        async *[Symbol.asyncIterator]() {
          let left = length;
          if (rest.length) {
            yield rest.subarray(0, Math.min(rest.length, left));
            left -= rest.length;
          }
          while (left > 0) {
            const r = await src.next();
            if (r.done) return;
            yield r.value.subarray(0, Math.min(r.value.length, left));
            left -= r.value.length;
          }
        },
      };
    }
    return { status: Number(m[1]), reason: m[2] ?? '', headers, body };
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
