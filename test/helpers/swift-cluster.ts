// A throw-away cluster of REAL Swift 2.30 servers (Debian's python3-swift) on 127.0.0.1, for tests
// that need a genuine peer or oracle: object servers, the object reconstructor/replicator, and
// optionally a proxy with account and container servers. Everything lives in one temp directory;
// nothing global (/etc/swift, /srv, /var/cache/swift, /var/run) is read or written.
//
// Swift normally reads swift.conf from /etc/swift. scripts/swift-launch.py redirects it to the
// sandbox's copy (see that file), and scripts/swift-diskfile.py answers JSON requests with Swift's
// own diskfile/ring/EC code under the same redirection.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync } from 'node:fs';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { INSTALL_HINT } from './install-hint.js';

export const PYTHON = '/usr/bin/python3';
export const RING_BUILDER = '/usr/bin/swift-ring-builder';
export const SCRIPTS_DIR = fileURLToPath(new URL('../../scripts/', import.meta.url));
export const SWIFT_LAUNCH = path.join(SCRIPTS_DIR, 'swift-launch.py');
export const SWIFT_DISKFILE = path.join(SCRIPTS_DIR, 'swift-diskfile.py');
export const REAL_SWIFT_INSTALL_HINT = INSTALL_HINT;
export const LOOPBACK = '127.0.0.1';

// ------------------------------------------------------------------ availability

let problemCache: string | null | undefined;

/** Why real Swift cannot run here, or null when it can. */
export function realSwiftProblem(): string | null {
  if (problemCache !== undefined) return problemCache;
  problemCache = findProblem();
  return problemCache;
}

