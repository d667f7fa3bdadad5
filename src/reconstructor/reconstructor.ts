// The reconstructor pass, as modern Swift runs it: collect the partitions of every EC policy
// on the local devices (shuffled across disks), build SYNC and REVERT jobs from their suffix
// hashes, and run them `concurrency` at a time. SYNC compares hashes with the left, right and
// opposite partners and pushes what they lack, rebuilding their fragment from the others;
// REVERT pushes a handoff's fragments to their primary and deletes exactly what it confirmed.
import { readdir, rm, rmdir, stat, unlink } from '../swift/afs.js';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ECDriver, type ECType } from '../codec/index.js';
import { HeldLog, rebuildFragmentArchive, RebuildFailed, type FragmentNode, type RebuiltArchive, type SourceCheck, type SourceFailure } from '../replication/fragment-fetcher.js';
import { PeerPools } from '../replication/peers.js';
import { REPLICATE_BATCH_MAX, replicate, ReplicateBatchError, ReplicateError, suffixDelta, type ReplicateResult } from '../replication/replicate.js';
import { HashesAhead } from './ahead.js';
import { ssyncSend, type ArchiveSource, type ObjectTimestamps } from '../replication/ssync-sender.js';
import { diskFileCheck } from '../swift/archive-check.js';
import { dataDir, ECDiskFileManager, tmpDir, type ECDiskFile } from '../swift/diskfile.js';
import { acquireLock, LockTimeout } from '../swift/locks.js';
import { loadSwiftConf, type StoragePolicy, type SwiftConf } from '../swift/policies.js';
import { Ring, type Device } from '../swift/ring.js';
import type { ReconstructorConfig } from './config.js';
import { buildPartJobs, localDevices, nodesForFrag, partners, whatAreMyIps, type ReconstructionJob, type SyncTarget } from './jobs.js';
import { dumpReconCache, RECON_OBJECT_FILE } from './recon.js';
import { noStatsd, StatsdClient } from './statsd.js';
import { RateLimiter } from './rate-limit.js';

export interface PassOptions {
  devices?: string[];
  partitions?: number[];
}

/** What a pass did; the first block mirrors Swift's stats line, the rest goes beyond it. */
export interface PassStats {
  start: number;
  end?: number;
  deviceCount: number;
  partCount: number;
  reconstructionPartCount: number;
  jobCount: number;
  reconstructionCount: number;
  suffixCount: number;
  suffixHash: number;
  suffixSync: number;
  /** partner REPLICATEs not sent: an answer given ahead in a batched one agreed (see ahead.ts) */
  replicatesAhead: number;
  partitionTimes: number[];
  handoffsRemaining: number;
  objectsRebuilt: number;
  bytesRebuilt: number;
  objectsReverted: number;
  objectsSynced: number;
  /**
   * rotten: a rebuild's sources disagreed or one failed its check; source: a source lost on the
   * way (cut short, a read error); timeout: a REPLICATE, or a source's read, too slow.
   */
  failures: { insufficient: number; mixedEtag: number; timeout: number; unmounted: number; ssync: number; replicate: number; lock: number; rotten: number; source: number };
  /** Archives rebuilt whole, by how their sources were checked. */
  sourceChecks: Record<SourceCheck, number>;
}

const newStats = (): PassStats => ({
  start: Date.now() / 1000,
  deviceCount: 0,
  partCount: 0,
  reconstructionPartCount: 0,
  jobCount: 0,
  reconstructionCount: 0,
  suffixCount: 0,
  suffixHash: 0,
  suffixSync: 0,
  replicatesAhead: 0,
  partitionTimes: [],
  handoffsRemaining: 0,
  objectsRebuilt: 0,
  bytesRebuilt: 0,
  objectsReverted: 0,
  objectsSynced: 0,
  failures: { insufficient: 0, mixedEtag: 0, timeout: 0, unmounted: 0, ssync: 0, replicate: 0, lock: 0, rotten: 0, source: 0 },
  sourceChecks: { fragmentMore: 0, etag: 0, server: 0, off: 0 },
});

interface PolicyState {
  policy: StoragePolicy;
  ring: Ring;
  /** the policy's codec, made when first asked for */
  ec: () => Promise<ECDriver>;
  mgr: ECDiskFileManager;
}

