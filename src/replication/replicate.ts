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
  | {
      status: 200;
      hashes: Map<string, SuffixHashes | null>;
      /**
       * When more partitions were asked for and the peer answers such requests (fragmend's
       * object server does, Swift's ignores the header): each one's answer, by partition.
       * Absent: the peer answered for the path's partition only.
       */
      batch?: Map<number, Map<string, SuffixHashes | null>>;
    }
  | { status: number; hashes?: undefined; batch?: undefined; body: string };

/**
 * A REPLICATE that carries this header (a comma-separated list of partitions of the same
 * device and policy) asks for those partitions' suffix hashes as well. A server that knows it
 * answers with the same header (the count of partitions answered) and a body of one piece per
 * partition answered, the path's first: `<partition> <length>\n` and then that partition's
 * REPLICATE answer, byte for byte what a REPLICATE of its own would have returned. It may leave
 * any of the others out (fragmend's leaves out those it would have to hash whole once it has
 * hashed for REPLICATE_BATCH_HASH_MS, or that SSYNC sessions pushed into lately); the caller
 * asks for those on their own. A server that does not know the header (Swift's) ignores it, as
 * it ignores any it does not know, and answers for the path's partition alone: the caller then
 * asks for each partition as usual. A pass with nothing to do makes three REPLICATEs per
 * partition; between fragmend nodes most become one per peer device.
 */
export const REPLICATE_BATCH_HEADER = 'X-Fragmend-Replicate-Batch';
/** partitions one batched REPLICATE answers for at most (the path's among them) */
export const REPLICATE_BATCH_MAX = 256;
/**
 * How long a server spends on the other partitions of a batched REPLICATE before it answers with
 * what it has (ms), well inside a reconstructor's node_timeout (10 s by default).
 */
export const REPLICATE_BATCH_BUDGET_MS = 1000;
/**
 * For how long (ms) a server answering a batched REPLICATE also hashes whole the other
 * partitions that need it (no valid hashes.pkl, as in a cluster's first pass or after a disk is
 * replaced), as their own REPLICATEs would; after that it answers only those it can from their
 * hashes.pkl, so that one request's disk work stays within about what a few REPLICATEs make.
 */
export const REPLICATE_BATCH_HASH_MS = 200;
/**
 * How many bytes of answers a server puts in a batched REPLICATE at most (the path's partition is
 * answered whatever its size): partitions holding many suffixes make large answers.
 */
export const REPLICATE_BATCH_MAX_BYTES = 1024 * 1024;

const PARTITION_RE = /^(0|[1-9][0-9]{0,9})$/;

/**
 * The partitions a batched REPLICATE asks for: the path's first, then the header's, each once,
 * at most REPLICATE_BATCH_MAX. Entries that are not plain partition numbers are skipped; null
 * when the path's partition is not one itself (that request is answered as Swift would).
 */
export function replicateBatchParts(pathPartition: string, header: string): string[] | null {
  if (!PARTITION_RE.test(pathPartition)) return null;
  const out = [pathPartition];
  const seen = new Set(out);
  for (const raw of header.split(',')) {
    if (out.length >= REPLICATE_BATCH_MAX) break;
    const p = raw.trim();
    if (!PARTITION_RE.test(p) || seen.has(p)) continue;
    seen.add(p);
    out.push(p);
  }
  return out;
}

/** The pieces of a batched answer, by partition; a malformed body is a ReplicateBatchError. */
export function parseReplicateBatch(body: Buffer, where: string): Map<number, Map<string, SuffixHashes | null>> {
  const out = new Map<number, Map<string, SuffixHashes | null>>();
  let at = 0;
  while (at < body.length) {
    const nl = body.indexOf(10, at);
    if (nl < 0 || nl - at > 32) throw new ReplicateBatchError(`${where}: bad batched REPLICATE answer at byte ${at}`);
    const m = /^(0|[1-9][0-9]{0,9}) (0|[1-9][0-9]{0,8})$/.exec(body.toString('latin1', at, nl));
    const end = m ? nl + 1 + Number(m[2]) : -1;
    if (!m || end > body.length) throw new ReplicateBatchError(`${where}: bad batched REPLICATE answer at byte ${at}`);
    try {
      out.set(Number(m[1]), parseReplicatePickle(body.subarray(nl + 1, end)));
    } catch (e) {
      throw new ReplicateBatchError(`${where}: bad batched REPLICATE answer for partition ${m[1]}: ${(e as Error).message}`);
    }
    at = end;
  }
  return out;
}

export class ReplicateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicateError';
  }
}

/**
 * A batched answer that cannot be read (its framing, a piece's pickle, the path's partition
 * missing): the peer answered, but not as REPLICATE_BATCH_HEADER says. The caller may ask again
 * for the path's partition alone.
 */
export class ReplicateBatchError extends ReplicateError {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicateBatchError';
  }
}

/**
 * A peer's suffix hashes; a non-200 status is returned (507 lets the caller try a handoff).
 * `more` asks for other partitions of the same device too (see REPLICATE_BATCH_HEADER).
 */
export async function replicate(
  pools: PeerPools,
  node: ReplicateNode,
  partition: number | string,
  policyIndex: number,
  userAgent = `obj-reconstructor ${process.pid}`,
  more?: readonly number[],
): Promise<ReplicateResult> {
  // named only in errors: a pass makes thousands of these
  const where = () => `${node.replication_ip}:${node.replication_port}/${node.device}/${partition}`;
  const headers: Record<string, string> = { 'Content-Length': '0', 'User-Agent': userAgent, 'X-Backend-Storage-Policy-Index': String(policyIndex) };
  if (more?.length) headers[REPLICATE_BATCH_HEADER] = more.join(',');
  let res;
  try {
    res = await pools.exchange(node.replication_ip, node.replication_port, { method: 'REPLICATE', path: backendPath(node.device, partition), headers });
  } catch (e) {
    throw new ReplicateError(`${where()}: ${(e as Error).message}`);
  }
  const body = res.body;
  if (res.statusCode !== 200) return { status: res.statusCode, body: body.subarray(0, 1024).toString('latin1') };
  if (more?.length && res.headers[REPLICATE_BATCH_HEADER.toLowerCase()] !== undefined) {
    const batch = parseReplicateBatch(body, where());
    const own = batch.get(Number(partition));
    if (!own) throw new ReplicateBatchError(`${where()}: batched REPLICATE answer without the partition asked for`);
    return { status: 200, hashes: own, batch };
  }
  try {
    return { status: 200, hashes: parseReplicatePickle(body) };
  } catch (e) {
    throw new ReplicateError(`${where()}: bad REPLICATE answer: ${(e as Error).message}`);
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
