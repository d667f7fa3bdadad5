// From a partition's suffix hashes to the jobs that heal it, as Swift's _get_part_jobs builds
// them: on a primary, one SYNC job for its own fragment index (with its left, right and
// opposite partners); for every other fragment index found there, a REVERT job to the
// primary that owns it; tombstone-only suffixes ride on the first job, or go to a sample of
// primaries when nothing else is there.
import { networkInterfaces } from 'node:os';
import type { SuffixHashes } from '../swift/hashes.js';
import type { StoragePolicy } from '../swift/policies.js';
import type { Device, PrimaryNode, Ring } from '../swift/ring.js';

export type JobType = 'sync' | 'revert';

export interface SyncTarget extends PrimaryNode {
  backendIndex: number;
}

export interface ReconstructionJob {
  type: JobType;
  /** The fragment index this job handles (null: tombstones only). */
  fragIndex: number | null;
  suffixes: string[];
  syncTo: SyncTarget[];
  partition: number;
  partPath: string;
  hashes: Map<string, SuffixHashes | null>;
  policy: StoragePolicy;
  localDev: Device;
  /** This node's own fragment index for the partition when it is a primary, else null. */
  primaryFragIndex: number | null;
}

/** Swift's whataremyips: the ring_ip, or every address of every interface. */
export function whatAreMyIps(ringIp: string): string[] {
  if (ringIp && ringIp !== '0.0.0.0' && ringIp !== '::') return [ringIp];
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) out.push(a.address.split('%')[0]!);
  return out;
}

/** The ring's devices served by this node (by replication ip, and port unless servers_per_port). */
export function localDevices(ring: Ring, myIps: string[], port: number | null): Device[] {
  return ring.devs.filter((d): d is Device => !!d && myIps.includes(d.replication_ip) && (port === null || d.replication_port === port));
}

export const backendIndex = (policy: StoragePolicy, nodeIndex: number) => nodeIndex % policy.ec!.nUniqueFragments;

/** Left, right and opposite neighbours of a primary. */
export function partners<T>(nodeIndex: number, partNodes: T[]): T[] {
  const n = partNodes.length;
  const at = (i: number) => partNodes[((i % n) + n) % n]!;
  return [at(nodeIndex - 1), at(nodeIndex + 1), at(nodeIndex + Math.floor(n / 2))];
}

function sample<T>(xs: T[], n: number, rng: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, Math.max(0, Math.min(n, a.length)));
}

export function buildPartJobs(opts: {
  hashes: Map<string, SuffixHashes | null>;
  localDev: Device;
  partition: number;
  partPath: string;
  policy: StoragePolicy;
  ring: Ring;
  rng?: () => number;
  warn?: (msg: string) => void;
}): ReconstructionJob[] {
  const { hashes, localDev, partition, partPath, policy, ring } = opts;
  const rng = opts.rng ?? Math.random;
  const ec = policy.ec!;
  const fiToSuffixes = new Map<number, string[]>();
  const nonData: string[] = [];
  for (const [suffix, fiHash] of hashes) {
    if (!fiHash || !fiHash.size) continue;
    const fis = [...fiHash.keys()].filter((k): k is number => k !== null);
    if (!fis.length) nonData.push(suffix);
    for (const fi of fis) {
      if (!fiToSuffixes.has(fi)) fiToSuffixes.set(fi, []);
      fiToSuffixes.get(fi)!.push(suffix);
    }
  }
  const partNodes = ring.getPartNodes(partition);
  const target = (n: PrimaryNode): SyncTarget => ({ ...n, backendIndex: backendIndex(policy, n.index) });
  const job = (type: JobType, fragIndex: number | null, suffixes: string[], syncTo: SyncTarget[], primaryFragIndex: number | null): ReconstructionJob => ({
    type,
    fragIndex,
    suffixes,
    syncTo,
    partition,
    partPath,
    hashes,
    policy,
    localDev,
    primaryFragIndex,
  });
  const jobs: ReconstructionJob[] = [];
  let primaryFragIndex: number | null = null;
  const me = partNodes.find((n) => n.id === localDev.id);
  if (me) {
    primaryFragIndex = backendIndex(policy, me.index);
    const suffixes = fiToSuffixes.get(primaryFragIndex) ?? [];
    fiToSuffixes.delete(primaryFragIndex);
    jobs.push(job('sync', primaryFragIndex, suffixes, partners(me.index, partNodes).map(target), primaryFragIndex));
  }
  // Reverts in order of fewest suffixes first (then by index), as Swift sorts (count, fi).
  const ordered = [...fiToSuffixes].sort(([fa, sa], [fb, sb]) => sa.length - sb.length || fa - fb);
  for (const [fi, suffixes] of ordered) {
    if (fi >= partNodes.length) {
      opts.warn?.(`Bad fragment index ${fi} for suffixes ${JSON.stringify(suffixes)} under ${partPath}`);
      continue;
    }
    const syncTo: SyncTarget[] = [];
    for (let n = 0, idx = fi; n < ec.duplicationFactor; n++, idx += ec.nUniqueFragments) syncTo.push(target(partNodes[idx]!));
    jobs.push(job('revert', fi, suffixes, syncTo, primaryFragIndex));
  }
  if (nonData.length) {
    if (jobs.length) jobs[0]!.suffixes.push(...nonData);
    else {
      const nsample = ec.nUniqueFragments * ec.duplicationFactor - ec.ndata + 1;
      jobs.push(job('revert', null, nonData, sample(partNodes, nsample, rng).map(target), primaryFragIndex));
    }
  }
  return jobs;
}

/** Handoffs that can stand in for a partner (same backend index), as many as allowed. */
export function* nodesForFrag(ring: Ring, policy: StoragePolicy, partition: number, node: SyncTarget, rebuildHandoffNodeCount: number): Generator<SyncTarget> {
  yield node;
  let count = 0;
  for (const h of ring.getMoreNodes(partition)) {
    const bi = backendIndex(policy, h.handoff_index);
    if (bi !== node.backendIndex) continue;
    if (rebuildHandoffNodeCount >= 0 && count >= rebuildHandoffNodeCount) break;
    yield { ...h, index: node.index, backendIndex: bi };
    count++;
  }
}