interface PartInfo {
  state: PolicyState;
  localDev: Device;
  devPath: string;
  partition: number;
  partPath: string;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** how many of the pass's next partitions a batched REPLICATE may ask about */
const AHEAD_WINDOW = 1024;

const fullPath = (n: { replication_ip: string; replication_port: number; device: string }, part: number, path: string, policy: StoragePolicy) =>
  `${n.replication_ip}:${n.replication_port}/${n.device}/${part}${path} policy#${policy.index}`;

export class ObjectReconstructor {
  readonly conf: ReconstructorConfig;
  readonly log: Logger;
  private swiftConf!: SwiftConf;
  private readonly states = new Map<number, PolicyState>();
  private readonly pools: PeerPools;
  private readonly ahead = new HashesAhead();
  /** the pass's partitions in the order it takes them, and how far it has come */
  private passParts: PartInfo[] = [];
  private passAt = 0;
  private readonly statsd: StatsdClient;
  private readonly objectLimiter: RateLimiter | null;
  private readonly byteLimiter: RateLimiter | null;
  stats: PassStats = newStats();
  /** Totals since start, for /metrics. */
  readonly totals = { passes: 0, objectsRebuilt: 0, bytesRebuilt: 0, objectsReverted: 0, failures: 0 };
  private stopping = false;
  private lockedUp = false;

  constructor(conf: ReconstructorConfig, log: Logger) {
    this.conf = conf;
    this.log = log;
    this.pools = new PeerPools({ connTimeout: conf.connTimeout, responseTimeout: Math.max(conf.nodeTimeout, conf.httpTimeout) });
    this.statsd = conf.logStatsdHost
      ? new StatsdClient(conf.logStatsdHost, conf.logStatsdPort, conf.logName, conf.logStatsdMetricPrefix, conf.logStatsdDefaultSampleRate, conf.logStatsdSampleRateFactor)
      : noStatsd;
    this.objectLimiter = conf.maxObjectsPerSecond > 0 ? new RateLimiter(conf.maxObjectsPerSecond) : null;
    this.byteLimiter = conf.maxBytesPerSecond > 0 ? new RateLimiter(conf.maxBytesPerSecond) : null;
    for (const w of conf.warnings) log.warn(w);
  }

  /** Loads swift.conf and the object rings of every EC policy fragmend can rebuild. */
  async init(): Promise<void> {
    this.swiftConf = await loadSwiftConf(this.conf.swiftDir);
    for (const policy of this.swiftConf.policies.ecPolicies()) {
      if (!policy.ec!.supported) {
        this.log.warn(`Policy ${policy.index} (${policy.name}) uses ec_type ${policy.ec!.ecType}, which fragmend does not implement; skipping it`);
        continue;
      }
      await this.loadPolicy(policy);
    }
  }

  private async loadPolicy(policy: StoragePolicy): Promise<PolicyState> {
    const ring = await Ring.load(join(this.conf.swiftDir, `${policy.ringName}.ring.gz`), {
      reloadTime: this.conf.ringCheckInterval,
      hash: { prefix: this.swiftConf.hashPathPrefix, suffix: this.swiftConf.hashPathSuffix },
    });
    const ecOptions = {
      k: policy.ec!.ndata,
      m: policy.ec!.nparity,
      ecType: policy.ec!.ecType as ECType,
      writeLegacyCrc: this.conf.writeLegacyEcCrc === true,
      allowNonMds: policy.isDeprecated,
    };
    // refused now if the policy is bad; made (wasm compiled) when a rebuild first needs it,
    // which a pass with nothing to rebuild never does
    ECDriver.validate(ecOptions);
    let made: Promise<ECDriver> | undefined;
    const ec = () => (made ??= ECDriver.create(ecOptions));
    const mgr = new ECDiskFileManager({
      devices: this.conf.devices,
      mountCheck: this.conf.mountCheck,
      reclaimAge: this.conf.reclaimAge,
      commitWindow: this.conf.commitWindow,
      hashPrefix: this.swiftConf.hashPathPrefix,
      hashSuffix: this.swiftConf.hashPathSuffix,
      warn: (m) => this.log.warn(m),
    });
    const state = { policy, ring, ec, mgr };
    this.states.set(policy.index, state);
    return state;
  }

  /** The local devices of each policy (ring devices on this node's ip and port). */
  localDevicesByPolicy(): Map<number, Device[]> {
    const ips = whatAreMyIps(this.conf.ringIp);
    const out = new Map<number, Device[]>();
    for (const [idx, s] of this.states) out.set(idx, localDevices(s.ring, ips, this.conf.port));
    return out;
  }

  /** Device names local to any policy. */
  localDeviceNames(): string[] {
    return [...new Set([...this.localDevicesByPolicy().values()].flat().map((d) => d.device))].sort();
  }

  stop(): void {
    this.stopping = true;
  }

  async close(): Promise<void> {
    await this.pools.close();
    this.statsd.close();
  }

  // ------------------------------------------------------------------ collecting work

