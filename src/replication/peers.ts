// One keep-alive HTTP agent per peer (ip:port), with Swift's two timeouts: conn_timeout to
// connect, node_timeout (or http_timeout) for each response, both for its headers and between
// its body chunks. Built on node:http, which is in Node's start-up snapshot: a reconstructor
// started with --once pays nothing to load it.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';

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
  signal?: AbortSignal;
}

export interface PeerResponse {
  statusCode: number;
  /** Lower-cased names. */
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

export class PeerTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerTimeout';
  }
}

export class PeerPools {
  private readonly agents = new Map<string, http.Agent>();
  private readonly inFlight = new Set<http.ClientRequest>();
  private closed = false;

  constructor(
    readonly timeouts: PeerTimeouts,
    private readonly connectionsPerPeer = 8,
  ) {}

  private agent(ip: string, port: number): http.Agent {
    const key = `${ip}:${port}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new http.Agent({ keepAlive: true, maxSockets: this.connectionsPerPeer, maxFreeSockets: this.connectionsPerPeer, scheduling: 'lifo', timeout: 30_000 });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** Sends one request; resolves with the response once its headers are in. */
  request(ip: string, port: number, req: PeerRequest): Promise<PeerResponse> {
    if (this.closed) return Promise.reject(new Error('peer pools are closed'));
    const host = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
    const connMs = Math.max(1, Math.round(this.timeouts.connTimeout * 1000));
    const respMs = Math.max(1, Math.round(this.timeouts.responseTimeout * 1000));
    return new Promise((resolve, reject) => {
      const r = http.request({ host, port, method: req.method, path: req.path, headers: req.headers, agent: this.agent(host, port), signal: req.signal, setHost: true });
      this.inFlight.add(r);
      r.once('close', () => this.inFlight.delete(r));
      r.once('socket', (socket) => {
        if (!socket.connecting) return;
        const t = setTimeout(() => r.destroy(new PeerTimeout(`connect timeout (${this.timeouts.connTimeout}s) to ${ip}:${port}`)), connMs);
        socket.once('connect', () => clearTimeout(t));
        socket.once('close', () => clearTimeout(t));
      });
      // the socket's idle timer covers the wait for headers and every gap in the body
      r.setTimeout(respMs, () => r.destroy(new PeerTimeout(`timeout (${this.timeouts.responseTimeout}s) waiting for ${ip}:${port}`)));
      r.once('error', reject);
      r.once('response', (res) => {
        // errors from here on belong to whoever reads the body
        r.off('error', reject);
        r.on('error', () => undefined);
        res.once('end', () => r.setTimeout(0));
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      r.end();
    });
  }

  /** Closes every connection; requests still running after a grace period (a hung peer) are destroyed. */
  async close(graceMs = 1000): Promise<void> {
    this.closed = true;
    if (this.inFlight.size) {
      const pending = [...this.inFlight].map((r) => new Promise<void>((res) => (r.destroyed ? res() : r.once('close', () => res()))));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(pending), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      for (const r of this.inFlight) r.destroy(new Error('peer pools closed'));
    }
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

/** A whole response body, at most `limit` bytes (more is an error). */
export async function readBody(body: IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      body.destroy();
      throw new Error(`response body over ${limit} bytes`);
    }
    chunks.push(c);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, n);
}

/** Swift quotes the path of backend requests: /<device>/<partition>[<object path>]. */
export function backendPath(device: string, partition: number | string, objectPath = ''): string {
  const q = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()).replace(/%2F/gi, '/');
  return q(`/${device}/${partition}${objectPath}`);
}
