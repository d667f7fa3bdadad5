// Shapes the Swift tools return for an object's placement, and deterministic test bytes.
export interface NodeInfo {
  id: number;
  device: string;
  ip: string;
  port: number;
  index?: number;
}

export interface Placement {
  partition: number;
  hash: string;
  primaries: NodeInfo[];
  handoffs: NodeInfo[];
}

/** xorshift32 bytes, so test objects are reproducible without storing them. */
export function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