  private async collectParts(opts: PassOptions): Promise<PartInfo[]> {
    const parts: PartInfo[] = [];
    const byPolicy = this.localDevicesByPolicy();
    for (const [idx, devs] of byPolicy) {
      const state = this.states.get(idx)!;
      if (state.ring.nextPartPower !== null && state.ring.nextPartPower !== undefined) {
        this.log.warn(`next_part_power set in policy '${state.policy.name}'. Skipping`);
        continue;
      }
      for (const dev of devs) {
        if (opts.devices?.length && !opts.devices.includes(dev.device)) continue;
        this.stats.deviceCount++;
        const devPath = await state.mgr.getDevPath(dev.device);
        if (!devPath) {
          this.log.warn(`${dev.device} is not mounted`);
          continue;
        }
        await this.unlinkOlderThan(join(devPath, tmpDir(state.policy)), Date.now() / 1000 - this.conf.reclaimAge);
        const objPath = join(devPath, dataDir(state.policy));
        let entries: string[];
        try {
          entries = await readdir(objPath);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error(`Unable to list partitions in ${JSON.stringify(objPath)}: ${(e as Error).message}`);
          continue;
        }
        this.stats.partCount += entries.length;
        for (const name of entries) {
          // a directory entry never holds a slash, '.' or '..': no need for join()'s normalizing,
          // which was most of a no-op start-up's listing of a thousand partitions
          const partPath = `${objPath}/${name}`;
          if (name.startsWith('auditor_status_') && name.endsWith('.json')) continue;
          if (!/^\d+$/.test(name)) {
            this.log.warn(`Unexpected entity in data dir: ${JSON.stringify(partPath)}`);
            await rm(partPath, { recursive: true, force: true }).catch(() => undefined);
            this.stats.reconstructionPartCount++;
            continue;
          }
          const partition = Number(name);
          if (opts.partitions?.length && !opts.partitions.includes(partition)) continue;
          if (this.conf.handoffsOnly && state.ring.getPartNodes(partition).some((n) => n.id === dev.id)) continue;
          parts.push({ state, localDev: dev, devPath, partition, partPath });
        }
      }
    }
    return shuffle(parts);
  }

  private async unlinkOlderThan(dir: string, cutoff: number): Promise<void> {
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      const p = join(dir, f);
      const st = await stat(p).catch(() => null);
      if (st && st.isFile() && st.mtimeMs / 1000 < cutoff) await unlink(p).catch(() => undefined);
    }
  }

  // ------------------------------------------------------------------ the pass

  /** One reconstruction pass; resolves when every job has finished (or a lockup was cut short). */
  async reconstruct(opts: PassOptions = {}): Promise<PassStats> {
    this.stats = newStats();
    this.lockedUp = false;
    for (const s of this.states.values()) {
      if (await s.ring.maybeReload().catch(() => false)) this.log.info(`Reloaded ring for policy ${s.policy.index}`);
    }
    const heartbeat = setInterval(() => this.statsLine(), Math.max(1, this.conf.statsInterval) * 1000);
    let lastCount = -1;
    const lockup = setInterval(() => {
      if (this.stats.reconstructionCount === lastCount) {
        this.log.error('Lockup detected.. killing live coros.');
        this.lockedUp = true;
      }
      lastCount = this.stats.reconstructionCount;
    }, Math.max(1, this.conf.lockupTimeout) * 1000);
    heartbeat.unref();
    lockup.unref();
    const gate = this.lockupGate();
    try {
      const parts = await this.collectParts(opts);
      this.passParts = parts;
      const changed = new Set<number>();
      let nextRingCheck = Date.now() + this.conf.ringCheckInterval * 1000;
      const inFlight = new Set<Promise<void>>();
      for (let at = 0; at < parts.length; at++) {
        const part = parts[at]!;
        this.passAt = at;
        if (this.stopping || this.lockedUp) break;
        const idx = part.state.policy.index;
        if (changed.has(idx)) continue;
        if (Date.now() >= nextRingCheck) {
          nextRingCheck = Date.now() + this.conf.ringCheckInterval * 1000;
          for (const s of this.states.values()) {
            if (!changed.has(s.policy.index) && (await s.ring.hasChanged().catch(() => false))) {
              changed.add(s.policy.index);
              this.log.info(`Ring change detected for policy ${s.policy.index} (${s.policy.name}). Aborting current reconstruction pass for this policy.`);
            }
          }
          if (changed.has(idx)) continue;
        }
        this.stats.reconstructionPartCount++;
        let jobs: ReconstructionJob[];
        try {
          jobs = await this.buildJobs(part);
        } catch (e) {
          this.log.error(`Unable to build jobs for ${part.partPath}: ${(e as Error).message}`);
          continue;
        }
        if (!jobs.length) {
          await this.run(inFlight, gate, () => rm(part.partPath, { recursive: true, force: true }).then(() => undefined));
          continue;
        }
        for (const job of jobs) {
          if (this.stopping || this.lockedUp) break;
          await this.run(inFlight, gate, () => this.processJob(job, part));
        }
      }
      await Promise.race([Promise.all(inFlight), gate]);
    } finally {
      clearInterval(heartbeat);
      clearInterval(lockup);
      // what was asked ahead is not carried into the next pass (a peer may be upgraded or replaced)
      this.passParts = [];
      this.ahead.reset();
      this.stats.end = Date.now() / 1000;
      this.statsLine();
      if (this.conf.handoffsOnly) {
        if (this.stats.handoffsRemaining > 0) this.log.info('Handoffs only mode still has handoffs remaining. Next pass will continue to revert handoffs.');
        else this.log.warn('Handoffs only mode found no handoffs remaining. You should disable handoffs_only once all nodes are reporting no handoffs remaining.');
      }
      this.totals.passes++;
    }
    return this.stats;
  }