function findProblem(): string | null {
  for (const f of [PYTHON, RING_BUILDER, SWIFT_LAUNCH, SWIFT_DISKFILE]) {
    if (!existsSync(f)) return `${f} is missing`;
  }
  // The default policies use all three backends, so a missing one would fail every sandbox.
  const probe = [
    'import swift.obj.server, swift.obj.reconstructor, swift.obj.replicator, swift.common.wsgi',
    'import swift.proxy.server, swift.account.server, swift.container.server',
    'from pyeclib.ec_iface import ECDriver',
    "for t in ('liberasurecode_rs_vand', 'isa_l_rs_vand', 'jerasure_rs_vand'): ECDriver(k=4, m=2, ec_type=t)",
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', probe], { encoding: 'utf8', env: childEnv() });
  if (r.error) return `${PYTHON} cannot run: ${r.error.message}`;
  if (r.status !== 0) return `real Swift is not usable: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`}`;
  return null;
}

/** True when real Swift can run; otherwise warns and returns false, or throws under CI=true. */
export function realSwiftEnabled(): boolean {
  const problem = realSwiftProblem();
  if (!problem) return true;
  if (process.env.CI === 'true') {
    throw new Error(`CI=true and the real-Swift cluster tests cannot run: ${problem}. Install: ${REAL_SWIFT_INSTALL_HINT}`);
  }
  console.warn(`[skipped] real-Swift cluster tests: ${problem}. To run them: ${REAL_SWIFT_INSTALL_HINT}`);
  return false;
}

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...extra };
  // a pyenv or venv setting must not leak into Debian's interpreter
  delete env.PYTHONHOME;
  delete env.PYTHONPATH;
  delete env.VIRTUAL_ENV;
  return env;
}

// ------------------------------------------------------------------ configuration types

export interface SwiftPolicySpec {
  index: number;
  name: string;
  type: 'replication' | 'erasure_coding';
  default?: boolean;
  aliases?: string[];
  /** replication only; default min(3, number of object devices) */
  replicas?: number;
  /** erasure_coding only, e.g. 'liberasurecode_rs_vand' */
  ecType?: string;
  ecNdata?: number;
  ecNparity?: number;
  /** default 1048576 */
  ecSegmentSize?: number;
}

export const DEFAULT_POLICIES: readonly SwiftPolicySpec[] = [
  { index: 0, name: 'repl', type: 'replication', default: true },
  { index: 1, name: 'ec42', type: 'erasure_coding', ecType: 'liberasurecode_rs_vand', ecNdata: 4, ecNparity: 2 },
  { index: 2, name: 'ec42-isal', type: 'erasure_coding', ecType: 'isa_l_rs_vand', ecNdata: 4, ecNparity: 2 },
  { index: 3, name: 'ec42-jerasure', type: 'erasure_coding', ecType: 'jerasure_rs_vand', ecNdata: 4, ecNparity: 2 },
];

export const DEFAULT_HASH_PREFIX = 'harnessprefix';
export const DEFAULT_HASH_SUFFIX = 'harnesssuffix';

type ConfValue = string | number | boolean;
/** section name -> key -> value; merged over the generated conf */
export type ConfOverrides = Record<string, Record<string, ConfValue>>;

export interface SwiftSandboxOptions {
  objectNodes: number;
  policies?: readonly SwiftPolicySpec[];
  devicesPerNode?: number;
  /** default 6 (64 partitions) */
  partPower?: number;
  hashPrefix?: string;
  hashSuffix?: string;
  /** default 1 */
  seed?: number;
  /** merged into every object-server conf, e.g. { 'object-reconstructor': { handoffs_only: true } } */
  objectConf?: ConfOverrides;
  /** keep the directory on cleanup (also with FRAGMEND_KEEP_SWIFT_SANDBOX=1) */
  keep?: boolean;
}

export interface SwiftObjectNodePaths {
  index: number;
  ip: string;
  port: number;
  /** the `devices` root of this node */
  devicesRoot: string;
  /** device names under devicesRoot, as in the rings */
  devices: string[];
  conf: string;
  log: string;
  reconCache: string;
}

export interface SwiftServicePaths {
  port: number;
  conf: string;
  log: string;
}

export interface SwiftSandboxPaths {
  root: string;
  swiftDir: string;
  swiftConf: string;
  logDir: string;
  nodes: SwiftObjectNodePaths[];
  /** account and container servers share one devices root and device */
  accountContainer: { devicesRoot: string; device: string };
  account: SwiftServicePaths;
  container: SwiftServicePaths;
  proxy: SwiftServicePaths & { url: string };
}

export interface SwiftHttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface DaemonRunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  durationMs: number;
}

export type DiskfileRequest = { op: string } & Record<string, unknown>;
export type DiskfileResponse<T = unknown> =
  | { id?: number; ok: true; result: T }
  | { id?: number; ok: false; error: string; message: string; timestamp?: string; traceback?: string };

export class SwiftDiskfileError extends Error {
  constructor(
    readonly error: string,
    message: string,
    readonly response: DiskfileResponse,
  ) {
    super(`${error}: ${message}`);
    this.name = 'SwiftDiskfileError';
  }
}

// ------------------------------------------------------------------ process tracking

export interface TrackedProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: boolean;
}

// A test runner that dies before afterAll must not leave Swift servers behind.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackGlobally(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of liveChildren) {
        try {
          c.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** true if `p` settles within `ms`; the timer is cleared either way */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------ helpers

function ini(sections: Array<[string, Record<string, ConfValue>]>, overrides: ConfOverrides = {}): string {
  const merged = new Map<string, Record<string, ConfValue>>();
  for (const [name, entries] of sections) merged.set(name, { ...entries });
  for (const [name, entries] of Object.entries(overrides)) merged.set(name, { ...(merged.get(name) ?? {}), ...entries });
  let out = '';
  for (const [name, entries] of merged) {
    out += `[${name}]\n`;
    for (const [k, v] of Object.entries(entries)) out += `${k} = ${typeof v === 'boolean' ? (v ? 'true' : 'false') : v}\n`;
    out += '\n';
  }
  return out;
}

// Random ports below Linux's ephemeral range, so outgoing connections made between picking
// and binding cannot take them.
export async function pickFreePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < n) {
      const port = 20000 + Math.floor(Math.random() * 12000);
      if (ports.includes(port)) continue;
      const srv = net.createServer();
      const ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen({ port, host: LOOPBACK, exclusive: true }, () => resolve(true));
      });
      if (ok) {
        servers.push(srv);
        ports.push(port);
      }
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  return ports;
}

function run(cmd: string, args: string[], cwd?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** One HTTP request with node:http (any method, e.g. REPLICATE or SSYNC); no keep-alive. */
export function swiftHttp(
  port: number,
  method: string,
  urlPath: string,
  opts: { headers?: Record<string, string | number>; body?: Uint8Array | string; timeoutMs?: number; host?: string } = {},
): Promise<SwiftHttpResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
    if (opts.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
      headers['Content-Length'] = Buffer.byteLength(opts.body);
    }
    const req = http.request(
      { host: opts.host ?? LOOPBACK, port, method, path: urlPath, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${urlPath} on :${port} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

// ------------------------------------------------------------------ the sandbox

export class SwiftSandbox {
  readonly paths: SwiftSandboxPaths;
  readonly policies: readonly SwiftPolicySpec[];
  readonly hashPrefix: string;
  readonly hashSuffix: string;
  readonly partPower: number;
  /** every PID this sandbox ever started, in start order */
  readonly startedPids: number[] = [];

  private readonly procs = new Map<string, TrackedProcess>();
  private readonly keep: boolean;
  private diskfileProc: { child: ChildProcess; pending: Map<number, (r: DiskfileResponse) => void>; exited: Promise<void> } | null =
    null;
  private nextRequestId = 1;
  private cleanedUp = false;

  private constructor(paths: SwiftSandboxPaths, opts: Required<Pick<SwiftSandboxOptions, 'hashPrefix' | 'hashSuffix' | 'partPower'>> & { policies: readonly SwiftPolicySpec[]; keep: boolean }) {
    this.paths = paths;
    this.policies = opts.policies;
    this.hashPrefix = opts.hashPrefix;
    this.hashSuffix = opts.hashSuffix;
    this.partPower = opts.partPower;
    this.keep = opts.keep;
  }

  static async create(opts: SwiftSandboxOptions): Promise<SwiftSandbox> {
    const problem = realSwiftProblem();
    if (problem) throw new Error(`real Swift cannot run: ${problem}. Install: ${REAL_SWIFT_INSTALL_HINT}`);
    const nodes = opts.objectNodes;
    const perNode = opts.devicesPerNode ?? 1;
    if (!Number.isInteger(nodes) || nodes < 1) throw new Error('objectNodes must be a positive integer');
    if (!Number.isInteger(perNode) || perNode < 1) throw new Error('devicesPerNode must be a positive integer');
    const policies = opts.policies ?? DEFAULT_POLICIES;
    const partPower = opts.partPower ?? 6;
    const hashPrefix = opts.hashPrefix ?? DEFAULT_HASH_PREFIX;
    const hashSuffix = opts.hashSuffix ?? DEFAULT_HASH_SUFFIX;
    const seed = opts.seed ?? 1;
    const user = currentUser();

    const root = await mkdtemp(path.join(os.tmpdir(), 'fragmend-swift-'));
    const swiftDir = path.join(root, 'etc');
    const logDir = path.join(root, 'log');
    const ports = await pickFreePorts(nodes + 3);
    const devName = (i: number, j: number) => (perNode === 1 ? `d${i}` : `d${i}-${j}`);
    const nodePaths: SwiftObjectNodePaths[] = [];
    for (let i = 0; i < nodes; i++) {
      nodePaths.push({
        index: i,
        ip: LOOPBACK,
        port: ports[i]!,
        devicesRoot: path.join(root, `node${i}`),
        devices: Array.from({ length: perNode }, (_, j) => devName(i, j)),
        conf: path.join(swiftDir, 'object-server', `${i}.conf`),
        log: path.join(logDir, `object-${i}.log`),
        reconCache: path.join(root, 'cache', `node${i}`),
      });
    }
    const acRoot = path.join(root, 'ac');
    const paths: SwiftSandboxPaths = {
      root,
      swiftDir,
      swiftConf: path.join(swiftDir, 'swift.conf'),
      logDir,
      nodes: nodePaths,
      accountContainer: { devicesRoot: acRoot, device: 'ac0' },
      account: { port: ports[nodes]!, conf: path.join(swiftDir, 'account-server.conf'), log: path.join(logDir, 'account.log') },
      container: { port: ports[nodes + 1]!, conf: path.join(swiftDir, 'container-server.conf'), log: path.join(logDir, 'container.log') },
      proxy: {
        port: ports[nodes + 2]!,
        conf: path.join(swiftDir, 'proxy-server.conf'),
        log: path.join(logDir, 'proxy.log'),
        url: `http://${LOOPBACK}:${ports[nodes + 2]!}`,
      },
    };
    const sandbox = new SwiftSandbox(paths, {
      policies,
      partPower,
      hashPrefix,
      hashSuffix,
      keep: opts.keep ?? process.env.FRAGMEND_KEEP_SWIFT_SANDBOX === '1',
    });
    try {
      await mkdir(path.join(swiftDir, 'object-server'), { recursive: true });
      await mkdir(logDir, { recursive: true });
      await mkdir(path.join(acRoot, 'ac0'), { recursive: true });
      await mkdir(path.join(root, 'cache', 'ac'), { recursive: true });
      for (const n of nodePaths) {
        for (const d of n.devices) await mkdir(path.join(n.devicesRoot, d), { recursive: true });
        await mkdir(n.reconCache, { recursive: true });
      }
      await writeFile(paths.swiftConf, swiftConfText(policies, hashPrefix, hashSuffix));
      await sandbox.writeServerConfs(user, opts.objectConf ?? {});
      await sandbox.buildRings(policies, partPower, seed);
    } catch (e) {
      await rm(root, { recursive: true, force: true });
      throw e;
    }
    return sandbox;
  }

  // ---------------------------------------------------------------- setup

  private async writeServerConfs(user: string, objectConf: ConfOverrides): Promise<void> {
    const { paths } = this;
    const common = {
      mount_check: false,
      disable_fallocate: true,
      // a nearly full /tmp must not turn PUTs into 507s
      fallocate_reserve: 0,
      bind_ip: LOOPBACK,
      workers: 0,
      user,
      swift_dir: paths.swiftDir,
      eventlet_debug: true,
    };
    for (const n of paths.nodes) {
      const text = ini(
        [
          [
            'DEFAULT',
            {
              ...common,
              devices: n.devicesRoot,
              bind_port: n.port,
              log_name: `object-${n.index}`,
              log_level: 'DEBUG',
              recon_cache_path: n.reconCache,
            },
          ],
          ['pipeline:main', { pipeline: 'healthcheck recon object-server' }],
          ['app:object-server', { use: 'egg:swift#object' }],
          ['filter:recon', { use: 'egg:swift#recon' }],
          ['filter:healthcheck', { use: 'egg:swift#healthcheck' }],
          // rsync is the replicator's default and there is no rsync daemon in a sandbox
          ['object-replicator', { log_level: 'DEBUG', sync_method: 'ssync', concurrency: 1 }],
          ['object-reconstructor', { log_level: 'DEBUG', concurrency: 1, handoffs_only: false }],
          ['object-updater', {}],
          ['object-auditor', {}],
        ],
        objectConf,
      );
      await writeFile(n.conf, `# object node ${n.index}: ${n.devices.join(',')} under ${n.devicesRoot}, port ${n.port}\n${text}`);
    }
    for (const kind of ['account', 'container'] as const) {
      const svc = paths[kind];
      await writeFile(
        svc.conf,
        ini([
          [
            'DEFAULT',
            {
              ...common,
              devices: paths.accountContainer.devicesRoot,
              bind_port: svc.port,
              log_name: kind,
              log_level: 'INFO',
              recon_cache_path: path.join(paths.root, 'cache', 'ac'),
            },
          ],
          ['pipeline:main', { pipeline: `healthcheck recon ${kind}-server` }],
          [`app:${kind}-server`, { use: `egg:swift#${kind}` }],
          ['filter:recon', { use: 'egg:swift#recon' }],
          ['filter:healthcheck', { use: 'egg:swift#healthcheck' }],
          [`${kind}-replicator`, {}],
        ]),
      );
    }
    // No auth and no memcache: every request is allowed, and the proxy falls back to
    // per-request info lookups without a cache.
    await writeFile(
      paths.proxy.conf,
      ini([
        ['DEFAULT', { bind_ip: LOOPBACK, bind_port: paths.proxy.port, workers: 0, user, swift_dir: paths.swiftDir, log_name: 'proxy', log_level: 'DEBUG', eventlet_debug: true }],
        [
          'pipeline:main',
          { pipeline: 'catch_errors gatekeeper healthcheck proxy-logging listing_formats copy dlo versioned_writes proxy-logging proxy-server' },
        ],
        ['app:proxy-server', { use: 'egg:swift#proxy', allow_account_management: true, account_autocreate: true, log_handoffs: true }],
        ['filter:catch_errors', { use: 'egg:swift#catch_errors' }],
        ['filter:gatekeeper', { use: 'egg:swift#gatekeeper' }],
        ['filter:healthcheck', { use: 'egg:swift#healthcheck' }],
        ['filter:proxy-logging', { use: 'egg:swift#proxy_logging' }],
        ['filter:listing_formats', { use: 'egg:swift#listing_formats' }],
        ['filter:copy', { use: 'egg:swift#copy' }],
        ['filter:dlo', { use: 'egg:swift#dlo' }],
        ['filter:versioned_writes', { use: 'egg:swift#versioned_writes' }],
      ]),
    );
  }

  private async buildRings(policies: readonly SwiftPolicySpec[], partPower: number, seed: number): Promise<void> {
    const { paths } = this;
    const objectDevs = paths.nodes.flatMap((n) => n.devices.map((d) => `r1z${n.index + 1}-${n.ip}:${n.port}/${d}`));
    const ac = paths.accountContainer;
    const jobs: Array<{ name: string; replicas: number; devs: string[] }> = [
      { name: 'account', replicas: 1, devs: [`r1z1-${LOOPBACK}:${paths.account.port}/${ac.device}`] },
      { name: 'container', replicas: 1, devs: [`r1z1-${LOOPBACK}:${paths.container.port}/${ac.device}`] },
    ];
    // Identical inputs and seed give identical rings, so each distinct replica count is built once
    // and copied to the other policies that share it.
    const copies: Array<{ from: string; to: string }> = [];
    const builtByReplicas = new Map<number, string>();
    for (const p of policies) {
      const name = p.index === 0 ? 'object' : `object-${p.index}`;
      const replicas =
        p.type === 'erasure_coding' ? (p.ecNdata ?? 4) + (p.ecNparity ?? 2) : (p.replicas ?? Math.min(3, objectDevs.length));
      const built = builtByReplicas.get(replicas);
      if (built) copies.push({ from: built, to: name });
      else {
        builtByReplicas.set(replicas, name);
        jobs.push({ name, replicas, devs: objectDevs });
      }
    }
    await Promise.all(jobs.map((j) => this.buildRing(j.name, j.replicas, j.devs, partPower, seed)));
    for (const c of copies) {
      for (const ext of ['.builder', '.ring.gz']) {
        await copyFile(path.join(paths.swiftDir, c.from + ext), path.join(paths.swiftDir, c.to + ext));
      }
    }
    await rm(path.join(paths.swiftDir, 'backups'), { recursive: true, force: true });
  }

  private async buildRing(name: string, replicas: number, devs: string[], partPower: number, seed: number): Promise<void> {
    const builder = path.join(this.paths.swiftDir, `${name}.builder`);
    const steps: string[][] = [
      [builder, 'create', String(partPower), String(replicas), '0'],
      [builder, 'add', ...devs.flatMap((d) => [d, '1'])],
      [builder, 'rebalance', '--seed', String(seed)],
    ];
    let log = '';
    for (const args of steps) {
      const r = await run(RING_BUILDER, args, this.paths.swiftDir);
      log += `$ swift-ring-builder ${args.join(' ')}\n${r.output}\n`;
      // exit 1 is a warning (e.g. fewer devices than replicas); the ring file decides
      if (r.code !== 0 && !(r.code === 1 && args[1] === 'rebalance')) {
        throw new Error(`swift-ring-builder ${args.slice(1).join(' ')} failed (exit ${r.code}):\n${r.output}`);
      }
    }
    await appendFile(path.join(this.paths.logDir, 'rings.log'), log);
    if (!existsSync(path.join(this.paths.swiftDir, `${name}.ring.gz`))) {
      throw new Error(`swift-ring-builder wrote no ${name}.ring.gz:\n${log}`);
    }
  }

  // ---------------------------------------------------------------- processes

  private launch(name: string, args: string[], logFile: string, capture?: (s: string) => void): TrackedProcess {
    if (this.cleanedUp) throw new Error('sandbox was cleaned up');
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(PYTHON, [SWIFT_LAUNCH, ...args], {
        cwd: this.paths.root,
        env: childEnv({ FRAGMEND_SWIFT_CONF: this.paths.swiftConf }),
        // its own process group: a daemon's SIGTERM handler signals its whole group
        detached: true,
        stdio: ['ignore', capture ? 'pipe' : fd, capture ? 'pipe' : fd],
      });
    } finally {
      if (!capture) closeSync(fd);
    }
    // a failed spawn also emits 'error', which must not go unhandled
    child.once('error', () => {});
    if (child.pid === undefined) {
      if (capture) closeSync(fd);
      throw new Error(`could not start ${name} with ${PYTHON}`);
    }
    if (capture) {
      const onData = (d: Buffer) => {
        capture(d.toString());
        try {
          appendFileSync(fd, d);
        } catch {
          /* the log is best effort; `output` is what callers get */
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
    }
    trackGlobally(child);
    const tracked: TrackedProcess = {
      name,
      child,
      pid: child.pid,
      done: false,
      exited: new Promise((resolve) => {
        child.once('close', (code, signal) => {
          tracked.done = true;
          if (capture) closeSync(fd);
          resolve({ code, signal });
        });
      }),
    };
    this.startedPids.push(child.pid);
    this.procs.set(name, tracked);
    return tracked;
  }

  private async startServer(name: string, entry: string, conf: string, port: number, log: string, timeoutMs: number): Promise<number> {
    const existing = this.procs.get(name);
    if (existing && !existing.done) return existing.pid;
    await appendFile(log, `==== ${new Date().toISOString()} start ${entry} ${conf}\n`);
    const t = this.launch(name, [entry, conf, '-v'], log);
    try {
      await this.waitReady(port, timeoutMs, t);
    } catch (e) {
      await this.stopProcess(name);
      const logText = existsSync(log) ? await readFile(log, 'utf8') : '';
      throw new Error(`${(e as Error).message}\n--- tail of ${log}:\n${tail(logText)}`);
    }
    return t.pid;
  }

  /** Starts object server i (no-op if running); resolves with its PID once it answers HTTP. */
  startObjectServer(i: number, timeoutMs = 30_000): Promise<number> {
    const n = this.node(i);
    return this.startServer(`object-${i}`, 'object-server', n.conf, n.port, n.log, timeoutMs);
  }

  stopObjectServer(i: number, timeoutMs = 5_000): Promise<void> {
    this.node(i);
    return this.stopProcess(`object-${i}`, timeoutMs);
  }

  /**
   * A Swift object server from a conf of the caller's (another port, another option), named
   * `name` among this sandbox's processes; resolves with its PID once it answers HTTP.
   */
  startObjectServerFrom(name: string, conf: string, port: number, timeoutMs = 30_000): Promise<number> {
    return this.startServer(name, 'object-server', conf, port, path.join(this.paths.logDir, `${name}.log`), timeoutMs);
  }

  /** Stops a process started by name (startObjectServerFrom). */
  stopNamed(name: string, timeoutMs = 5_000): Promise<void> {
    return this.stopProcess(name, timeoutMs);
  }

  /** `swift-recon <args>` against this sandbox's rings and swift.conf; its output and exit code. */
  runRecon(args: string[], timeoutMs = 60_000): Promise<DaemonRunResult> {
    return this.runToEnd(`recon-${this.nextRequestId++}`, ['recon', ...args, `--swiftdir=${this.paths.swiftDir}`], path.join(this.paths.logDir, 'swift-recon.log'), timeoutMs);
  }

  async startAll(timeoutMs = 30_000): Promise<void> {
    await Promise.all(this.paths.nodes.map((n) => this.startObjectServer(n.index, timeoutMs)));
  }

  /** Stops every process this sandbox started (servers, proxy, daemons, the diskfile tool). */
  async stopAll(timeoutMs = 5_000): Promise<void> {
    await Promise.all([...this.procs.keys()].map((name) => this.stopProcess(name, timeoutMs)));
    await this.stopDiskfile(timeoutMs);
  }

  /** Account and container servers plus a proxy (no auth, no memcache); resolves with the proxy URL. */
  async startProxy(timeoutMs = 30_000): Promise<string> {
    const { account, container, proxy } = this.paths;
    await Promise.all([
      this.startServer('account', 'account-server', account.conf, account.port, account.log, timeoutMs),
      this.startServer('container', 'container-server', container.conf, container.port, container.log, timeoutMs),
    ]);
    await this.startServer('proxy', 'proxy-server', proxy.conf, proxy.port, proxy.log, timeoutMs);
    return proxy.url;
  }

  async stopProxy(timeoutMs = 5_000): Promise<void> {
    await Promise.all(['proxy', 'account', 'container'].map((n) => this.stopProcess(n, timeoutMs)));
  }

  /** PIDs of the processes of this sandbox that are still running, by name. */
  running(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, t] of this.procs) if (!t.done) out[name] = t.pid;
    if (this.diskfileProc?.child.pid !== undefined && this.diskfileProc.child.exitCode === null && this.diskfileProc.child.signalCode === null) {
      out['swift-diskfile'] = this.diskfileProc.child.pid;
    }
    return out;
  }

  private async stopProcess(name: string, timeoutMs = 5_000): Promise<void> {
    const t = this.procs.get(name);
    if (!t || t.done) return;
    // signals go to the PID we spawned, never to a name or a group
    try {
      process.kill(t.pid, 'SIGTERM');
    } catch {
      /* already exited */
    }
    if (!(await within(t.exited, timeoutMs))) {
      try {
        process.kill(t.pid, 'SIGKILL');
      } catch {
        /* exited meanwhile */
      }
      await t.exited;
    }
  }

  /**
   * Resolves when something answers HTTP on the port (any status: GET /healthcheck). Rejects on
   * timeout, or at once if `proc` (a process of this sandbox) exits first.
   */
  async waitReady(port: number, timeoutMs = 30_000, proc?: TrackedProcess): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proc?.done) {
        const { code, signal } = await proc.exited;
        throw new Error(`${proc.name} (pid ${proc.pid}) exited (code ${code}, signal ${signal}) before answering on port ${port}`);
      }
      try {
        await swiftHttp(port, 'GET', '/healthcheck', { timeoutMs: 2_000 });
        return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`nothing answered on ${LOOPBACK}:${port} within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** `swift-object-reconstructor <conf of node i> --once -v [extraArgs]`; rejects on timeout. */
  runReconstructorOnce(i: number, extraArgs: string[] = [], timeoutMs = 120_000): Promise<DaemonRunResult> {
    return this.runDaemonOnce('object-reconstructor', i, extraArgs, timeoutMs);
  }

  /** `swift-object-replicator <conf of node i> --once -v [extraArgs]` (ssync); rejects on timeout. */
  runReplicatorOnce(i: number, extraArgs: string[] = [], timeoutMs = 120_000): Promise<DaemonRunResult> {
    return this.runDaemonOnce('object-replicator', i, extraArgs, timeoutMs);
  }

  async runDaemonOnce(
    entry: 'object-reconstructor' | 'object-replicator' | 'object-updater' | 'object-auditor',
    i: number,
    extraArgs: string[] = [],
    timeoutMs = 120_000,
  ): Promise<DaemonRunResult> {
    const n = this.node(i);
    return this.runToEnd(`${entry}-${i}-${this.nextRequestId++}`, [entry, n.conf, '--once', '-v', ...extraArgs], path.join(this.paths.logDir, `${entry}-${i}.log`), timeoutMs);
  }

  /** Runs a Swift command to its end (stopped after timeoutMs), logging to `log`; its output and exit. */
  private async runToEnd(name: string, args: string[], log: string, timeoutMs: number): Promise<DaemonRunResult> {
    await appendFile(log, `==== ${new Date().toISOString()} ${args.join(' ')}\n`);
    let output = '';
    const started = Date.now();
    const t = this.launch(name, args, log, (s) => (output += s));
    if (!(await within(t.exited, timeoutMs))) {
      await this.stopProcess(name, 2_000);
      throw new Error(`${args.slice(0, 2).join(' ')} did not finish within ${timeoutMs} ms; output tail:\n${tail(output)}`);
    }
    const finished = await t.exited;
    this.procs.delete(name);
    return { code: finished.code, signal: finished.signal, output, durationMs: Date.now() - started };
  }

  // ---------------------------------------------------------------- swift-diskfile.py

  private startDiskfile(): NonNullable<SwiftSandbox['diskfileProc']> {
    if (this.diskfileProc) return this.diskfileProc;
    if (this.cleanedUp) throw new Error('sandbox was cleaned up');
    const fd = openSync(path.join(this.paths.logDir, 'swift-diskfile.log'), 'a');
    let child: ChildProcess;
    try {
      child = spawn(PYTHON, [SWIFT_DISKFILE], {
        cwd: this.paths.root,
        env: childEnv({ FRAGMEND_SWIFT_CONF: this.paths.swiftConf }),
        stdio: ['pipe', 'pipe', fd],
      });
    } finally {
      closeSync(fd);
    }
    child.once('error', () => {}); // reported through 'close' and the pending requests
    trackGlobally(child);
    if (child.pid !== undefined) this.startedPids.push(child.pid);
    const pending = new Map<number, (r: DiskfileResponse) => void>();
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let resp: DiskfileResponse;
      try {
        resp = JSON.parse(line) as DiskfileResponse;
      } catch {
        return;
      }
      const cb = resp.id !== undefined ? pending.get(resp.id) : undefined;
      if (cb) {
        pending.delete(resp.id!);
        cb(resp);
      }
    });
    const exited = new Promise<void>((resolve) => {
      child.once('close', (code, signal) => {
        for (const [id, cb] of pending) {
          cb({ id, ok: false, error: 'ToolExited', message: `swift-diskfile.py exited (code ${code}, signal ${signal}); see ${this.paths.logDir}/swift-diskfile.log` });
        }
        pending.clear();
        if (this.diskfileProc?.child === child) this.diskfileProc = null;
        resolve();
      });
    });
    child.stdin!.on('error', () => {
      /* reported through 'close' */
    });
    this.diskfileProc = { child, pending, exited };
    return this.diskfileProc;
  }

  /** Sends one request to the long-lived swift-diskfile.py; see that file for the ops. */
  diskfile<T = unknown>(req: DiskfileRequest): Promise<DiskfileResponse<T>> {
    const tool = this.startDiskfile();
    const id = this.nextRequestId++;
    return new Promise((resolve) => {
      tool.pending.set(id, resolve as (r: DiskfileResponse) => void);
      tool.child.stdin!.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  /** Like diskfile() but returns the result, or throws a SwiftDiskfileError. */
  async diskfileOk<T = unknown>(req: DiskfileRequest): Promise<T> {
    const resp = await this.diskfile<T>(req);
    if (!resp.ok) throw new SwiftDiskfileError(resp.error, resp.message, resp);
    return resp.result;
  }

  private async stopDiskfile(timeoutMs = 5_000): Promise<void> {
    const tool = this.diskfileProc;
    if (!tool) return;
    tool.child.stdin!.end();
    if (!(await within(tool.exited, timeoutMs)) && tool.child.pid !== undefined) {
      try {
        process.kill(tool.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await tool.exited;
    }
  }

  // ---------------------------------------------------------------- misc

  node(i: number): SwiftObjectNodePaths {
    const n = this.paths.nodes[i];
    if (!n) throw new RangeError(`no object node ${i} (have ${this.paths.nodes.length})`);
    return n;
  }

  /** The node (and its devices root) that holds `device` in the rings. */
  nodeOfDevice(device: string): SwiftObjectNodePaths {
    const n = this.paths.nodes.find((x) => x.devices.includes(device));
    if (!n) throw new RangeError(`no object device ${device}`);
    return n;
  }

  /** Stops everything and removes the directory (kept with `keep`); safe to call twice. */
  async cleanup(): Promise<void> {
    if (this.cleanedUp) return;
    try {
      await this.stopAll();
    } finally {
      this.cleanedUp = true;
      if (!this.keep) await rm(this.paths.root, { recursive: true, force: true });
      else console.warn(`[swift sandbox kept] ${this.paths.root}`);
    }
  }
}

function swiftConfText(policies: readonly SwiftPolicySpec[], prefix: string, suffix: string): string {
  const sections: Array<[string, Record<string, ConfValue>]> = [
    ['swift-hash', { swift_hash_path_prefix: prefix, swift_hash_path_suffix: suffix }],
  ];
  for (const p of policies) {
    const s: Record<string, ConfValue> = { name: p.name, policy_type: p.type };
    if (p.aliases?.length) s.aliases = p.aliases.join(', ');
    if (p.default) s.default = 'yes';
    if (p.type === 'erasure_coding') {
      s.ec_type = p.ecType ?? 'liberasurecode_rs_vand';
      s.ec_num_data_fragments = p.ecNdata ?? 4;
      s.ec_num_parity_fragments = p.ecNparity ?? 2;
      s.ec_object_segment_size = p.ecSegmentSize ?? 1048576;
    }
    sections.push([`storage-policy:${p.index}`, s]);
  }
  sections.push(['swift-constraints', {}]);
  return ini(sections);
}

function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'root';
  }
}

