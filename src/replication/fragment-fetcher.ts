// Rebuilding one fragment archive from its peers, as Swift's reconstruct_fa does: the object's
// archive is asked of the other primaries (with fragment preferences for the local timestamp),
// the answers are bucketed by data timestamp and EC etag, and as soon as one bucket holds k
// useful fragments they are streamed segment by segment through the codec. Unlike Swift, the
// local archive is read from disk rather than over HTTP from our own object server, and peers
// are asked only as many at a time as could still complete a bucket (Swift asks them all and
// drops the spare answers): every response is a file the peer opens and starts sending.
// Memory stays near (k + 2) fragments whatever the object size; nothing is allocated per
// segment.
//
// The sources are checked, as Swift's are not: a peer's archive can rot under good fragment
// headers, and Swift's object server sends it whole before its MD5 shows it (then quarantines
// it). When any source is such a peer's (one whose response does not say its server checked the
// archive), one fragment more than the k is read, and each segment the k rebuild must also
// rebuild that one, byte for byte: an archive rotten anywhere in the set shows at the first
// segment it spoils, for a row of Galois-field arithmetic per segment instead of an MD5 of every
// archive. The rebuilt archive then ends there (its SSYNC PUT is cut, the partner keeps nothing)
// and the sources are read to their ends, so a Swift object server quarantines the rotten one
// as it does after any whole read; the next pass rebuilds from the good ones. When only k
// fragments can be had, or the one more is late (a slow peer gets four times the time the k
// took or 0.1 s, not its node_timeout), each unchecked peer's archive is checked against its
// ETag instead (archive-get.ts). Peers that check their archives themselves (fragmend's object
// server) are remembered, and a set of them is read without the extra fragment.
import type { ECDriver, FragmentSet } from '../codec/index.js';
import { HEADER_SIZE } from '../codec/fragment.js';
import { ArchiveReadCheck, type ArchiveReadCheckOptions } from '../swift/archive-check.js';
import { DiskFileError } from '../swift/ondisk.js';
import type { Metadata } from '../swift/metadata.js';
import type { StoragePolicy } from '../swift/policies.js';
import { Timestamp } from '../swift/timestamp.js';
import { DiskFileQuarantined } from '../swift/diskfile.js';
import { ArchiveEtagMismatch, ArchiveGet, fragmentBuffers, getArchive, LocalArchive, type FragmentReader } from './archive-get.js';
import { backendPath, PeerTimeout, timeoutMs } from './peers.js';
import type { ArchiveSource } from './ssync-sender.js';

/** Where a rebuild reports its peers' trouble (a pino logger will do). */
export interface RebuildLog {
  warn(msg: string): void;
  error(msg: string): void;
}

/**
 * A log that holds its lines until told where they go, then passes the later ones straight
 * on: a speculative rebuild's, whose lines are dropped if it fails (it will be made again, and
 * log again, if its object turns out to be wanted).
 */
export class HeldLog implements RebuildLog {
  private held: Array<['warn' | 'error', string]> = [];
  private to: RebuildLog | null = null;
  warn(msg: string): void {
    this.line('warn', msg);
  }
  error(msg: string): void {
    this.line('error', msg);
  }
  private line(level: 'warn' | 'error', msg: string): void {
    if (this.to) this.to[level](msg);
    else this.held.push([level, msg]);
  }
  pass(to: RebuildLog): void {
    for (const [level, msg] of this.held) to[level](msg);
    this.held = [];
    this.to = to;
  }
}

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
  /** The nodes to ask (the other primaries; not this node when `local` is given). */
  nodes: FragmentNode[];
  /**
   * The local fragment archive (the data file behind localMetadata), read from disk as one of
   * the k. Left out when it cannot be opened, or holds the index being rebuilt.
   */
  local?: {
    path: string;
    durable: boolean;
    /** How to check its bytes as they are read (Swift reads it through its object server, which checks them). */
    check?: ArchiveReadCheckOptions;
  };
  /** Seconds to connect to a peer (conn_timeout). */
  connTimeout: number;
  /** Seconds allowed for a peer's headers, and for each segment's reads once streaming. */
  nodeTimeout: number;
  /**
   * Check the sources (the default): by one fragment more than k, or against each peer's ETag
   * when only k can be had (see the top of this file). False reads the peers as Swift does.
   */
  checkEtag?: boolean;
  logger?: RebuildLog;
  /**
   * Told when a rebuild that started fails on the way (its archive then ends short): a source
   * found rotten (sources that disagree, a peer's archive not matching its ETag, the local one
   * failing its check), one too slow, or one lost (cut short, a read error).
   */
  onSourceFailure?: (cause: SourceFailure) => void;
}