  /** Resolves when a lockup has been declared, so the pass stops waiting for stuck jobs. */
  private lockupGate(): Promise<void> {
    return new Promise((resolve) => {
      const t = setInterval(() => {
        if (this.lockedUp) {
          clearInterval(t);
          resolve();
        }
      }, 200);
      t.unref();
    });
  }

  /** Starts fn when fewer than `concurrency` jobs are in flight (not at all after a lockup). */
  private async run(inFlight: Set<Promise<void>>, gate: Promise<void>, fn: () => Promise<void>): Promise<void> {
    while (inFlight.size >= this.conf.concurrency) {
      await Promise.race([...inFlight, gate]);
      if (this.lockedUp || this.stopping) return;
    }
    if (this.lockedUp) return;
    const p: Promise<void> = fn()
      .catch((e) => this.log.error({ err: e }, `Exception in reconstruction job: ${(e as Error).message}`))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }

  private async buildJobs(part: PartInfo): Promise<ReconstructionJob[]> {
    const { state } = part;
    const { hashed, hashes } = await state.mgr.getHashes(part.devPath, part.partition, state.policy, [], true);
    this.stats.suffixHash += hashed;
    this.statsd.updateStats('suffix.hashes', hashed);
    const jobs = buildPartJobs({
      hashes,
      localDev: part.localDev,
      partition: part.partition,
      partPath: part.partPath,
      policy: state.policy,
      ring: state.ring,
      warn: (m) => this.log.warn(m),
    });
    shuffle(jobs);
    this.stats.jobCount += jobs.length;
    return jobs;
  }

  private async processJob(job: ReconstructionJob, part: PartInfo): Promise<void> {
    const begin = Date.now();
    if (job.type === 'revert') await this.revert(job, part);
    else await this.sync(job, part);
    this.stats.partitionTimes.push((Date.now() - begin) / 1000);
    this.stats.reconstructionCount++;
  }

  // ------------------------------------------------------------------ SYNC

  private async sync(job: ReconstructionJob, part: PartInfo): Promise<void> {
    const begin = Date.now();
    this.statsd.increment(`partition.update.count.${job.localDev.device}`);
    // The partners' hashes are asked for all at once: each answer waits on another node's
    // disk, and a pass with nothing to do is mostly that wait. The pushes stay one at a time.
    const partners = await Promise.all(job.syncTo.map((partner) => this.suffixesToSync(job, part, partner)));
    for (const found of partners) {
      if (!found || !found.suffixes.length) continue;
      const result = await ssyncSend(
        part.state.mgr,
        { devPath: part.devPath, partition: job.partition, policy: job.policy, fragIndex: job.fragIndex!, suffixes: found.suffixes },
        found.node,
        {
          connTimeout: this.conf.connTimeout,
          nodeTimeout: this.conf.nodeTimeout,
          httpTimeout: this.conf.httpTimeout,
          rebuild: (df, o) => this.reconstructFa(part, found.node, df, o?.speculative ?? false),
          // an object-rate limit counts every rebuild it lets start: none is begun on a guess
          speculate: !this.objectLimiter,
          logger: this.log,
        },
      );
      if (!result.success) this.stats.failures.ssync++;
      else this.stats.objectsSynced += result.sent;
      this.stats.suffixSync += found.suffixes.length;
      this.statsd.updateStats('suffix.syncs', found.suffixes.length);
    }
    this.statsd.timing('partition.update.timing', Date.now() - begin);
  }

