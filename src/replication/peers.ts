// Requests whose answer is read whole (REPLICATE), over keep-alive connections kept per peer
// (ip:port), with Swift's two timeouts: conn_timeout to connect, node_timeout (or
// http_timeout) for the response, both for its headers and between its body's pieces.
//
// A plain socket rather than node:http: a pass with nothing to do is three of these per
// partition, and node:http's request, agent and parser machinery cost several times the
// exchange itself in a process that lives for one pass (its code never gets hot). The
// request goes out in one write and the answer is parsed where it lands: the kernel reads
// into one buffer the pool's sockets share (net's `onread`), skipping the stream's 'data'
// machinery, and what an answer keeps is copied out of it.
import { connect, type NetConnectOpts, type Socket } from 'node:net';

export interface PeerTimeouts {
  /** Seconds to connect. */
  connTimeout: number;
  /** Seconds to wait for response headers and between body chunks. */
  responseTimeout: number;
}

export interface PeerRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Largest body accepted (bytes); more is an error. */
  limit?: number;
}

export interface PeerAnswer {
  statusCode: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

export class PeerTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerTimeout';
  }
}

export class PeerProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerProtocolError';
  }
}

const MAX_HEAD = 1024 * 1024;
const DEFAULT_LIMIT = 64 * 1024 * 1024;
/** an idle connection older than this is closed rather than reused (servers time theirs out) */
const IDLE_MS = 20_000;

/**
 * A pooled connection. Its socket's reads, end and errors go to whoever holds it: the running
 * exchange, or the idle watch that drops it. Listeners are added once, when it is opened; an
 * exchange only swaps these fields.
 */
interface Conn {
  socket: Socket;
  key: string;
  onData: ((data: Buffer) => void) | null;
  onEnd: (() => void) | null;
  onError: ((e: Error) => void) | null;
  onTimeout: (() => void) | null;
  /** Date.now() past which the running exchange has waited too long (moved on by every read) */
  deadline: number;
  /** when it went idle */
  since: number;
}

