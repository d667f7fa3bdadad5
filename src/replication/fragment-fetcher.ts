// Rebuilding one fragment archive from its peers, as Swift's reconstruct_fa does: GET the
// object's archive from every other primary at once (with fragment preferences for the local
// timestamp), bucket the answers by data timestamp and EC etag, and as soon as one bucket holds
// k useful fragments, stream them segment by segment through the codec. Memory stays near
// (k + 1) fragments whatever the object size; the other responses are abandoned.
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { ECDriver, FragmentSet } from '../codec/index.js';
import { DiskFileError } from '../swift/ondisk.js';
import type { Metadata } from '../swift/metadata.js';
import type { StoragePolicy } from '../swift/policies.js';
import { Timestamp } from '../swift/timestamp.js';
import { GarbageBound } from './memory.js';
import { backendPath, type PeerPools, type PeerResponse } from './peers.js';
import type { ArchiveSource } from './ssync-sender.js';

export interface FragmentNode {
  id: number;
  replication_ip: string;
  replication_port: number;
  device: string;
  index?: number;
}

export interface RebuildRequest {
  policy: StoragePolicy;
  ec: ECDriver;
  partition: number | string;
  /** The object's name, /account/container/object. */
  name: string;
  /** Metadata of the local fragment archive (the rebuilt one takes it, with its own index). */
  localMetadata: Metadata;
  /** Fragment index to rebuild. */
  targetIndex: number;
  /** The nodes to ask (the other primaries). */
  nodes: FragmentNode[];
  /** Seconds allowed for each segment's reads once streaming. */
  nodeTimeout: number;
  logger?: Logger;
}

/** Why a rebuild could not start: the reconstructor counts failures by cause. */
export class RebuildFailed extends DiskFileError {
  constructor(
    message: string,
    readonly reason: 'insufficient' | 'mixed-etag' | 'errors',
    /** Error statuses seen ('404', '503', 'unknown', ...), each once. */
    readonly errorStatuses: string[] = [],
    /** Per data timestamp: how many fragments answered and which indexes were useful. */
    readonly buckets: Map<string, { responses: number; useful: number[] }> = new Map(),
  ) {
    super(message);
  }
}

interface Bucket {
  etag: string | null;
  durable: boolean;
  responses: number;
  useful: Map<number, PeerResponse>;
}

export async function rebuildFragmentArchive(pools: PeerPools, req: RebuildRequest): Promise<ArchiveSource> {
  const { policy, ec, targetIndex, logger } = req;
  const ndata = policy.ec!.ndata;
  const localTs = new Timestamp(req.localMetadata['X-Timestamp']!);
  const headers = {
    'X-Backend-Storage-Policy-Index': String(policy.index),
    'X-Backend-Replication': 'True',
    'X-Backend-Fragment-Preferences': JSON.stringify([{ timestamp: localTs.internal, exclude: [] }]),
    'User-Agent': `obj-reconstructor ${process.pid}`,
  };
  const buckets = new Map<string, Bucket>();
  const errors = new Map<string, number>();
  let mixedEtag = false;
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);
  const all: Array<Promise<unknown>> = [];
  let winner: Bucket | null = null;

  const done = new Promise<void>((resolve) => {
    let pending = req.nodes.length;
    if (!pending) resolve();
    for (const node of req.nodes) {
      const p = pools
        .request(node.replication_ip, node.replication_port, { method: 'GET', path: backendPath(node.device, req.partition, req.name), headers, signal: abort.signal })
        .then((res) => {
          const where = `${node.replication_ip}:${node.replication_port}/${node.device}/${req.partition}${req.name}`;
          const note = (status: string) => errors.set(status, (errors.get(status) ?? 0) + 1);
          if (winner) return void discard(res);
          if (res.statusCode !== 200) {
            if (res.statusCode !== 404) logger?.warn(`Invalid response ${res.statusCode} from ${where} policy#${policy.index}`);
            note(String(res.statusCode));
            return void discard(res);
          }
          const h = (k: string) => {
            const v = res.headers[k.toLowerCase()];
            return Array.isArray(v) ? v[0] : v;
          };
          const fi = Number(h('X-Object-Sysmeta-Ec-Frag-Index'));
          const ts = h('X-Backend-Data-Timestamp') ?? h('X-Backend-Timestamp');
          const etag = h('X-Object-Sysmeta-Ec-Etag');
          if (!Number.isInteger(fi) || !ts || !etag) {
            logger?.warn(`Invalid resp from ${where} (missing frag index, timestamp or Etag)`);
            note('unknown');
            return void discard(res);
          }
          const key = new Timestamp(ts).internal;
          let bucket = buckets.get(key);
          if (!bucket) buckets.set(key, (bucket = { etag: null, durable: false, responses: 0, useful: new Map() }));
          bucket.responses++;
          if (bucket.etag === null) bucket.etag = etag;
          else if (bucket.etag !== etag) {
            mixedEtag = true;
            logger?.error(`Mixed Etag (${etag}, ${bucket.etag}) for ${where} frag#${targetIndex}`);
            return void discard(res);
          }
          const durable = h('X-Backend-Durable-Timestamp');
          if (durable) {
            const dk = new Timestamp(durable).internal;
            if (!buckets.has(dk)) buckets.set(dk, { etag: null, durable: true, responses: 0, useful: new Map() });
            buckets.get(dk)!.durable = true;
          }
          if (fi === targetIndex || bucket.useful.has(fi)) return void discard(res);
          bucket.useful.set(fi, res);
          if (bucket.useful.size >= ndata) winner = bucket;
          return res;
        })
        .catch((e: Error) => {
          if (!abort.signal.aborted) {
            logger?.warn(`Trying to GET ${node.replication_ip}:${node.replication_port}/${node.device}/${req.partition}${req.name}: ${e.message}`);
            errors.set('unknown', (errors.get('unknown') ?? 0) + 1);
          }
          return null;
        })
        .finally(() => {
          if (--pending === 0 || winner) resolve();
        });
      all.push(p);
    }
  });
  await done;

  if (!winner) {
    abort.abort();
    for (const b of buckets.values()) for (const r of b.useful.values()) discard(r);
    const lines: string[] = [];
    for (const [ts, b] of [...buckets].sort(([a], [c]) => (a < c ? -1 : 1))) {
      if (!b.responses) continue;
      lines.push(
        `Unable to get enough responses (${b.useful.size}/${ndata} from ${b.responses} ok responses) to reconstruct ${b.durable ? 'durable' : 'non-durable'} ${req.name} frag#${targetIndex} with ETag ${b.etag} and timestamp ${ts}`,
      );
    }
    if (errors.size) {
      lines.push(
        `Unable to get enough responses (${[...errors].sort().map(([s, n]) => `${n} x ${s}`).join(', ')} error responses) to reconstruct ${buckets.get(localTs.internal)?.durable ? 'durable' : 'non-durable'} ${req.name} frag#${targetIndex}`,
      );
    }
    for (const l of lines) logger?.error(l);
    throw new RebuildFailed(
      lines.join('; ') || `Unable to reconstruct EC archive ${req.name} frag#${targetIndex}`,
      mixedEtag ? 'mixed-etag' : buckets.size ? 'insufficient' : 'errors',
      [...errors.keys()].sort(),
      new Map([...buckets].filter(([, b]) => b.responses).map(([ts, b]) => [ts, { responses: b.responses, useful: [...b.useful.keys()] }])),
    );
  }
  // Responses that arrive after the winner are closed as they come; close any already held.
  const chosen = [...(winner as Bucket).useful.values()].slice(0, ndata);
  for (const b of buckets.values()) for (const r of b.useful.values()) if (!chosen.includes(r)) discard(r);
  void Promise.allSettled(all);

  const metadata: Metadata = { ...req.localMetadata, 'X-Object-Sysmeta-Ec-Frag-Index': String(targetIndex) };
  delete metadata.ETag;
  delete metadata.Etag;
  const contentLength = Number(req.localMetadata['Content-Length']);
  return { metadata, contentLength, body: rebuiltSegments(chosen, ec, targetIndex, policy.ec!.fragmentSize, policy.ec!.segmentSize, req.nodeTimeout, req.name, logger) };
}

