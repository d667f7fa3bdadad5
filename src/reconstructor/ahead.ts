// Suffix hashes a peer gave ahead of the jobs that need them: a REPLICATE to a fragmend object
// server can ask for the hashes of the partitions the pass will come to next on the same device
// (REPLICATE_BATCH_HEADER), and a sync job whose partner's answer is already here and agrees
// with its own hashes has nothing to push to that partner and sends no REPLICATE of its own.
//
// Only agreement is taken from an answer given ahead. A job that finds a difference asks the
// partner again, as every job does without this, so what it pushes is decided on a fresh answer;
// an answer older than the age limit is not used at all. What is lost by trusting an agreement a
// little older than its job is what a REPLICATE answer's own age already loses: a partner that
// lost a suffix since is found by the next pass.
import type { SuffixHashes } from '../swift/hashes.js';
import type { ReplicateNode } from '../replication/replicate.js';

type Hashes = Map<string, SuffixHashes | null>;

interface Entry {
  hashes: Hashes;
  at: number;
}

const peerOf = (n: ReplicateNode) => `${n.replication_ip}:${n.replication_port}`;
const deviceOf = (n: ReplicateNode, policyIndex: number) => `${peerOf(n)}/${n.device}/${policyIndex}`;

export class HashesAhead {
  private readonly byDevice = new Map<string, Map<number, Entry>>();
  /** suffixes in the answers held (what their memory grows with) */
  private held = 0;
  /** peers that answered a batched REPLICATE for its own partition only (Swift's servers) */
  private readonly plain = new Set<string>();
  /**
   * Devices a batched REPLICATE is on its way to, with the partitions it asked for: a job
   * running beside it waits for its answer when its partition is among them, and otherwise
   * asks for its own partition only.
   */
  private readonly asking = new Map<string, { parts: Set<number>; done: Promise<void>; end: () => void }>();

  constructor(
    /** how long an answer given ahead may be used, in ms */
    readonly maxAgeMs = 60_000,
    private readonly now: () => number = Date.now,
    /** no batch is asked for while the answers held name this many suffixes (some MiB of memory) */
    readonly maxHeldSuffixes = 50_000,
  ) {}

  /** Forgets everything: each pass starts afresh (a peer may have been upgraded or replaced). */
  reset(): void {
    this.byDevice.clear();
    this.held = 0;
    this.plain.clear();
    for (const a of this.asking.values()) a.end();
    this.asking.clear();
  }

  /**
   * The partner's hashes for the partition, if given ahead and young enough (once a batched
   * REPLICATE on its way that asked for it has come back); each is used once.
   */
  async given(node: ReplicateNode, policyIndex: number, partition: number): Promise<Hashes | undefined> {
    const key = deviceOf(node, policyIndex);
    const coming = this.asking.get(key);
    if (coming?.parts.has(partition)) await coming.done;
    return this.take(key, partition);
  }

  private take(key: string, partition: number): Hashes | undefined {
    const parts = this.byDevice.get(key);
    const e = parts?.get(partition);
    if (!e) return undefined;
    parts!.delete(partition);
    this.held -= e.hashes.size;
    return this.now() - e.at <= this.maxAgeMs ? e.hashes : undefined;
  }

  /** The partitions whose answers this device gave ahead are held (not yet taken by their jobs). */
  heldFrom(node: ReplicateNode, policyIndex: number): ReadonlyMap<number, unknown> | undefined {
    return this.byDevice.get(deviceOf(node, policyIndex));
  }

  /** Whether a REPLICATE to this device may ask for more partitions (no other is on its way, and there is room). */
  canBatch(node: ReplicateNode, policyIndex: number): boolean {
    if (this.plain.has(peerOf(node)) || this.asking.has(deviceOf(node, policyIndex))) return false;
    if (this.held >= this.maxHeldSuffixes) this.dropExpired();
    return this.held < this.maxHeldSuffixes;
  }

  /** Forgets the answers too old to be used (those whose jobs never came, say). */
  private dropExpired(): void {
    const oldest = this.now() - this.maxAgeMs;
    for (const [key, parts] of this.byDevice) {
      for (const [p, e] of parts) {
        if (e.at >= oldest) continue;
        parts.delete(p);
        this.held -= e.hashes.size;
      }
      if (!parts.size) this.byDevice.delete(key);
    }
  }

  /** A batched REPLICATE for these partitions is now on its way to the device. */
  startBatch(node: ReplicateNode, policyIndex: number, parts: readonly number[]): void {
    let end!: () => void;
    const done = new Promise<void>((r) => (end = r));
    this.asking.set(deviceOf(node, policyIndex), { parts: new Set(parts), done, end });
  }

  /**
   * What a batched REPLICATE brought back: the answers by partition (the job's own is left out),
   * 'plain' when the peer answered for the path's partition only (Swift's), null when it gave
   * no answer (an error, a timeout, a status other than 200).
   */
  endBatch(node: ReplicateNode, policyIndex: number, own: number, batch: Map<number, Hashes> | 'plain' | null): void {
    const key = deviceOf(node, policyIndex);
    const a = this.asking.get(key);
    this.asking.delete(key);
    // whoever waits takes what is there once this returns
    if (a) queueMicrotask(a.end);
    if (batch === null) return;
    if (batch === 'plain') {
      this.plain.add(peerOf(node));
      return;
    }
    let parts = this.byDevice.get(key);
    if (!parts) this.byDevice.set(key, (parts = new Map()));
    const at = this.now();
    for (const [p, hashes] of batch) {
      if (p === own) continue;
      const was = parts.get(p);
      if (was) this.held -= was.hashes.size;
      parts.set(p, { hashes, at });
      this.held += hashes.size;
    }
  }
}