export class PeerPools {
  private readonly idle = new Map<string, Conn[]>();
  private readonly busy = new Set<Conn>();
  /** where every pooled socket's reads land; each is consumed before the next can arrive */
  private readonly shared = Buffer.allocUnsafe(64 * 1024);
  /** checks the running exchanges' deadlines: one timer for the pool, not one per exchange */
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    readonly timeouts: PeerTimeouts,
    private readonly idlePerPeer = 8,
  ) {}

  private get responseMs(): number {
    return timeoutMs(this.timeouts.responseTimeout);
  }

  /** Sends one request and reads its whole answer. */
  async exchange(ip: string, port: number, req: PeerRequest): Promise<PeerAnswer> {
    if (this.closed) throw new Error('peer pools are closed');
    const host = hostOf(ip);
    const head = requestHead(req.method, req.path, ip, port, req.headers ?? {});
    const key = `${host}:${port}`;
    const reused = this.takeIdle(key);
    if (reused) {
      try {
        return await this.roundTrip(reused, head, req.limit ?? DEFAULT_LIMIT);
      } catch (e) {
        // the peer closed a kept connection before our request reached it: once more, fresh
        if (!(e instanceof StaleConnection)) throw e;
      }
    }
    const conn = await this.open(host, port, key);
    try {
      return await this.roundTrip(conn, head, req.limit ?? DEFAULT_LIMIT);
    } catch (e) {
      if (e instanceof StaleConnection) throw new PeerProtocolError(`connection to ${ip}:${port} closed before a response`);
      throw e;
    }
  }

  private takeIdle(key: string): Conn | null {
    const list = this.idle.get(key);
    const now = Date.now();
    while (list?.length) {
      const conn = list.pop()!;
      conn.onData = conn.onEnd = conn.onError = null;
      conn.socket.ref();
      if (!conn.socket.destroyed && now - conn.since < IDLE_MS) return conn;
      conn.socket.destroy();
    }
    return null;
  }

  private async open(host: string, port: number, key: string): Promise<Conn> {
    let conn: Conn | null = null;
    const onread = {
      buffer: this.shared,
      callback: (n: number, buf: Uint8Array) => {
        // a copy: the shared buffer is overwritten by the next read of any socket
        conn?.onData?.(Buffer.from(buf.subarray(0, n)));
        return true;
      },
    };
    const socket = await connectWithin({ host, port, noDelay: true, onread }, timeoutMs(this.timeouts.connTimeout), `${host}:${port}`);
    const c: Conn = { socket, key, onData: null, onEnd: null, onError: null, onTimeout: null, deadline: 0, since: 0 };
    conn = c;
    socket.on('end', () => c.onEnd?.());
    // a socket error with nobody holding the connection still needs a listener
    socket.on('error', (e) => c.onError?.(e));
    return c;
  }

  /** Runs while exchanges run: times out those whose peer went quiet for longer than allowed. */
  private watch(): void {
    if (this.sweeper) return;
    const tick = Math.min(100, Math.max(5, this.responseMs >> 2));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const c of this.busy) if (now > c.deadline) c.onTimeout?.();
      if (!this.busy.size && this.sweeper) {
        clearInterval(this.sweeper);
        this.sweeper = null;
      }
    }, tick);
    this.sweeper.unref();
  }

  private roundTrip(conn: Conn, head: string, limit: number): Promise<PeerAnswer> {
    const ms = this.responseMs;
    const { socket, key } = conn;
    return new Promise<PeerAnswer>((resolve, reject) => {
      let buf: Buffer | null = null;
      let got = 0;
      let parsed: { statusCode: number; headers: Record<string, string>; length: number; close: boolean } | null = null;
      let chunks: Buffer[] = [];
      let settled = false;
      const finish = (err: Error | null, answer?: PeerAnswer, keep = false) => {
        if (settled) return;
        settled = true;
        conn.onData = conn.onEnd = conn.onError = conn.onTimeout = null;
        this.busy.delete(conn);
        if (err) {
          socket.destroy();
          reject(err);
          return;
        }
        if (keep && !this.closed) this.keep(conn);
        else socket.destroy();
        resolve(answer!);
      };
      conn.onData = (d: Buffer) => {
        conn.deadline = Date.now() + ms;
        if (!parsed) {
          buf = buf ? Buffer.concat([buf, d]) : d;
          const end = buf.indexOf('\r\n\r\n', Math.max(0, buf.length - d.length - 3), 'latin1');
          if (end < 0) {
            if (buf.length > MAX_HEAD) finish(new PeerProtocolError(`response headers over ${MAX_HEAD} bytes`));
            return;
          }
          try {
            parsed = parseHead(buf.subarray(0, end).toString('latin1'), limit);
          } catch (e) {
            finish(e as Error);
            return;
          }
          d = buf.subarray(end + 4);
          buf = null;
        }
        if (d.length) {
          chunks.push(d);
          got += d.length;
        }
        if (parsed.length >= 0 && got >= parsed.length) {
          const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got);
          chunks = [];
          // bytes beyond the body mean the connection is out of step: not reused
          finish(null, { statusCode: parsed.statusCode, headers: parsed.headers, body: body.subarray(0, parsed.length) }, !parsed.close && got === parsed.length);
        } else if (got > limit) {
          finish(new PeerProtocolError(`response body over ${limit} bytes`));
        }
      };
      conn.onEnd = () => {
        if (parsed && parsed.length < 0) {
          finish(null, { statusCode: parsed.statusCode, headers: parsed.headers, body: Buffer.concat(chunks, got) });
        } else if (!parsed && buf === null) {
          finish(new StaleConnection());
        } else {
          finish(new PeerProtocolError(parsed ? `response ended ${parsed.length - got} bytes short of its Content-Length` : 'connection closed inside the response headers'));
        }
      };
      conn.onError = (e: Error) => {
        const code = (e as NodeJS.ErrnoException).code;
        if (!parsed && buf === null && (code === 'ECONNRESET' || code === 'EPIPE')) finish(new StaleConnection());
        else finish(e);
      };
      conn.onTimeout = () => finish(new PeerTimeout(`timeout (${this.timeouts.responseTimeout}s) waiting for ${key}`));
      conn.deadline = Date.now() + ms;
      this.busy.add(conn);
      this.watch();
      socket.write(head, 'latin1');
    });
  }

  private keep(conn: Conn): void {
    let list = this.idle.get(conn.key);
    if (!list) this.idle.set(conn.key, (list = []));
    if (list.length >= this.idlePerPeer) {
      conn.socket.destroy();
      return;
    }
    // an idle connection neither keeps the process alive nor outlives the peer's hang-up;
    // anything arriving on it is unasked, so out of step: it is dropped
    conn.socket.unref();
    const idle = list;
    const drop = () => {
      const i = idle.indexOf(conn);
      if (i >= 0) idle.splice(i, 1);
      conn.onData = conn.onEnd = conn.onError = null;
      conn.socket.destroy();
    };
    conn.onData = conn.onEnd = conn.onError = drop;
    conn.since = Date.now();
    list.push(conn);
  }

  /** Closes every connection; exchanges still running after a grace period (a hung peer) are cut. */
  async close(graceMs = 1000): Promise<void> {
    this.closed = true;
    for (const list of this.idle.values()) for (const { socket } of list) socket.destroy();
    this.idle.clear();
    const until = Date.now() + graceMs;
    while (this.busy.size && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.busy) c.socket.destroy(new Error('peer pools closed'));
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

class StaleConnection extends Error {}

/**
 * A connection made within `ms` milliseconds (conn_timeout): a PeerTimeout after that, with the
 * socket destroyed, or the socket's own error if it fails first. Resolves once connected, with
 * no listener of its own left on the socket.
 */
export function connectWithin(opts: NetConnectOpts, ms: number, where: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(opts);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new PeerTimeout(`connect timeout (${ms / 1000}s) to ${where}`));
    }, ms);
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/**
 * An HTTP/1.x response head (status line and header lines, without the blank line): the
 * status, the minor version, and the headers with lower-cased names, repeats joined with ", ".
 */
