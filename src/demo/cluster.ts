// A Swift EC cluster on loopback made of fragmend object servers: swift.conf, rings written by
// fragmend's ring builder, one object-server.conf per node (also read by the reconstructor),
// servers in this process. Objects are placed as Swift's proxy places them: each segment
// encoded, fragment archive i written durable to primary i with the proxy's metadata.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { ECDriver, type ECType } from '../codec/index.js';
import { ObjectServer } from '../server/object-server.js';
import { ECDiskFileManager } from '../swift/diskfile.js';
import { loadSwiftConf, type StoragePolicy, type SwiftConf } from '../swift/policies.js';
import { buildRing, writeRing, type DeviceSpec } from '../swift/ring-builder.js';
import { Ring } from '../swift/ring.js';
import { Timestamp } from '../swift/timestamp.js';

export interface ClusterPolicy {
  index: number;
  name: string;
  ecType: ECType;
  k: number;
  m: number;
  segmentSize?: number;
}

export interface ClusterOptions {
  nodes: number;
  devicesPerNode: number;
  partPower: number;
  policies: ClusterPolicy[];
  root?: string;
  logger?: Logger;
}

export interface ClusterNode {
  index: number;
  port: number;
  devicesRoot: string;
  devices: string[];
  conf: string;
  reconCache: string;
  server: ObjectServer | null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

export class LoopbackCluster {
  readonly root: string;
  readonly swiftDir: string;
  readonly nodes: ClusterNode[] = [];
  readonly hashPrefix = 'fragmend-demo-prefix';
  readonly hashSuffix = 'fragmend-demo-suffix';
  swiftConf!: SwiftConf;
  readonly rings = new Map<number, Ring>();
  readonly drivers = new Map<number, ECDriver>();
  private readonly log: Logger;

  private constructor(root: string, readonly opts: ClusterOptions) {
    this.root = root;
    this.swiftDir = join(root, 'etc');
    this.log = opts.logger ?? pino({ level: 'silent' });
  }

  static async create(opts: ClusterOptions): Promise<LoopbackCluster> {
    const root = opts.root ?? (await mkdtemp(join(tmpdir(), 'fragmend-cluster-')));
    const c = new LoopbackCluster(root, opts);
    try {
      await c.layOut();
    } catch (e) {
      await rm(root, { recursive: true, force: true });
      throw e;
    }
    return c;
  }

  private async layOut(): Promise<void> {
    const { opts } = this;
    await mkdir(this.swiftDir, { recursive: true });
    const lines = [
      '[swift-hash]',
      `swift_hash_path_prefix = ${this.hashPrefix}`,
      `swift_hash_path_suffix = ${this.hashSuffix}`,
      '',
      '[storage-policy:0]',
      'name = replicated',
      ...(opts.policies.length ? [] : ['default = yes']),
      '',
    ];
    opts.policies.forEach((p, i) => {
      lines.push(
        `[storage-policy:${p.index}]`,
        `name = ${p.name}`,
        'policy_type = erasure_coding',
        `ec_type = ${p.ecType}`,
        `ec_num_data_fragments = ${p.k}`,
        `ec_num_parity_fragments = ${p.m}`,
        `ec_object_segment_size = ${p.segmentSize ?? 1048576}`,
        ...(i === 0 ? ['default = yes'] : []),
        '',
      );
    });
    await writeFile(join(this.swiftDir, 'swift.conf'), lines.join('\n'));
    const devices: DeviceSpec[] = [];
    for (let n = 0; n < opts.nodes; n++) {
      const port = await freePort();
      const devicesRoot = join(this.root, `node${n}`);
      const names = Array.from({ length: opts.devicesPerNode }, (_, d) => `d${n * opts.devicesPerNode + d}`);
      for (const d of names) {
        await mkdir(join(devicesRoot, d), { recursive: true });
        devices.push({ zone: n + 1, region: 1, ip: '127.0.0.1', port, device: d, weight: 100 });
      }
      const reconCache = join(this.root, `cache${n}`);
      await mkdir(reconCache, { recursive: true });
      const conf = join(this.root, `object-server-${n}.conf`);
      await writeFile(
        conf,
        [
          '[DEFAULT]',
          `devices = ${devicesRoot}`,
          'mount_check = false',
          'bind_ip = 127.0.0.1',
          `bind_port = ${port}`,
          'workers = 0',
          `swift_dir = ${this.swiftDir}`,
          `recon_cache_path = ${reconCache}`,
          `log_name = object-${n}`,
          // the account a daemon started as root goes on as (Swift's default is swift)
          `user = ${userInfo().username}`,
          '',
          '[pipeline:main]',
          'pipeline = object-server',
          '',
          '[app:object-server]',
          'use = egg:swift#object',
          // Seven reconstructors push into one wiped device at once here: an operator
          // restoring a disk raises Swift's defaults (4 sessions per server, 1 per device) so
          // that fewer sessions are refused and left for the next pass.
          'replication_concurrency = 8',
          'replication_concurrency_per_device = 4',
          '',
          '[object-reconstructor]',
          'concurrency = 4',
          'interval = 30',
          '',
        ].join('\n'),
      );
      this.nodes.push({ index: n, port, devicesRoot, devices: names, conf, reconCache, server: null });
    }
    for (const p of opts.policies) {
      const data = buildRing({ partPower: opts.partPower, replicas: p.k + p.m, devices, seed: 1 });
      await writeRing(join(this.swiftDir, `object-${p.index}.ring.gz`), data);
    }
    this.swiftConf = await loadSwiftConf(this.swiftDir);
    for (const p of opts.policies) {
      this.rings.set(p.index, await Ring.load(join(this.swiftDir, `object-${p.index}.ring.gz`), { hash: { prefix: this.hashPrefix, suffix: this.hashSuffix } }));
      this.drivers.set(p.index, await ECDriver.create({ k: p.k, m: p.m, ecType: p.ecType }));
    }
  }