  /** REPLICATE the partner (or a handoff standing in for it) and diff suffix hashes. */
  private async suffixesToSync(job: ReconstructionJob, part: PartInfo, partner: SyncTarget): Promise<{ suffixes: string[]; node: SyncTarget } | null> {
    const candidates = nodesForFrag(part.state.ring, job.policy, job.partition, partner, this.conf.rebuildHandoffNodeCount);
    const given = await this.ahead.given(partner, job.policy.index, job.partition);
    if (given && !suffixDelta(job.hashes, job.fragIndex!, given, partner.backendIndex).length) {
      this.stats.replicatesAhead++;
      this.stats.suffixCount += job.hashes.size;
      return { suffixes: [], node: partner };
    }
    let attempts = 1;
    let remote: Map<string, Map<number | null, string> | null> | null = null;
    let node: SyncTarget | null = null;
    while (remote === null && attempts > 0) {
      const next = candidates.next();
      if (next.done) break;
      node = next.value;
      attempts--;
      try {
        const r = await this.replicateAhead(node, partner, job);
        if (r.status === 507) {
          this.log.error(`${fullPath(node, job.partition, '', job.policy)} responded as unmounted`);
          this.stats.failures.unmounted++;
          attempts++;
        } else if (r.status !== 200) {
          this.log.error(`Invalid response ${r.status} from ${fullPath(node, job.partition, '', job.policy)}`);
          this.stats.failures.replicate++;
        } else {
          remote = r.hashes ?? null;
        }
      } catch (e) {
        this.stats.failures.replicate++;
        if (/timeout/i.test((e as Error).message)) this.stats.failures.timeout++;
        this.log.error(`Unable to get remote suffix hashes from ${JSON.stringify(fullPath(node, job.partition, '', job.policy))}: ${e instanceof ReplicateError ? e.message : (e as Error).message}`);
      }
    }
    if (remote === null || !node) return null;
    let suffixes = suffixDelta(job.hashes, job.fragIndex!, remote, node.backendIndex);
    if (suffixes.length) {
      const { hashed, hashes } = await part.state.mgr.getHashes(part.devPath, job.partition, job.policy, suffixes);
      this.stats.suffixHash += hashed;
      this.statsd.updateStats('suffix.hashes', hashed);
      suffixes = suffixDelta(hashes, job.fragIndex!, remote, node.backendIndex);
      this.stats.suffixCount += hashes.size;
    } else {
      this.stats.suffixCount += job.hashes.size;
    }
    return { suffixes, node };
  }

  /**
   * REPLICATE of the job's partition to `node`. When `node` is the partner itself (not a handoff
   * standing in for it), it is asked for the partitions ahead that have it as a partner too. A
   * peer whose batched answer cannot be read is asked again for the job's partition alone, and
   * for one partition at a time until the pass ends.
   */
  private async replicateAhead(node: SyncTarget, partner: SyncTarget, job: ReconstructionJob): Promise<ReplicateResult> {
    const policyIndex = job.policy.index;
    const more = node === partner && this.ahead.canBatch(node, policyIndex) ? this.partitionsAhead(partner, policyIndex, job.partition) : [];
    if (!more.length) return replicate(this.pools, node, job.partition, policyIndex);
    this.ahead.startBatch(node, policyIndex, more);
    // what the batch brought: its answers, 'plain' (one partition's answer only), or none
    let brought: Parameters<HashesAhead['endBatch']>[3] = null;
    try {
      const r = await replicate(this.pools, node, job.partition, policyIndex, undefined, more);
      if (r.status === 200) brought = r.batch ?? 'plain';
      return r;
    } catch (e) {
      if (!(e instanceof ReplicateBatchError)) throw e;
      // the peer answers, but not in the batch's framing: it is asked as Swift's servers are
      brought = 'plain';
      this.log.warn(`${e.message}; asking it for one partition at a time for the rest of the pass`);
    } finally {
      this.ahead.endBatch(node, policyIndex, job.partition, brought);
    }
    return replicate(this.pools, node, job.partition, policyIndex);
  }

