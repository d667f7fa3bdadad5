// REPLICATE, the hash exchange: ask a peer for a partition's suffix hashes (a protocol-2
// pickle of {suffix: {None|fi: md5}}), as the reconstructor does before each sync.
import { parseReplicatePickle, type SuffixHashes } from '../swift/hashes.js';
import { backendPath, type PeerPools } from './peers.js';

export interface ReplicateNode {
  replication_ip: string;
  replication_port: number;
  device: string;
}

export type ReplicateResult =
  | { status: 200; hashes: Map<string, SuffixHashes | null> }
  | { status: number; hashes?: undefined; body: string };

export class ReplicateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicateError';
  }
}

/** A peer's suffix hashes; a non-200 status is returned (507 lets the caller try a handoff). */
export async function replicate(pools: PeerPools, node: ReplicateNode, partition: number | string, policyIndex: number, userAgent = `obj-reconstructor ${process.pid}`): Promise<ReplicateResult> {
  let res;
  try {
    res = await pools.exchange(node.replication_ip, node.replication_port, {
      method: 'REPLICATE',
      path: backendPath(node.device, partition),
      headers: { 'Content-Length': '0', 'User-Agent': userAgent, 'X-Backend-Storage-Policy-Index': String(policyIndex) },
    });
  } catch (e) {
    throw new ReplicateError(`${node.replication_ip}:${node.replication_port}/${node.device}/${partition}: ${(e as Error).message}`);
  }
  const body = res.body;
  if (res.statusCode !== 200) return { status: res.statusCode, body: body.subarray(0, 1024).toString('latin1') };
  try {
    return { status: 200, hashes: parseReplicatePickle(body) };
  } catch (e) {
    throw new ReplicateError(`${node.replication_ip}:${node.replication_port}/${node.device}/${partition}: bad REPLICATE answer: ${(e as Error).message}`);
  }
}

/**
 * Swift's get_suffix_delta: the local suffixes whose tombstone/meta hash or whose fragment
 * hash differs from the remote's (missing entries compare as None). Remote-only suffixes
 * are not ours to push.
 */
export function suffixDelta(local: Map<string, SuffixHashes | null>, localIndex: number, remote: Map<string, SuffixHashes | null>, remoteIndex: number): string[] {
  const out: string[] = [];
  for (const [suffix, mine] of local) {
    const theirs = remote.get(suffix) ?? null;
    const a0 = mine?.get(null) ?? null;
    const b0 = theirs?.get(null) ?? null;
    const a1 = mine?.get(localIndex) ?? null;
    const b1 = theirs?.get(remoteIndex) ?? null;
    if (a0 !== b0 || a1 !== b1) out.push(suffix);
  }
  return out;
}