  policy(index: number): StoragePolicy {
    return this.swiftConf.policies.byIndex(index)!;
  }

  async startAll(): Promise<void> {
    for (const n of this.nodes) await this.start(n.index);
  }

  async start(i: number): Promise<void> {
    const n = this.nodes[i]!;
    if (n.server) return;
    n.server = await ObjectServer.fromConfFile(n.conf, { logger: this.log.child({ node: i }), swiftConf: this.swiftConf });
    await n.server.start();
  }

  async stop(i: number): Promise<void> {
    const n = this.nodes[i]!;
    await n.server?.stop();
    n.server = null;
  }

  async stopAll(): Promise<void> {
    for (const n of this.nodes) await this.stop(n.index);
  }

  async destroy(): Promise<void> {
    await this.stopAll();
    // A job abandoned by a lockup may still be writing: retry the removal briefly.
    await rm(this.root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }

  nodeOfDevice(device: string): ClusterNode {
    return this.nodes.find((n) => n.devices.includes(device))!;
  }

  private manager(node: ClusterNode): ECDiskFileManager {
    return new ECDiskFileManager({ devices: node.devicesRoot, mountCheck: false, hashPrefix: this.hashPrefix, hashSuffix: this.hashSuffix });
  }

  /**
   * Writes an object as Swift's proxy would: the body cut into segments, each encoded, archive i
   * (the concatenated fragments of index i) written durable to primary i with the proxy's
   * metadata. Returns where each archive went and its md5.
   */
  async putObject(policyIndex: number, account: string, container: string, object: string, body: Uint8Array): Promise<Array<{ device: string; file: string; md5: string; size: number }>> {
    const policy = this.policy(policyIndex);
    const ec = this.drivers.get(policyIndex)!;
    const ring = this.rings.get(policyIndex)!;
    const { partition, nodes } = ring.getNodes(account, container, object);
    const seg = policy.ec!.segmentSize;
    const n = policy.ec!.nUniqueFragments;
    const archives: Uint8Array[][] = Array.from({ length: n }, () => []);
    for (let off = 0; off < body.length; off += seg) {
      const frags = ec.encode(body.subarray(off, Math.min(off + seg, body.length)));
      frags.forEach((f, i) => archives[i]!.push(f));
    }
    const ts = Timestamp.now();
    const bodyEtag = md5(body);
    const scheme = `${policy.ec!.ecType} ${policy.ec!.ndata}+${policy.ec!.nparity}`;
    const out: Array<{ device: string; file: string; md5: string; size: number }> = [];
    for (const node of nodes) {
      const archive = Buffer.concat(archives[node.index]!);
      const cn = this.nodeOfDevice(node.device);
      const df = this.manager(cn).diskFile(join(cn.devicesRoot, node.device), partition, account, container, object, policy, { fragIndex: node.index });
      const w = df.writer(archive.length);
      const etag = md5(archive);
      await w.open();
      try {
        await w.write(archive);
        await w.put(
          {
            'X-Timestamp': ts.internal,
            'Content-Type': 'application/octet-stream',
            'Content-Length': String(archive.length),
            ETag: etag,
            'X-Object-Sysmeta-Ec-Frag-Index': String(node.index),
            'X-Object-Sysmeta-Ec-Etag': bodyEtag,
            'X-Object-Sysmeta-Ec-Content-Length': String(body.length),
            'X-Object-Sysmeta-Ec-Scheme': scheme,
            'X-Object-Sysmeta-Ec-Segment-Size': String(seg),
          },
          '.data',
          // as fragmend's object server writes an archive: with the CRC-32 of its bytes recorded
          { contentMd5: etag },
        );
        await w.commit(ts);
      } finally {
        await w.close();
      }
      out.push({ device: node.device, file: join(df.datadir, `${ts.internal}#${node.index}#d.data`), md5: etag, size: archive.length });
    }
    return out;
  }

  /** Reads an object back from any k archives on disk and decodes it. */
  async readObject(policyIndex: number, files: string[]): Promise<Uint8Array> {
    const ec = this.drivers.get(policyIndex)!;
    const k = this.policy(policyIndex).ec!.ndata;
    // Any k archives will do: read those that are there.
    const present: Buffer[] = [];
    for (const f of files) {
      const a = await readFile(f).catch(() => null);
      if (a) present.push(a);
    }
    if (present.length < k) throw new Error(`only ${present.length} of the ${k} archives needed are on disk`);
    const archives = present.slice(0, k);
    const parts: Uint8Array[] = [];
    const offsets = archives.map(() => 0);
    while (offsets[0]! < archives[0]!.length) {
      const frags = archives.map((a, i) => {
        const size = 80 + a.readUInt32LE(offsets[i]! + 4);
        const f = a.subarray(offsets[i]!, offsets[i]! + size);
        offsets[i]! += size;
        return f;
      });
      parts.push(ec.decode(frags));
    }
    return Buffer.concat(parts);
  }
}