export function parseResponseHead(text: string): { statusCode: number; minor: number; headers: Record<string, string> } {
  // "HTTP/1.x NNN" then, optionally, a space and a reason; checked by character, as this
  // runs for every REPLICATE answer
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  const c = (i: number) => text.charCodeAt(i);
  const digit = (i: number) => c(i) >= 48 && c(i) <= 57;
  const statusOk =
    eol >= 12 &&
    text.startsWith('HTTP/1.') &&
    (c(7) === 48 || c(7) === 49) &&
    c(8) === 32 &&
    digit(9) &&
    digit(10) &&
    digit(11) &&
    (eol === 12 || (c(12) === 32 && !/[\r\n\u2028\u2029]/.test(text.slice(13, eol))));
  if (!statusOk) throw new PeerProtocolError(`bad status line ${JSON.stringify(text.slice(0, Math.min(eol, 80)))}`);
  const headers: Record<string, string> = {};
  // each line after a CRLF is a header line, an empty one included (which is an error)
  while (eol < text.length) {
    const at = eol + 2;
    eol = text.indexOf('\r\n', at);
    if (eol < 0) eol = text.length;
    const line = text.slice(at, eol);
    const colon = line.indexOf(':');
    if (colon <= 0) throw new PeerProtocolError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
    const k = line.slice(0, colon).trim().toLowerCase();
    const v = line.slice(colon + 1).trim();
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  return { statusCode: (c(9) - 48) * 100 + (c(10) - 48) * 10 + (c(11) - 48), minor: c(7) - 48, headers };
}

function parseHead(text: string, limit: number) {
  const { statusCode, minor, headers } = parseResponseHead(text);
  const te = headers['transfer-encoding'];
  if (te && te.toLowerCase() !== 'identity') throw new PeerProtocolError(`a ${te} response where one with a Content-Length was expected`);
  const cl = headers['content-length'];
  let length = -1;
  if (statusCode === 204 || statusCode === 304) length = 0;
  else if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new PeerProtocolError(`bad Content-Length ${JSON.stringify(cl.slice(0, 40))}`);
    length = Number(cl);
    if (length > limit) throw new PeerProtocolError(`response body of ${length} bytes, over ${limit}`);
  }
  const connection = (headers.connection ?? '').toLowerCase();
  const close = minor === 0 ? connection !== 'keep-alive' : connection.split(',').some((t) => t.trim() === 'close');
  return { statusCode, headers, length, close: close || length < 0 };
}

/** Swift's timeouts (float seconds) as timer milliseconds, at least 1. */
export function timeoutMs(seconds: number): number {
  return Math.max(1, Math.round(seconds * 1000));
}

/** An address as connect() takes it: a ring's IPv6 address may come in brackets. */
export function hostOf(ip: string): string {
  return ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
}

/**
 * The head of an HTTP/1.1 request, blank line included. A header that would split the request
 * (a line break in a name or value, a colon in a name) is refused, not sent.
 */
export function requestHead(method: string, path: string, ip: string, port: number, headers: Record<string, string | number>): string {
  const host = hostOf(ip);
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${host.includes(':') ? `[${host}]` : host}:${port}\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n:]/.test(k) || /[\r\n]/.test(String(v))) throw new PeerProtocolError(`header ${JSON.stringify(k)} cannot be sent`);
    head += `${k}: ${v}\r\n`;
  }
  return head + '\r\n';
}

/** Swift quotes the path of backend requests: /<device>/<partition>[<object path>]. */
export function backendPath(device: string, partition: number | string, objectPath = ''): string {
  // the common case, a plain device name and a partition number, has nothing to quote
  if (!objectPath && /^[A-Za-z0-9_.~-]*$/.test(device) && /^[0-9]*$/.test(String(partition))) return `/${device}/${partition}`;
  const q = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()).replace(/%2F/gi, '/');
  return q(`/${device}/${partition}${objectPath}`);
}