  /**
   * The partitions among the next ones of this pass whose sync job has `partner` among its
   * partners (same policy) and whose answer from that device is not held already, at most as
   * many as one batched REPLICATE answers for. Only the next AHEAD_WINDOW partitions are looked
   * at: answers are held until their jobs come, so each job holds at most its three partners'
   * answers ahead. (A job that asks its partner afresh, having found a difference, would
   * otherwise have the device read again the hashes of every partition it answered before.)
   */
  private partitionsAhead(partner: SyncTarget, policyIndex: number, current: number): number[] {
    const out: number[] = [];
    const seen = new Set([current]);
    const parts = this.passParts;
    const held = this.ahead.heldFrom(partner, policyIndex);
    const end = Math.min(parts.length, this.passAt + 1 + AHEAD_WINDOW);
    for (let i = this.passAt + 1; i < end && out.length < REPLICATE_BATCH_MAX - 1; i++) {
      const { state, localDev, partition } = parts[i]!;
      if (state.policy.index !== policyIndex || seen.has(partition) || held?.has(partition)) continue;
      const partNodes = state.ring.getPartNodes(partition);
      const me = partNodes.find((n) => n.id === localDev.id);
      if (!me || !partners(me.index, partNodes).some((n) => n.id === partner.id)) continue;
      seen.add(partition);
      out.push(partition);
    }
    return out;
  }

  /**
   * The archive a partner lacks, rebuilt from the other primaries (reconstruct_fa). A
   * speculative one (begun before the partner said it wants it) quarantines nothing, counts no
   * failure and logs nothing unless it succeeds: a failed one is made again if it is wanted.
   */
  private async reconstructFa(part: PartInfo, node: SyncTarget, df: ECDiskFile, speculative = false): Promise<ArchiveSource> {
    const md = df.datafileMetadata;
    for (const key of ['Content-Length', 'X-Object-Sysmeta-Ec-Frag-Index', 'X-Object-Sysmeta-Ec-Etag']) {
      if (md[key] === undefined) {
        if (speculative) throw new RebuildFailed(`Invalid fragment #${df.fragIndex}`, 'errors');
        throw await df.quarantine(df.dataFile!, `Invalid fragment #${df.fragIndex}`);
      }
    }
    if (!speculative) await this.objectLimiter?.take(1);
    const held = speculative ? new HeldLog() : null;
    // our own archive comes from the disk, not through our object server
    const nodes: FragmentNode[] = part.state.ring.getPartNodes(part.partition).filter((n) => n.id !== node.id && n.id !== part.localDev.id);
    const request = {
      policy: part.state.policy,
      ec: await part.state.ec(),
      partition: part.partition,
      name: df.objectName!,
      localMetadata: md,
      targetIndex: node.backendIndex,
      nodes,
      local: { path: df.dataFile!, durable: df.onDisk?.dataInfo?.durable ?? false, check: diskFileCheck(df, this.log) },
      connTimeout: this.conf.connTimeout,
      nodeTimeout: this.conf.nodeTimeout,
      checkEtag: this.conf.checkPeerEtag,
      logger: held ?? this.log,
      onSourceFailure: (cause: SourceFailure) => {
        this.stats.failures[cause]++;
        this.totals.failures++;
      },
    };
    let src: RebuiltArchive;
    try {
      try {
        src = await rebuildFragmentArchive(request);
        held?.pass(this.log);
      } catch (e) {
        if (speculative || !(e instanceof RebuildFailed) || !this.isQuarantineCandidate(e, df)) throw e;
        // Nobody else seems to hold this object: ask the handoffs too before deciding.
        const replicas = part.state.ring.replicaCount;
        const handoffs = [...part.state.ring.getMoreNodes(part.partition)].slice(0, Math.max(0, this.conf.requestNodeCount(replicas) - replicas));
        try {
          src = await rebuildFragmentArchive({ ...request, nodes: [...nodes, ...handoffs] });
        } catch (e2) {
          if (e2 instanceof RebuildFailed && this.isQuarantineCandidate(e2, df)) {
            this.log.warn(`Quarantining solitary fragment #${df.fragIndex} of ${df.objectName} (${df.dataFile})`);
            throw await df.quarantine(df.dataFile!, `Solitary fragment #${df.fragIndex}`);
          }
          throw e2;
        }
      }
    } catch (e) {
      if (e instanceof RebuildFailed && !speculative) {
        if (e.reason === 'mixed-etag') this.stats.failures.mixedEtag++;
        else this.stats.failures.insufficient++;
        this.totals.failures++;
      }
      throw e;
    }
    const counted = this.countRebuilt(src.body, src.contentLength, src.check);
    return { ...src, body: counted };
  }

  /**
   * Swift's _is_quarantine_candidate: only 404s came back, the only timestamp seen is the local
   * one, the fragment is older than quarantine_age, and at most quarantine_threshold (and fewer
   * than k) fragments of it exist, the local one among them.
   */
  private isQuarantineCandidate(e: RebuildFailed, df: ECDiskFile): boolean {
    if (this.conf.quarantineThreshold <= 0) return false;
    if (e.errorStatuses.length !== 1 || e.errorStatuses[0] !== '404') return false;
    const localTs = df.dataTimestamp.internal;
    if (e.buckets.size !== 1 || !e.buckets.has(localTs)) return false;
    if (Date.now() / 1000 - df.dataTimestamp.timestamp <= this.conf.quarantineAge) return false;
    const b = e.buckets.get(localTs)!;
    return b.responses <= this.conf.quarantineThreshold && b.responses < df.policy.ec!.ndata && df.fragIndex !== null && b.useful.includes(df.fragIndex);
  }