/** Drops a response we will not read; its body may still error as it closes, harmlessly. */
function discard(res: PeerResponse): void {
  res.body.on('error', () => undefined);
  res.body.destroy();
}

/**
 * Reads exactly n bytes (fewer only at the end) from a response body, copying each byte at
 * most once. What it returns is valid until the next read.
 */
class ExactReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private scratch: Buffer | null = null;
  private readonly it: AsyncIterator<Buffer>;
  private ended = false;
  constructor(body: AsyncIterable<Buffer>) {
    this.it = body[Symbol.asyncIterator]();
  }
  async read(n: number): Promise<Buffer> {
    while (this.have < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length) {
        this.chunks.push(r.value);
        this.have += r.value.length;
      }
    }
    const take = Math.min(n, this.have);
    let out: Buffer;
    const first = this.chunks[0];
    if (first && first.length >= take) {
      out = first.subarray(0, take);
      if (first.length === take) this.chunks.shift();
      else this.chunks[0] = first.subarray(take);
    } else {
      // one buffer per reader, reused: the caller is done with a read before it asks again
      if (!this.scratch || this.scratch.length < take) this.scratch = Buffer.allocUnsafeSlow(n);
      out = this.scratch.subarray(0, take);
      let at = 0;
      while (at < take) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, take - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= take;
    return out;
  }
}

async function* rebuiltSegments(
  responses: PeerResponse[],
  ec: ECDriver,
  targetIndex: number,
  fragmentSize: number,
  segmentSize: number,
  nodeTimeout: number,
  name: string,
  logger?: Logger,
): AsyncGenerator<Uint8Array> {
  const readers = responses.map((r) => new ExactReader(r.body as AsyncIterable<Buffer>));
  const bound = new GarbageBound();
  let set: FragmentSet | undefined;
  let out: Buffer | undefined;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      let frags: Buffer[];
      try {
        frags = await Promise.race([
          Promise.all(readers.map((r) => r.read(fragmentSize))),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${nodeTimeout} seconds`)), nodeTimeout * 1000))),
        ]);
      } catch (e) {
        // Ending early makes the archive short, so the SSYNC sender drops the session.
        logger?.error(`Error trying to rebuild ${name} frag#${targetIndex}: ${(e as Error).message}`);
        return;
      } finally {
        clearTimeout(timer);
      }
      if (frags.some((f) => f.length === 0)) return;
      bound.add(frags.length * fragmentSize);
      // Rebuilt in place in the codec's memory, then copied into one buffer reused for every
      // segment: whoever takes a segment has written it out before it asks for the next.
      set ??= ec.createFragmentSet(segmentSize);
      const view = ec.reconstructInto(frags, [targetIndex], set)[0]!;
      if (!out || out.length < view.length) out = Buffer.allocUnsafeSlow(view.length);
      out.set(view);
      yield out.subarray(0, view.length);
    }
  } finally {
    set?.dispose();
    for (const r of responses) discard(r);
  }
}