export type SourceFailure = 'rotten' | 'timeout' | 'source';

/**
 * How a rebuild's sources are checked: by the fragment more than k, by each unchecked peer's
 * ETag (only k could be had in time), by their servers (every peer said it checked its archive),
 * or not at all (check_peer_etag = false). The local archive always has its own check.
 */
export type SourceCheck = 'fragmentMore' | 'etag' | 'server' | 'off';

/** A rebuilt archive on its way, and how its sources are checked. */
export interface RebuiltArchive extends ArchiveSource {
  check: SourceCheck;
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
  useful: Map<number, FragmentReader>;
}

/** Per peer (ip:port): whether its last archive came checked by its server. */
const peerChecks = new Map<string, boolean>();
const peerKey = (n: FragmentNode) => `${n.replication_ip}:${n.replication_port}`;
/** A source nobody has checked (the local archive has its own check, as Swift's server reads it). */
const unchecked = (r: FragmentReader) => r instanceof ArchiveGet && !r.serverChecked;

export async function rebuildFragmentArchive(req: RebuildRequest): Promise<RebuiltArchive> {
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
  let winner: Bucket | null = null;
  const opened: FragmentReader[] = [];
  const bucketOf = (ts: string) => {
    let b = buckets.get(ts);
    if (!b) buckets.set(ts, (b = { etag: null, durable: false, responses: 0, useful: new Map() }));
    return b;
  };

  // the local archive counts as the first answer
  const localFi = Number(req.localMetadata['X-Object-Sysmeta-Ec-Frag-Index']);
  const localEtag = req.localMetadata['X-Object-Sysmeta-Ec-Etag'];
  if (req.local && Number.isInteger(localFi) && localFi !== targetIndex && localEtag) {
    try {
      const reader = await LocalArchive.open(req.local.path, req.local.check ? new ArchiveReadCheck(req.local.check) : undefined);
      opened.push(reader);
      const b = bucketOf(localTs.internal);
      b.responses++;
      b.etag = localEtag;
      if (req.local.durable) b.durable = true;
      b.useful.set(localFi, reader);
    } catch (e) {
      logger?.warn(`Unable to read the local archive ${req.local.path}: ${(e as Error).message}`);
    }
  }

  const connTimeoutMs = timeoutMs(req.connTimeout);
  const headerTimeoutMs = timeoutMs(req.nodeTimeout);
  const order = req.nodes.slice();
  // start at a random node, so the primaries share the reads
  if (order.length > 1) order.push(...order.splice(0, Math.floor(Math.random() * order.length)));

  const onResponse = (node: FragmentNode, res: ArchiveGet): void => {
    const where = `${node.replication_ip}:${node.replication_port}/${node.device}/${req.partition}${req.name}`;
    const note = (status: string) => errors.set(status, (errors.get(status) ?? 0) + 1);
    if (winner) return res.close();
    if (res.statusCode !== 200) {
      if (res.statusCode !== 404) logger?.warn(`Invalid response ${res.statusCode} from ${where} policy#${policy.index}`);
      note(String(res.statusCode));
      return res.close();
    }
    const h = res.headers;
    const fi = Number(h['x-object-sysmeta-ec-frag-index']);
    const ts = h['x-backend-data-timestamp'] ?? h['x-backend-timestamp'];
    const etag = h['x-object-sysmeta-ec-etag'];
    let key: string;
    try {
      if (!Number.isInteger(fi) || !ts || !etag) throw new Error('missing');
      key = new Timestamp(ts).internal;
    } catch {
      logger?.warn(`Invalid resp from ${where} (missing frag index, timestamp or Etag)`);
      note('unknown');
      return res.close();
    }
    const bucket = bucketOf(key);
    bucket.responses++;
    if (bucket.etag === null) bucket.etag = etag;
    else if (bucket.etag !== etag) {
      mixedEtag = true;
      logger?.error(`Mixed Etag (${etag}, ${bucket.etag}) for ${where} frag#${targetIndex}`);
      return res.close();
    }
    const durable = h['x-backend-durable-timestamp'];
    if (durable) {
      try {
        bucketOf(new Timestamp(durable).internal).durable = true;
      } catch {
        /* a bad durable timestamp only loses the word "durable" in a log line */
      }
    }
    peerChecks.set(peerKey(node), res.serverChecked);
    if (verifying && !res.serverChecked) extra = true;
    if (fi === targetIndex || bucket.useful.has(fi)) return res.close();
    bucket.useful.set(fi, res);
    if (complete(bucket)) winner = bucket;
  };

  const best = () => Math.max(0, ...[...buckets.values()].map((b) => b.useful.size));
  const verifying = req.checkEtag !== false;
  // one more than k when a source will need checking: expected unless k of the peers (less
  // the local archive) are known to check theirs; certain once an unchecked answer came
  const localCount = buckets.get(localTs.internal)?.useful.size ?? 0;
  let extra = verifying && order.filter((n) => peerChecks.get(peerKey(n)) === true).length < ndata - localCount;
  const complete = (b: Bucket) =>
    b.useful.size >= ndata && (!verifying || b.useful.size > ndata || ![...b.useful.values()].some(unchecked));
  winner = [...buckets.values()].find(complete) ?? null;
  const began = Date.now();
  let grace: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    let next = 0;
    let inFlight = 0;
    const top = () => {
      // as many requests as could still complete a bucket; more only when answers disappoint
      while (!winner && next < order.length && inFlight + best() < ndata + (extra ? 1 : 0)) {
        const node = order[next++]!;
        inFlight++;
        getArchive({ ip: node.replication_ip, port: node.replication_port, path: backendPath(node.device, req.partition, req.name), headers, connTimeoutMs, headerTimeoutMs, checkEtag: req.checkEtag })
          .then(
            (res) => {
              opened.push(res);
              onResponse(node, res);
            },
            (e: Error) => {
              logger?.warn(`Trying to GET ${node.replication_ip}:${node.replication_port}/${node.device}/${req.partition}${req.name}: ${e.message}`);
              errors.set('unknown', (errors.get('unknown') ?? 0) + 1);
            },
          )
          .finally(() => {
            inFlight--;
            top();
          });
      }
      if (winner || (inFlight === 0 && next >= order.length)) {
        clearTimeout(grace);
        return resolve();
      }
      // k are in, and the fragment more is late: a slow peer is given four times the time the k took
      // (at least 0.1 s), then the k go ahead, each checked by its ETag
      const ready = grace ? undefined : [...buckets.values()].find((b) => b.useful.size >= ndata);
      if (ready) {
        const wait = Math.min(req.nodeTimeout * 1000, Math.max(100, 4 * (Date.now() - began)));
        grace = setTimeout(() => {
          winner ??= ready;
          resolve();
        }, wait);
      }
    };
    top();
  });

  // every peer answered and no bucket has the fragment more (or it came too late): k will do,
  // each checked by its ETag
  winner ??= [...buckets.values()].find((b) => b.useful.size >= ndata) ?? null;
  if (!winner) {
    for (const r of opened) r.close();
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
  // Answers still on their way close as they come (onResponse); close the spare ones held.
  const useful = [...(winner as Bucket).useful];
  const chosen = useful.slice(0, ndata).map(([, r]) => r);
  let verify: { reader: FragmentReader; index: number } | undefined;
  if (verifying && useful.length > ndata && useful.some(([, r]) => unchecked(r))) {
    verify = { index: useful[ndata]![0], reader: useful[ndata]![1] };
    for (const r of [...chosen, verify.reader]) if (r instanceof ArchiveGet) r.skipEtagCheck();
  }
  const sources = verify ? [...chosen, verify.reader] : chosen;
  for (const r of opened) if (!sources.includes(r)) r.close();

  const metadata: Metadata = { ...req.localMetadata, 'X-Object-Sysmeta-Ec-Frag-Index': String(targetIndex) };
  delete metadata.ETag;
  delete metadata.Etag;
  const contentLength = Number(req.localMetadata['Content-Length']);
  const check: SourceCheck = !verifying ? 'off' : verify ? 'fragmentMore' : chosen.some(unchecked) ? 'etag' : 'server';
  return {
    metadata,
    contentLength,
    check,
    body: rebuiltSegments(chosen, verify, ec, targetIndex, policy.ec!.fragmentSize, policy.ec!.segmentSize, req.nodeTimeout, req.name, logger, req.onSourceFailure),
    // (the segments' own end closes them too; a second close does nothing)
    discard: () => sources.forEach((r) => r.close()),
  };
}