  private async *countRebuilt(body: AsyncIterable<Uint8Array>, expected: number, check: SourceCheck): AsyncGenerator<Uint8Array> {
    let sent = 0;
    for await (const chunk of body) {
      await this.byteLimiter?.take(chunk.length);
      sent += chunk.length;
      yield chunk;
    }
    // an archive that ended short was not rebuilt: its bytes are not counted
    if (sent === expected) {
      this.stats.objectsRebuilt++;
      this.totals.objectsRebuilt++;
      this.stats.bytesRebuilt += sent;
      this.totals.bytesRebuilt += sent;
      this.stats.sourceChecks[check]++;
    }
  }

  // ------------------------------------------------------------------ REVERT

  private async revert(job: ReconstructionJob, part: PartInfo): Promise<void> {
    const begin = Date.now();
    this.statsd.increment(`partition.delete.count.${job.localDev.device}`);
    let release: (() => void) | null = null;
    try {
      release = await acquireLock(job.partPath, { name: 'replication', timeout: 0.2 });
    } catch (e) {
      if (!(e instanceof LockTimeout)) throw e;
      this.log.info(`Unable to lock handoff partition ${job.partition} for revert on device ${job.localDev.device} policy ${job.policy.index}`);
      this.statsd.increment('partition.lock-failure.count');
      this.stats.failures.lock++;
      this.stats.handoffsRemaining++;
      return;
    }
    try {
      let synced = 0;
      let limited = false;
      const reverted = new Map<string, ObjectTimestamps>();
      for (const node of job.syncTo) {
        const result = await ssyncSend(
          part.state.mgr,
          { devPath: part.devPath, partition: job.partition, policy: job.policy, fragIndex: job.fragIndex as number, suffixes: job.suffixes },
          node,
          {
            connTimeout: this.conf.connTimeout,
            nodeTimeout: this.conf.nodeTimeout,
            httpTimeout: this.conf.httpTimeout,
            includeNonDurable: true,
            maxObjects: this.conf.maxObjectsPerRevert,
            logger: this.log,
          },
        );
        limited ||= result.limitedByMaxObjects;
        if (result.success) {
          synced++;
          for (const [h, t] of result.inSync) reverted.set(h, t);
        } else this.stats.failures.ssync++;
      }
      // Delete only what every target confirmed; a target that failed keeps everything here.
      if (synced >= job.syncTo.length) await this.deleteRevertedObjs(job, part, reverted);
      if (synced < job.syncTo.length || limited) this.stats.handoffsRemaining++;
    } finally {
      release();
      this.statsd.timing('partition.delete.timing', Date.now() - begin);
    }
  }

  private async deleteRevertedObjs(job: ReconstructionJob, part: PartInfo, objects: Map<string, ObjectTimestamps>): Promise<void> {
    const suffixes = new Set<string>();
    for (const [hash, ts] of objects) {
      suffixes.add(hash.slice(-3));
      const df = part.state.mgr.diskFileFromHash(part.devPath, job.partition, hash, job.policy, { fragIndex: job.fragIndex });
      try {
        const files = await readdir(df.datadir).catch(() => [] as string[]);
        const dataFiles = files.filter((f) => f.endsWith('.data'));
        const purgable = dataFiles.filter((f) => f.startsWith(ts.tsData.internal));
        const metaTimestamp = job.primaryFragIndex === null && purgable.length === dataFiles.length && dataFiles.length <= 1 ? ts.tsMeta : undefined;
        await df.purge(ts.tsData, job.fragIndex, { nondurablePurgeDelay: ts.durable === false ? part.state.mgr.commitWindow : 0, metaTimestamp });
        this.stats.objectsReverted++;
        this.totals.objectsReverted++;
      } catch (e) {
        this.log.error(`Unable to purge DiskFile (${hash} ${ts.tsData.internal} ${job.fragIndex}): ${(e as Error).message}`);
      }
    }
    for (const suffix of suffixes) await rmdirIfEmpty(join(job.partPath, suffix));
  }

  // ------------------------------------------------------------------ reporting

