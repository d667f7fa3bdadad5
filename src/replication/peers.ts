// Requests whose answer is read whole (REPLICATE), over keep-alive connections kept per peer
// (ip:port), with Swift's two timeouts: conn_timeout to connect, node_timeout (or
// http_timeout) for the response, both for its headers and between its body's pieces.
//
// A plain socket rather than node:http: a pass with nothing to do is three of these per
// partition, and node:http's request, agent and parser machinery cost several times the
// exchange itself in a process that lives for one pass (its code never gets hot). The
// request goes out in one write and the answer is parsed where it lands.
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

interface Idle {
  socket: Socket;
  since: number;
  /** takes the connection back out of the idle list's watch */
  take: () => void;
}

export class PeerPools {
  private readonly idle = new Map<string, Idle[]>();
  private readonly busy = new Set<Socket>();
  private closed = false;

  constructor(
    readonly timeouts: PeerTimeouts,
    private readonly idlePerPeer = 8,
  ) {}

  /** Sends one request and reads its whole answer. */
  async exchange(ip: string, port: number, req: PeerRequest): Promise<PeerAnswer> {
    if (this.closed) throw new Error('peer pools are closed');
    const host = hostOf(ip);
    const head = requestHead(req.method, req.path, ip, port, req.headers ?? {});
    const key = `${host}:${port}`;
    const reused = this.takeIdle(key);
    if (reused) {
      try {
        return await this.roundTrip(reused, key, head, req.limit ?? DEFAULT_LIMIT);
      } catch (e) {
        // the peer closed a kept connection before our request reached it: once more, fresh
        if (!(e instanceof StaleConnection)) throw e;
      }
    }
    const socket = await this.open(host, port);
    try {
      return await this.roundTrip(socket, key, head, req.limit ?? DEFAULT_LIMIT);
    } catch (e) {
      if (e instanceof StaleConnection) throw new PeerProtocolError(`connection to ${ip}:${port} closed before a response`);
      throw e;
    }
  }

  private takeIdle(key: string): Socket | null {
    const list = this.idle.get(key);
    const now = Date.now();
    while (list?.length) {
      const { socket, since, take } = list.pop()!;
      take();
      if (!socket.destroyed && now - since < IDLE_MS) return socket;
      socket.destroy();
    }
    return null;
  }

  private open(host: string, port: number): Promise<Socket> {
    return connectWithin({ host, port, noDelay: true }, Math.max(1, Math.round(this.timeouts.connTimeout * 1000)), `${host}:${port}`);
  }

  private roundTrip(socket: Socket, key: string, head: string, limit: number): Promise<PeerAnswer> {
    const ms = Math.max(1, Math.round(this.timeouts.responseTimeout * 1000));
    this.busy.add(socket);
    return new Promise<PeerAnswer>((resolve, reject) => {
      let buf: Buffer | null = null;
      let got = 0;
      let parsed: { statusCode: number; headers: Record<string, string>; length: number; close: boolean } | null = null;
      let chunks: Buffer[] = [];
      let settled = false;
      const finish = (err: Error | null, answer?: PeerAnswer, keep = false) => {
        if (settled) return;
        settled = true;
        socket.setTimeout(0);
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('error', onError);
        socket.off('timeout', onTimeout);
        this.busy.delete(socket);
        if (err) {
          socket.destroy();
          reject(err);
          return;
        }
        if (keep && !this.closed) this.keep(key, socket);
        else socket.destroy();
        resolve(answer!);
      };
      const onData = (d: Buffer) => {
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
      const onEnd = () => {
        if (parsed && parsed.length < 0) {
          finish(null, { statusCode: parsed.statusCode, headers: parsed.headers, body: Buffer.concat(chunks, got) });
        } else if (!parsed && buf === null) {
          finish(new StaleConnection());
        } else {
          finish(new PeerProtocolError(parsed ? `response ended ${parsed.length - got} bytes short of its Content-Length` : 'connection closed inside the response headers'));
        }
      };
      const onError = (e: Error) => {
        const code = (e as NodeJS.ErrnoException).code;
        if (!parsed && buf === null && (code === 'ECONNRESET' || code === 'EPIPE')) finish(new StaleConnection());
        else finish(e);
      };
      const onTimeout = () => finish(new PeerTimeout(`timeout (${this.timeouts.responseTimeout}s) waiting for ${key}`));
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('error', onError);
      socket.on('timeout', onTimeout);
      socket.setTimeout(ms);
      socket.write(head, 'latin1');
    });
  }

  private keep(key: string, socket: Socket): void {
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    if (list.length >= this.idlePerPeer) {
      socket.destroy();
      return;
    }
    // an idle connection neither keeps the process alive nor outlives the peer's hang-up
    socket.unref();
    const drop = () => {
      const i = list!.findIndex((x) => x.socket === socket);
      if (i >= 0) list!.splice(i, 1);
      socket.destroy();
    };
    socket.once('end', drop);
    socket.once('error', drop);
    socket.once('data', drop); // nothing is asked: anything arriving is out of step
    const take = () => {
      socket.off('end', drop);
      socket.off('error', drop);
      socket.off('data', drop);
      socket.ref();
    };
    list.push({ socket, since: Date.now(), take });
  }

  /** Closes every connection; exchanges still running after a grace period (a hung peer) are cut. */
  async close(graceMs = 1000): Promise<void> {
    this.closed = true;
    for (const list of this.idle.values()) for (const { socket } of list) socket.destroy();
    this.idle.clear();
    const until = Date.now() + graceMs;
    while (this.busy.size && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.busy) s.destroy(new Error('peer pools closed'));
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
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) throw new PeerProtocolError(`bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.indexOf(':');
    if (c <= 0) throw new PeerProtocolError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
    const k = line.slice(0, c).trim().toLowerCase();
    const v = line.slice(c + 1).trim();
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  return { statusCode: Number(m[2]), minor: Number(m[1]), headers };
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
  const q = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()).replace(/%2F/gi, '/');
  return q(`/${device}/${partition}${objectPath}`);
}