async function* rebuiltSegments(
  readers: FragmentReader[],
  verify: { reader: FragmentReader; index: number } | undefined,
  ec: ECDriver,
  targetIndex: number,
  fragmentSize: number,
  segmentSize: number,
  nodeTimeout: number,
  name: string,
  logger?: RebuildLog,
  onFailure?: (cause: SourceFailure) => void,
): AsyncGenerator<Uint8Array> {
  const all = verify ? [...readers, verify.reader] : readers;
  const k = readers.length;
  const rebuilt = verify ? [targetIndex, verify.index].sort((a, b) => a - b) : [targetIndex];
  let set: FragmentSet | undefined;
  let out: Buffer | undefined;
  /** the consumer holds out's last segment (stopped at the yield: it may still be sending it) */
  let outHeld = false;
  try {
    for (let segment = 0; ; segment++) {
      let frags: Uint8Array[];
      try {
        frags = await within(Promise.all(all.map((r) => r.read(fragmentSize))), nodeTimeout);
      } catch (e) {
        // Ending early makes the archive short, so the SSYNC sender drops the session.
        logger?.error(`Error trying to rebuild ${name} frag#${targetIndex}: ${(e as Error).message}`);
        onFailure?.(e instanceof PeerTimeout ? 'timeout' : e instanceof ArchiveEtagMismatch || e instanceof DiskFileQuarantined ? 'rotten' : 'source');
        return;
      }
      const data = verify ? frags.slice(0, k) : frags;
      if (data.some((f) => f.length === 0)) {
        if (verify && frags[k]!.length > 0) {
          logger?.error(`Error trying to rebuild ${name} frag#${targetIndex}: frag#${verify.index} goes on past the end of the others`);
          onFailure?.('rotten');
        }
        return;
      }
      // Rebuilt in place in the codec's memory, then copied into one buffer reused for every
      // segment: whoever takes a segment has written it out before it asks for the next.
      set ??= ec.createFragmentSet(segmentSize);
      ec.reconstructInto(data, rebuilt, set);
      const view = set.fragment(targetIndex);
      if (verify && !samePayload(set.fragment(verify.index), frags[k]!)) {
        logger?.error(
          `Error trying to rebuild ${name} frag#${targetIndex}: its sources do not agree in segment ${segment} ` +
            `(frag#${verify.index} is not what the other ${k} rebuild): one of the archives is rotten`,
        );
        onFailure?.('rotten');
        // read on to the ends, as a whole read makes a Swift object server check (and quarantine) its archive
        await drain(all, fragmentSize, nodeTimeout);
        return;
      }
      if (!out || out.length < view.length) {
        fragmentBuffers.give(out);
        out = fragmentBuffers.take(view.length);
      }
      out.set(view);
      outHeld = true;
      yield out.subarray(0, view.length);
      outHeld = false;
    }
  } finally {
    set?.dispose();
    for (const r of all) r.close();
    // A consumer that asked for the next segment has written out the last one. One that
    // stopped while holding it (a failed send) may still have it queued on a socket: that
    // buffer is left to the collector rather than handed to another rebuild.
    if (!outHeld) fragmentBuffers.give(out);
  }
}

/** p, or a rejection after `seconds`. */
async function within<T>(p: Promise<T>, seconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new PeerTimeout(`${seconds} seconds`)), seconds * 1000))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The rebuilt fragment and the one read carry the same segment. An archive is read a fragment at
 * a time, so each read is one whole fragment, header and payload: the same length, and the same
 * bytes past the header (the headers may differ in the library versions they name; a rotten
 * header is the peer's server's to find, as Swift's reader checks each one).
 */
function samePayload(rebuilt: Uint8Array, read: Uint8Array): boolean {
  if (rebuilt.length !== read.length) return false;
  const payload = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset + HEADER_SIZE, u.length - HEADER_SIZE);
  return payload(rebuilt).equals(payload(read));
}

/** Reads every source to its end (or its first failure), each read within the node timeout. */
async function drain(readers: FragmentReader[], fragmentSize: number, nodeTimeout: number): Promise<void> {
  await Promise.all(
    readers.map(async (r) => {
      try {
        while ((await within(r.read(fragmentSize), nodeTimeout)).length > 0);
      } catch {
        /* that one ended in trouble, which is all the drain is for */
      }
    }),
  );
}
