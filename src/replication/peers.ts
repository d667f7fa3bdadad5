// One pooled keep-alive HTTP client per peer (ip:port), with Swift's two timeouts:
// conn_timeout to connect, node_timeout (or http_timeout) for each response.
import { Pool } from 'undici';

export interface PeerTimeouts {
  /** Seconds to connect. */
  connTimeout: number;
  /** Seconds to wait for response headers and between body chunks. */
  responseTimeout: number;
}

export class PeerPools {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly timeouts: PeerTimeouts,
    private readonly connectionsPerPeer = 8,
  ) {}

  get(ip: string, port: number): Pool {
    const host = ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip;
    const key = `${host}:${port}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(`http://${key}`, {
        connections: this.connectionsPerPeer,
        connect: { timeout: Math.round(this.timeouts.connTimeout * 1000) },
        headersTimeout: Math.round(this.timeouts.responseTimeout * 1000),
        bodyTimeout: Math.round(this.timeouts.responseTimeout * 1000),
        keepAliveTimeout: 30_000,
      });
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Closes every pool; requests still stuck after a grace period (a hung peer) are destroyed. */
  async close(graceMs = 1000): Promise<void> {
    await Promise.all(
      [...this.pools.values()].map(async (p) => {
        let timer: NodeJS.Timeout | undefined;
        const closed = await Promise.race([
          p.close().then(() => true, () => false),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
        ]);
        clearTimeout(timer);
        if (!closed) await p.destroy().catch(() => undefined);
      }),
    );
    this.pools.clear();
  }
}

/** Swift quotes the path of backend requests: /<device>/<partition>[<object path>]. */
export function backendPath(device: string, partition: number | string, objectPath = ''): string {
  const q = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()).replace(/%2F/gi, '/');
  return q(`/${device}/${partition}${objectPath}`);
}