  statsLine(): void {
    const s = this.stats;
    const now = Date.now() / 1000;
    const elapsed = now - s.start || 0.000001;
    if (s.deviceCount && s.partCount) {
      const rate = s.reconstructionPartCount / elapsed;
      const remaining = rate > 0 ? (s.partCount - s.reconstructionPartCount) / rate : 0;
      const eta = remaining >= 3600 ? `${Math.round(remaining / 3600)}h` : remaining >= 60 ? `${Math.round(remaining / 60)}m` : `${Math.round(remaining)}s`;
      this.log.info(
        {
          partitions: s.reconstructionPartCount,
          total: s.partCount,
          objectsRebuilt: s.objectsRebuilt,
          bytesRebuilt: s.bytesRebuilt,
          objectsReverted: s.objectsReverted,
          replicatesAhead: s.replicatesAhead,
          failures: s.failures,
          sourceChecks: s.sourceChecks,
        },
        `${s.reconstructionPartCount}/${s.partCount} (${((s.reconstructionPartCount * 100) / s.partCount).toFixed(2)}%) partitions reconstructed in ${elapsed.toFixed(2)}s (${rate.toFixed(2)}/sec, ${eta} remaining)`,
      );
      if (s.suffixCount && s.partitionTimes.length) {
        this.log.info(`${s.suffixCount} suffixes checked - ${((s.suffixHash * 100) / s.suffixCount).toFixed(2)}% hashed, ${((s.suffixSync * 100) / s.suffixCount).toFixed(2)}% synced`);
        const t = [...s.partitionTimes].sort((a, b) => a - b);
        this.log.info(`Partition times: max ${t[t.length - 1]!.toFixed(4)}s, min ${t[0]!.toFixed(4)}s, med ${t[Math.floor(t.length / 2)]!.toFixed(4)}s`);
      }
    } else {
      this.log.info(`Nothing reconstructed for ${elapsed} seconds.`);
    }
  }

  /** object.recon after a pass: Swift's keys, plus fragmend's per-pass counters. */
  async finalReconDump(totalMinutes: number, devices?: string[]): Promise<void> {
    const s = this.stats;
    const last = Date.now() / 1000;
    const extra = {
      objects_rebuilt: s.objectsRebuilt,
      bytes_rebuilt: s.bytesRebuilt,
      objects_reverted: s.objectsReverted,
      handoffs_remaining: s.handoffsRemaining,
      failures: { ...s.failures },
      source_checks: { ...s.sourceChecks },
    };
    let update: Record<string, unknown>;
    if (this.conf.reconstructorWorkers > 0 && devices?.length) {
      const perDisk = { object_reconstruction_time: totalMinutes, object_reconstruction_last: last, pid: process.pid };
      update = { object_reconstruction_per_disk: Object.fromEntries(devices.map((d) => [d, perDisk])) };
    } else {
      update = { object_reconstruction_time: totalMinutes, object_reconstruction_last: last, object_reconstruction_per_disk: {}, fragmend_reconstruction_last_pass: extra };
    }
    try {
      await dumpReconCache(update as never, join(this.conf.reconCachePath, RECON_OBJECT_FILE));
    } catch (e) {
      this.log.error(`Exception dumping recon cache: ${(e as Error).message}`);
    }
  }

  /** `--once`: one pass, then the recon cache (unless limited to partitions, as Swift does). */
  async runOnce(opts: PassOptions = {}): Promise<PassStats> {
    const start = Date.now();
    const stats = await this.reconstruct(opts);
    const total = (Date.now() - start) / 60000;
    this.log.info(`Object reconstruction complete (once). (${total.toFixed(2)} minutes)`);
    if (!opts.partitions?.length && (this.conf.reconstructorWorkers > 0 || !opts.devices?.length)) {
      await this.finalReconDump(total, opts.devices ?? this.localDeviceNames());
    }
    return stats;
  }

  /** Passes separated by `interval` seconds until stop(). */
  async runForever(opts: PassOptions = {}): Promise<void> {
    this.log.info('Starting object reconstructor in daemon mode.');
    while (!this.stopping) {
      const start = Date.now();
      this.log.info('Starting object reconstruction pass.');
      await this.reconstruct(opts);
      const total = (Date.now() - start) / 60000;
      this.log.info(`Object reconstruction complete. (${total.toFixed(2)} minutes)`);
      await this.finalReconDump(total, opts.devices ?? this.localDeviceNames());
      const wait = Math.max(0, this.conf.interval * 1000 - (Date.now() - start));
      const until = Date.now() + wait;
      while (!this.stopping && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(500, until - Date.now())));
    }
  }
}

async function rmdirIfEmpty(path: string): Promise<void> {
  await rmdir(path).catch(() => undefined);
}
