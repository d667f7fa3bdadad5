// fragmend's reconstructor against swift-object-reconstructor (Swift 2.30) on real loopback
// clusters, with the same data and the same settings (concurrency 1, log_level INFO):
//   1. restoring a wiped device on an all-Swift cluster: wall seconds, MiB/s of fragment archives
//      restored, CPU seconds of the reconstructor processes;
//   2. the same restore with fragmend's object servers on every node, on a second cluster with
//      the same rings and data, written through the proxy to those servers (each cluster's
//      object servers are started once and warmed by unmeasured restores; then every kind of
//      restore takes its turn in every round);
//   3. a pass with nothing to do over a 1024-partition ring whose partitions hold objects;
//   4. peak RSS of a reconstructor rebuilding a lost archive of a 1 MiB and of a big object.
//
//   npm run bench:reconstructor [-- --json]
//   (= npx vitest run --config bench/vitest.config.ts -- [--json])
//
// Environment: FRAGMEND_BENCH_ROUNDS (3), FRAGMEND_BENCH_WARMUP (10 unmeasured restores warming
// each kind of object server), FRAGMEND_BENCH_OBJECTS (128 objects in the restore data
// set), FRAGMEND_BENCH_NOOP_OBJECTS (3000), FRAGMEND_BENCH_NOOP_NODES (2 nodes timed per no-op
// pass), FRAGMEND_BENCH_BIG_MIB (1024), FRAGMEND_BENCH_QUICK=1 (small everything, to try the
// bench out), FRAGMEND_BENCH_CPU_PROF=<dir> (fragmend reconstructors write .cpuprofile files
// there), FRAGMEND_BENCH_SERVER_PROF=<dir> (the same for fragmend's object servers, written when they
// stop), FRAGMEND_BENCH_KEEP=1 (keep the sandboxes), FRAGMEND_BENCH_REV=<commit> (bench that
// commit's src/ rather than the working tree's), FRAGMEND_BENCH_QUIET_WAIT (300: seconds to
// wait for others' jobs to leave the CPU before a round), FRAGMEND_BENCH_ONLY=restore|noop (one
// part only; the other's rows print as '-'), FRAGMEND_BENCH_SERVERS=swift|fragmend (restore rounds
// on that kind of object server only), FRAGMEND_BENCH_PERF=<dir> (each measured restore
// round and no-op pass runs under a system-wide `perf record -g -e cpu-clock`, which samples
// only what is on a CPU, unlike V8's --cpu-prof; fragmend's processes then write
// /tmp/perf-<pid>.map for their JS; FRAGMEND_BENCH_PERF_HZ sets the rate, 499 by default),
// FRAGMEND_BENCH_NODE_FLAGS and FRAGMEND_BENCH_SERVER_NODE_FLAGS (extra node options for
// fragmend's reconstructors and for its object servers).
//
// Every reconstructor runs as a child process under /usr/bin/time, whose wait4() rusage is the
// only place a child's CPU and peak RSS can be read after it exits. fragmend runs from its own
// build of src/ in node_modules/.cache, so the numbers never come from a stale dist/.
//
// The machine is shared and has 2 cores, which the reconstructors and the object servers
// saturate: a job of someone else's running alongside would decide the result. So each round
// waits for a quiet machine, and /proc/stat tells afterwards how much CPU others took meanwhile.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat as fsStat, truncate } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { readMetadata } from '../src/swift/metadata.js';
import { PYTHON, SWIFT_LAUNCH, SwiftSandbox, realSwiftProblem, swiftHttp, type SwiftPolicySpec } from '../test/helpers/swift-cluster.js';
import type { Placement } from '../test/helpers/placement.js';

// ------------------------------------------------------------------ settings

const env = process.env;
const int = (v: string | undefined, d: number) => (v !== undefined && v !== '' ? Number.parseInt(v, 10) : d);
const QUICK = env.FRAGMEND_BENCH_QUICK === '1';
const JSON_OUT = env.FRAGMEND_BENCH_JSON === '1';
const ROUNDS = int(env.FRAGMEND_BENCH_ROUNDS, QUICK ? 1 : 3);
const RESTORE_OBJECTS = int(env.FRAGMEND_BENCH_OBJECTS, QUICK ? 24 : 128);
const NOOP_OBJECTS = int(env.FRAGMEND_BENCH_NOOP_OBJECTS, QUICK ? 400 : 3000);
const NOOP_NODES = int(env.FRAGMEND_BENCH_NOOP_NODES, 2);
const NOOP_PART_POWER = 10;
const BIG_MIB = int(env.FRAGMEND_BENCH_BIG_MIB, QUICK ? 64 : 1024);
/** unmeasured restores that warm each kind of object server before its rounds */
const WARMUP = int(env.FRAGMEND_BENCH_WARMUP, QUICK ? 1 : 10);
const CPU_PROF = env.FRAGMEND_BENCH_CPU_PROF || '';
const SERVER_PROF = env.FRAGMEND_BENCH_SERVER_PROF || '';
/** extra node options for fragmend's reconstructors, to try V8 settings: FRAGMEND_BENCH_NODE_FLAGS="--max-semi-space-size=1" */
const NODE_FLAGS = (env.FRAGMEND_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
/** the same for fragmend's object servers: FRAGMEND_BENCH_SERVER_NODE_FLAGS="--trace-deopt" */
const SERVER_NODE_FLAGS = (env.FRAGMEND_BENCH_SERVER_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
const KEEP = env.FRAGMEND_BENCH_KEEP === '1';
const REV = env.FRAGMEND_BENCH_REV || '';
const ONLY = env.FRAGMEND_BENCH_ONLY || '';
const PERF = env.FRAGMEND_BENCH_PERF || '';
/** restore rounds on one kind of object server only (the other's rows print as '-') */
const SERVERS = env.FRAGMEND_BENCH_SERVERS || '';
/** node options that let perf name JIT-compiled JS */
const PERF_FLAGS = PERF ? ['--perf-basic-prof-only-functions', '--interpreted-frames-native-stack'] : [];
if (SERVERS && SERVERS !== 'swift' && SERVERS !== 'fragmend') throw new Error(`FRAGMEND_BENCH_SERVERS is swift or fragmend, not ${SERVERS}`);
if (ONLY && ONLY !== 'restore' && ONLY !== 'noop') throw new Error(`FRAGMEND_BENCH_ONLY is restore or noop, not ${ONLY}`);
/** the commit REV named when the build was made (a branch may move while the bench runs) */
let revSha = '';
const NODES = 8;
const VICTIM = 5;
const MAX_PASSES = 4;
/** CPU seconds per second that someone else may use while the machine still counts as quiet */
const QUIET_CPU = 0.15;
const QUIET_MAX_WAIT_S = int(env.FRAGMEND_BENCH_QUIET_WAIT, 300);
/** a round during which others used more than this share of one core is run again (twice at most) */
const DISTURBED_SHARE = 0.15;
const ACCOUNT = 'AUTH_bench';
const MiB = 1024 * 1024;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILD = join(ROOT, 'node_modules', '.cache', 'fragmend-bench');
const FRAGMEND = join(BUILD, 'bin', 'fragmend.js');

const POLICIES: SwiftPolicySpec[] = [
  { index: 0, name: 'repl', type: 'replication', default: true },
  { index: 1, name: 'ec42', type: 'erasure_coding', ecType: 'liberasurecode_rs_vand', ecNdata: 4, ecNparity: 2 },
];
// Production log levels for both daemons and the servers: DEBUG logging would charge either side
// for formatting it does not do in a real deployment.
const OBJECT_CONF = {
  DEFAULT: { log_level: 'INFO', eventlet_debug: false },
  'object-reconstructor': { concurrency: 1, log_level: 'INFO' },
};

// ------------------------------------------------------------------ output

const note = (s: string) => writeSync(2, `[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ------------------------------------------------------------------ child processes

interface Run {
  code: number | null;
  /** seconds, measured here */
  wall: number;
  user: number;
  sys: number;
  maxRssKiB: number;
  out: string;
}

const cpu = (r: Run) => r.user + r.sys;

function swiftEnv(sbx: SwiftSandbox): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', FRAGMEND_SWIFT_CONF: sbx.paths.swiftConf };
  delete e.PYTHONHOME;
  delete e.PYTHONPATH;
  delete e.VIRTUAL_ENV;
  return e;
}

function nodeEnv(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...env };
  delete e.NODE_OPTIONS;
  // Node reads and parses this bundle of certificates at every start, before any of fragmend's
  // code runs (about 35 ms of CPU per process here); a storage node's service manager does not
  // set it, and neither daemon speaks TLS.
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

/**
 * With FRAGMEND_BENCH_PERF, a system-wide on-CPU profile of one round until stop(), in
 * <dir>/<seq>-<label>-<daemon>.data; otherwise null.
 */
async function startPerf(label: string, daemon: Daemon): Promise<{ stop(): Promise<void> } | null> {
  if (!PERF) return null;
  const out = join(PERF, `${String(++profileSeq).padStart(3, '0')}-${label}-${daemon}.data`);
  const child = spawn('perf', ['record', '-a', '-g', '-F', env.FRAGMEND_BENCH_PERF_HZ || '499', '-e', 'cpu-clock', '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  let failed = false;
  child.stderr!.on('data', (d) => (err += d));
  child.once('error', (e) => {
    failed = true;
    err += `${e.message} (is perf, from Debian's linux-perf, installed?)`;
  });
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  await new Promise((r) => setTimeout(r, 300)); // perf's own start-up, before the round
  if (failed || child.exitCode !== null) throw new Error(`perf record did not start: ${err}`);
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
    },
  };
}

/** Runs cmd under /usr/bin/time; rejects on timeout after killing it. */
function timed(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; log: string; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '\n@@time %e %U %S %M', cmd, ...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      // /usr/bin/time outlives a SIGTERM'd child only briefly; the child is what must go
      for (const pid of childPids(child.pid!)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms; output tail:\n${(out + err).slice(-3000)}`));
    }, opts.timeoutMs ?? 600_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const wall = (performance.now() - started) / 1000;
      const m = /\n@@time ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(err);
      const text = out + (m ? err.slice(0, m.index) : err);
      void appendFile(opts.log, `==== ${cmd} ${args.join(' ')} (exit ${code}, ${wall.toFixed(2)} s)\n${text}\n`).catch(() => undefined);
      if (!m) {
        reject(new Error(`no rusage from /usr/bin/time for ${cmd} ${args.join(' ')}: ${err.slice(-2000)}`));
        return;
      }
      resolve({ code, wall, user: Number(m[2]), sys: Number(m[3]), maxRssKiB: Number(m[4]), out: text });
    });
  });
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** user+sys seconds a running process has used so far (0 once it is gone). */
function procCpu(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU seconds of the whole machine so far, from /proc/stat: busy here, and stolen by the host. */
function machineCpu(): { busy: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return { busy: (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) / CLK_TCK, steal: f[7]! / CLK_TCK };
}

// ------------------------------------------------------------------ fragmend build

/**
 * Compiles fragmend into BUILD: the working tree's src/ by default (with the codec module that
 * `npm run build` last generated), or with FRAGMEND_BENCH_REV that commit's src/ and its wasm
 * codec, built from its own assembly/ by its own build:wasm script: a codec generated from
 * someone's half-finished assembly/ next to an older src/codec would rebuild wrong bytes.
 */
function buildFragmend(): void {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  let project = join(ROOT, 'tsconfig.json');
  rmSync(join(BUILD, 'dist'), { recursive: true, force: true });
  if (REV) {
    const sha = spawnSync('git', ['rev-parse', '--verify', `${REV}^{commit}`], { cwd: ROOT, encoding: 'utf8' });
    if (sha.status !== 0) throw new Error(`FRAGMEND_BENCH_REV=${REV} is not a commit: ${sha.stderr}`);
    revSha = sha.stdout.trim();
    const tree = join(BUILD, 'tree');
    rmSync(tree, { recursive: true, force: true });
    mkdirSync(tree, { recursive: true });
    const archive = spawnSync('git', ['archive', '--format=tar', revSha, 'src', 'tsconfig.json', 'assembly', 'asconfig.json', 'scripts', 'package.json'], {
      cwd: ROOT,
      maxBuffer: 1 << 30,
    });
    if (archive.status !== 0) throw new Error(`git archive ${REV}: ${archive.stderr.toString()}`);
    const untar = spawnSync('tar', ['-x', '-C', tree], { input: archive.stdout });
    if (untar.status !== 0) throw new Error(`tar: ${untar.stderr.toString()}`);
    const script = (JSON.parse(readFileSync(join(tree, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['build:wasm'];
    if (!script) throw new Error(`${REV} has no build:wasm script`);
    const wasm = spawnSync('sh', ['-c', script], {
      cwd: tree,
      encoding: 'utf8',
      env: { ...nodeEnv(), PATH: `${join(ROOT, 'node_modules', '.bin')}:${env.PATH ?? ''}` },
    });
    if (wasm.status !== 0) throw new Error(`build:wasm of ${REV} failed:\n${wasm.stdout}${wasm.stderr}`);
    project = join(tree, 'tsconfig.json');
  }
  const r = spawnSync(process.execPath, [tsc, '-p', project, '--outDir', join(BUILD, 'dist'), '--declaration', 'false'], { cwd: ROOT, encoding: 'utf8' });
  // tsc still emits when some file has a type error; whether the result runs is checked below
  if (r.error) throw r.error;
  if (r.status !== 0) note(`tsc reported problems (continuing with what it emitted):\n${r.stdout.slice(0, 2000)}`);
  const bundle = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bundle-cli.mjs'), join(BUILD, 'dist')], { cwd: ROOT, encoding: 'utf8' });
  if (bundle.status !== 0) throw new Error(`bundling the command line failed:\n${bundle.stdout}${bundle.stderr}`);
  mkdirSync(join(BUILD, 'bin'), { recursive: true });
  writeFileSync(FRAGMEND, readFileSync(join(ROOT, 'bin', 'fragmend.js')));
  // (bin/package.json makes the entry point CommonJS, whatever the tree above it says)
  writeFileSync(join(BUILD, 'bin', 'package.json'), readFileSync(join(ROOT, 'bin', 'package.json')));
  const probe = spawnSync(process.execPath, [FRAGMEND, '--help'], { encoding: 'utf8', env: nodeEnv() });
  if (probe.status !== 0) {
    throw new Error(`the fragmend build in ${BUILD} does not start${REV ? '' : ' (if src/ is mid-edit, FRAGMEND_BENCH_REV=HEAD benches the last commit)'}: ${probe.stderr}`);
  }
}

// ------------------------------------------------------------------ data

/** Incompressible, reproducible bytes: an AES-CTR keystream. */
function keystream(seed: number) {
  const key = createHash('md5').update(`fragmend-bench-${seed}`).digest();
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n: number) => c.update(Buffer.alloc(n));
}

function restoreSizes(n: number): number[] {
  let x = 0x9e3779b9;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const between = (lo: number, hi: number) => Math.floor(lo + rnd() * (hi - lo));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (i === 0) out.push(0);
    else if (r < 0.25) out.push(between(1, 16 * 1024));
    else if (r < 0.5) out.push(between(16 * 1024, 512 * 1024));
    else if (r < 0.8) out.push(between(512 * 1024, 3 * MiB));
    else out.push(between(3 * MiB, 14 * MiB));
  }
  return out;
}

async function putContainer(port: number, c: string): Promise<void> {
  const r = await swiftHttp(port, 'PUT', `/v1/${ACCOUNT}/${c}`, { headers: { 'X-Storage-Policy': 'ec42' } });
  if (r.status >= 300) throw new Error(`PUT container ${c}: ${r.status}`);
}

async function putObject(port: number, c: string, o: string, body: Buffer): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = await swiftHttp(port, 'PUT', `/v1/${ACCOUNT}/${c}/${o}`, { body, timeoutMs: 120_000 }).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }));
    if (r.status === 201) return;
    if (attempt >= 2) throw new Error(`PUT ${c}/${o}: ${r.status} ${r.body.toString().slice(0, 200)}`);
  }
}

/**
 * PUTs `size` keystream bytes without holding them in memory; returns their md5. A PUT the proxy
 * refuses (a 503 when its object servers are slow to take a large object's last bytes) is made
 * again, twice at most: it sets up a measurement, it is not one.
 */
async function putStreaming(port: number, c: string, o: string, size: number, seed: number): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await putStreamingOnce(port, c, o, size, seed);
    } catch (e) {
      if (attempt >= 2) throw e;
      note(`${(e as Error).message}; trying again`);
    }
  }
}

function putStreamingOnce(port: number, c: string, o: string, size: number, seed: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const next = keystream(seed);
    const h = createHash('md5');
    const req = http.request(
      { host: '127.0.0.1', port, method: 'PUT', path: `/v1/${ACCOUNT}/${c}/${o}`, headers: { 'Content-Length': size }, agent: false },
      (res) => {
        const answer: Buffer[] = [];
        res.on('data', (d: Buffer) => answer.length < 16 && answer.push(d));
        res.on('end', () =>
          res.statusCode === 201 ? resolve(h.digest('hex')) : reject(new Error(`PUT ${c}/${o}: ${res.statusCode} ${Buffer.concat(answer).toString('utf8').slice(0, 200)}`)),
        );
      },
    );
    req.on('error', reject);
    let left = size;
    const pump = () => {
      while (left > 0) {
        const chunk = next(Math.min(MiB, left));
        left -= chunk.length;
        h.update(chunk);
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

interface FileState {
  md5: string;
  size: number;
  meta: Record<string, string>;
}

/** Every .data/.meta/.ts file under a device: relative path -> md5, size and metadata. */
async function snapshot(devPath: string): Promise<Map<string, FileState>> {
  const out = new Map<string, FileState>();
  const walk = async (dir: string) => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name.startsWith('tmp') || e.name === 'quarantined') continue;
        await walk(p);
      } else if (/\.(data|ts|meta)$/.test(e.name)) {
        const body = await readFile(p);
        out.set(relative(devPath, p), { md5: md5(body), size: body.length, meta: await readMetadata(p) });
      }
    }
  };
  await walk(devPath);
  return out;
}

/** Truncates every file under dir, keeping the files (and so their inodes) in place. */
async function emptyFiles(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await emptyFiles(p);
    else if (e.isFile()) await truncate(p, 0);
  }
}

function sameMeta(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function compareSnapshots(before: Map<string, FileState>, after: Map<string, FileState>) {
  let missing = 0;
  let different = 0;
  let restoredBytes = 0;
  let firstDifference = '';
  for (const [k, v] of before) {
    const a = after.get(k);
    if (!a) missing++;
    else if (a.md5 !== v.md5 || !sameMeta(a.meta, v.meta)) {
      different++;
      firstDifference ||= `${k}: md5 ${v.md5} -> ${a.md5}, metadata ${JSON.stringify(v.meta)} -> ${JSON.stringify(a.meta)}`;
    } else restoredBytes += a.size;
  }
  const extra = [...after.keys()].filter((k) => !before.has(k)).length;
  return { missing, different, extra, restoredBytes, firstDifference, ok: missing === 0 && different === 0 && extra === 0 };
}

// ------------------------------------------------------------------ log parsing

/** The stats line both daemons log at the end of a pass: partitions and seconds inside the pass. */
function passStats(out: string): { parts: number; total: number; seconds: number } | null {
  const re = /(\d+)\/(\d+) \([\d.]+%\) partitions reconstructed in ([\d.]+)s/g;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(out); m; m = re.exec(out)) last = m;
  return last ? { parts: Number(last[1]), total: Number(last[2]), seconds: Number(last[3]) } : null;
}

// ------------------------------------------------------------------ statistics

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};
interface Stat {
  median: number;
  min: number;
  max: number;
  samples: number[];
}
const stat = (xs: number[]): Stat => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), samples: xs });

// ------------------------------------------------------------------ a cluster under test

type Daemon = 'swift' | 'fragmend';
/** all 7 nodes' reconstructors at once (a cluster), or one node after another (no daemon competes with another for the 2 cores) */
type Mode = 'parallel' | 'sequential';
let profileSeq = 0;

class Bench {
  private readonly fragServers = new Map<number, { child: ChildProcess; exited: Promise<void> }>();
  servers: 'swift' | 'fragmend' = 'swift';
  /** names the next fragmend run's .cpuprofile */
  label = '';

  constructor(readonly sbx: SwiftSandbox) {
    // like the sandbox's own servers, ours must not outlive a runner that dies early
    process.once('exit', () => {
      for (const s of this.fragServers.values()) s.child.kill('SIGKILL');
    });
  }

  get logDir() {
    return this.sbx.paths.logDir;
  }

  /** One reconstructor --once on node i; Swift's needs -v to log to the console at all. */
  recon(daemon: Daemon, i: number, extra: string[] = [], timeoutMs = 900_000): Promise<Run> {
    const conf = this.sbx.node(i).conf;
    if (daemon === 'swift') {
      return timed(PYTHON, [SWIFT_LAUNCH, 'object-reconstructor', conf, '--once', '-v', ...extra], {
        cwd: this.sbx.paths.root,
        env: swiftEnv(this.sbx),
        log: join(this.logDir, `bench-swift-reconstructor-${i}.log`),
        timeoutMs,
      });
    }
    const prof = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, `--cpu-prof-name=${String(++profileSeq).padStart(3, '0')}-${this.label || 'run'}-node${i}.cpuprofile`] : [];
    return timed(process.execPath, [...NODE_FLAGS, ...PERF_FLAGS, ...prof, FRAGMEND, 'reconstructor', conf, '--once', ...extra], {
      cwd: ROOT,
      env: nodeEnv(),
      log: join(this.logDir, `bench-fragmend-reconstructor-${i}.log`),
      timeoutMs,
    });
  }

  /** PIDs of the running object servers, whichever kind. */
  serverPids(): number[] {
    if (this.servers === 'fragmend') return [...this.fragServers.values()].map((s) => s.child.pid!);
    const running = this.sbx.running();
    return [...Array(NODES).keys()].map((i) => running[`object-${i}`]).filter((p): p is number => p !== undefined);
  }

  serversCpu(): number {
    return this.serverPids().reduce((a, p) => a + procCpu(p), 0);
  }

  /**
   * Waits until the machine is quiet: between rounds nothing of ours is busy, so whatever uses
   * the CPU now is someone else's job, which would slow whichever daemon ran next. Returns the
   * seconds waited.
   */
  async quiet(maxWaitS = QUIET_MAX_WAIT_S): Promise<number> {
    const start = performance.now();
    for (;;) {
      const m0 = machineCpu();
      const s0 = this.serversCpu();
      await new Promise((r) => setTimeout(r, 1000));
      const other = machineCpu().busy - m0.busy - (this.serversCpu() - s0);
      const waited = (performance.now() - start) / 1000;
      if (other < QUIET_CPU || waited > maxWaitS) {
        if (waited > 5) note(`waited ${waited.toFixed(0)} s for a quiet machine${other < QUIET_CPU ? '' : ' (gave up; this round may be disturbed)'}`);
        return waited;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  /** Puts Swift's or fragmend's object server on every node (same conf, disks and port). */
  async useServers(kind: 'swift' | 'fragmend'): Promise<void> {
    if (this.servers === kind) return;
    if (kind === 'fragmend') {
      for (let i = 0; i < NODES; i++) await this.sbx.stopObjectServer(i);
      await Promise.all(
        [...Array(NODES).keys()].map(async (i) => {
          const n = this.sbx.node(i);
          const fd = openSync(join(this.logDir, `fragmend-object-${i}.log`), 'a');
          const prof = SERVER_PROF ? ['--cpu-prof', `--cpu-prof-dir=${SERVER_PROF}`, `--cpu-prof-name=server-${++profileSeq}-node${i}.cpuprofile`] : [];
          const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...PERF_FLAGS, ...prof, FRAGMEND, 'object-server', n.conf], { cwd: ROOT, env: nodeEnv(), stdio: ['ignore', fd, fd] });
          closeSync(fd);
          const exited = new Promise<void>((r) => child.once('exit', () => r()));
          this.fragServers.set(i, { child, exited });
          await this.sbx.waitReady(n.port, 30_000);
        }),
      );
    } else {
      await this.stopFragServers();
      await this.sbx.startAll();
    }
    this.servers = kind;
  }

  async stopFragServers(): Promise<void> {
    await Promise.all(
      [...this.fragServers.entries()].map(async ([i, s]) => {
        s.child.kill('SIGTERM');
        const t = setTimeout(() => s.child.kill('SIGKILL'), 5_000);
        await s.exited;
        clearTimeout(t);
        this.fragServers.delete(i);
      }),
    );
  }

  async cleanup(): Promise<void> {
    await this.stopFragServers();
    await this.sbx.cleanup();
  }
}

// ------------------------------------------------------------------ 1, 2 and 4: restore, RSS

interface RestoreSample {
  daemon: Daemon;
  servers: 'swift' | 'fragmend';
  wall: number;
  passes: number;
  cpu: number;
  serverCpu: number;
  restoredMiB: number;
  files: number;
  maxRssMiB: number;
  /** the longest of the processes' own in-pass seconds: the wall time minus start-up */
  passMax: number;
  /** machine CPU not used by the reconstructors or object servers: this process, the kernel, anyone else */
  otherCpu: number;
  /** CPU time the hypervisor gave to someone else while this round ran */
  stealCpu: number;
  mode: Mode;
  /** others used more than DISTURBED_SHARE of a core even after retries */
  disturbed?: boolean;
}

interface RssSample {
  daemon: Daemon;
  objectMiB: number;
  archiveMiB: number;
  maxRssMiB: number;
  wall: number;
  cpu: number;
}

type Servers = 'swift' | 'fragmend';

/** One restore cluster: its sandbox, the victim device as it was, and how to restore it. */
interface RestoreCluster {
  servers: Servers;
  sbx: SwiftSandbox;
  b: Bench;
  written: Map<string, string>;
  totalMiB: number;
  objects: number;
  lostFiles: number;
  lostMiB: number;
  restoreOnce(daemon: Daemon, mode: Mode): Promise<RestoreSample>;
}

/**
 * A Swift cluster whose object servers are `servers`' from the start: the restore's data is
 * written through the real proxy to them, as it is on a cluster that runs them, so on
 * fragmend's every archive carries the CRC-32 record its server keeps. Every cluster made here
 * has the same rings (same seed) and the same objects (same names and bodies), so the same
 * archives on the same devices.
 */
async function restoreCluster(servers: Servers, benches: Bench[]): Promise<RestoreCluster> {
  note(`restore: creating an 8-node Swift 2.30 cluster (EC 4+2 liberasurecode_rs_vand) for ${servers}'s object servers`);
  const sbx = await SwiftSandbox.create({ objectNodes: NODES, policies: POLICIES, objectConf: OBJECT_CONF, keep: KEEP });
  const b = new Bench(sbx);
  benches.push(b);
  await sbx.startAll();
  await b.useServers(servers);
  const proxy = Number(new URL(await sbx.startProxy()).port);
  await putContainer(proxy, 'restore');
  const sizes = restoreSizes(RESTORE_OBJECTS);
  const written = new Map<string, string>();
  const t0 = performance.now();
  // two PUTs in flight keep the proxy busy without starving the object servers of the 2 cores
  let next = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < sizes.length) {
        const i = next++;
        const body = keystream(i + 1)(sizes[i]!);
        await putObject(proxy, 'restore', `o${i}`, body);
        written.set(`o${i}`, md5(body));
      }
    }),
  );
  const totalMiB = sizes.reduce((a, s) => a + s, 0) / MiB;
  note(`restore: ${sizes.length} objects, ${totalMiB.toFixed(1)} MiB written through the proxy in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await sbx.stopProxy();

  // Consolidates every node's hashes.pkl, so the first timed round does not pay for it.
  const warm = await Promise.all([...Array(NODES).keys()].map((i) => b.recon('swift', i)));
  if (warm.some((r) => r.code !== 0)) throw new Error(`warm-up pass failed:\n${warm.map((r) => r.out.slice(-1500)).join('\n')}`);

  const victim = sbx.node(VICTIM);
  const devPath = join(victim.devicesRoot, victim.devices[0]!);
  const before = await snapshot(devPath);
  const lostFiles = [...before.keys()].filter((k) => k.endsWith('.data'));
  const lostMiB = lostFiles.reduce((a, k) => a + before.get(k)!.size, 0) / MiB;
  note(`restore: the victim device ${victim.devices[0]} holds ${lostFiles.length} fragment archives, ${lostMiB.toFixed(1)} MiB`);
  const others = [...Array(NODES).keys()].filter((i) => i !== VICTIM);

  let wipes = 0;
  const restoreOnce = async (daemon: Daemon, mode: Mode): Promise<RestoreSample> => {
    await b.quiet();
    // The device is emptied by moving its contents aside, not by deleting them: a replaced
    // disk is a fresh file system, where one emptied by rm has hundreds of inodes freed
    // moments ago. ext4 without a journal (as here) skips those for a minute or more when it
    // places a new inode, looking each one up, and every file and directory the restore
    // created paid for that: perf found 0.16 s of the receiving server's main thread per
    // restore in that search, on either kind of server. What was moved aside goes with the
    // sandbox.
    //
    // What was moved aside is then emptied (truncated, its inodes kept): a replaced disk takes
    // its files' page cache with it, where files kept whole keep theirs, and the restore's
    // writes then need pages the kernel has not used before. On this virtual machine the first
    // write to such a page costs the host a fault: writing 68 MB into fresh pages took 180 ms
    // of system time, into pages just freed 32 ms. Every restore paid that on the receiving
    // server's main thread, on either kind of server (0.15-0.2 s a restore, as much as its MD5s).
    const aside = join(sbx.paths.root, 'wiped', String(++wipes));
    await mkdir(aside, { recursive: true });
    for (const e of await readdir(devPath)) await rename(join(devPath, e), join(aside, e));
    await emptyFiles(aside);
    let wall = 0;
    let passes = 0;
    let daemonCpu = 0;
    let serverCpu = 0;
    let maxRss = 0;
    let passMax = 0;
    let otherCpu = 0;
    let stealCpu = 0;
    b.label = `restore-${mode}-${servers}-servers`;
    for (;;) {
      const perf = await startPerf(b.label, daemon);
      const c0 = b.serversCpu();
      const m0 = machineCpu();
      const t = performance.now();
      const runs: Run[] = [];
      if (mode === 'parallel') runs.push(...(await Promise.all(others.map((i) => b.recon(daemon, i)))));
      else for (const i of others) runs.push(await b.recon(daemon, i));
      wall += (performance.now() - t) / 1000;
      const dServers = b.serversCpu() - c0;
      const m1 = machineCpu();
      // after the round's CPU is read: perf writing its file is not the round's
      await perf?.stop();
      serverCpu += dServers;
      otherCpu += m1.busy - m0.busy - dServers - runs.reduce((a, r) => a + cpu(r), 0);
      stealCpu += m1.steal - m0.steal;
      passes++;
      for (const r of runs) {
        if (r.code !== 0) throw new Error(`${daemon} reconstructor exited ${r.code}:\n${r.out.slice(-3000)}`);
        daemonCpu += cpu(r);
        maxRss = Math.max(maxRss, r.maxRssKiB / 1024);
        passMax = Math.max(passMax, passStats(r.out)?.seconds ?? 0);
      }
      const cmp = compareSnapshots(before, await snapshot(devPath));
      if (cmp.different || cmp.extra) throw new Error(`${daemon} on ${servers} servers (${mode}) restored wrong files: ${JSON.stringify(cmp)}`);
      if (cmp.ok) break;
      if (passes >= MAX_PASSES) throw new Error(`${daemon} on ${servers} servers (${mode}): ${cmp.missing} files still missing after ${passes} passes`);
    }
    const s = { daemon, servers, wall, passes, cpu: daemonCpu, serverCpu, restoredMiB: lostMiB, files: lostFiles.length, maxRssMiB: maxRss, passMax, otherCpu, stealCpu, mode };
    note(
      `restore (${mode}): ${daemon} reconstructor, ${servers} servers: ${wall.toFixed(2)} s wall, ${passes} pass(es), ${daemonCpu.toFixed(2)} s reconstructor CPU, ${serverCpu.toFixed(2)} s object-server CPU`,
    );
    return s;
  };
  return { servers, sbx, b, written, totalMiB, objects: sizes.length, lostFiles: lostFiles.length, lostMiB, restoreOnce };
}

async function restoreBench() {
  const benches: Bench[] = [];
  try {
    // One cluster per kind of object server, each started once and kept, so that the kinds of
    // restore can take turns round by round. This shared machine drifts: between two runs of the
    // same code, fragmend's reconstructors once took 35% more CPU for the same restore. Measured
    // in two blocks minutes apart (one kind of server, then the other), a drift landed on one
    // side of the all-fragmend ratio only; taking turns spreads it over both.
    const clusters = new Map<Servers, RestoreCluster>();
    for (const servers of ['swift', 'fragmend'] as const) {
      if (SERVERS && servers !== SERVERS) continue;
      clusters.set(servers, await restoreCluster(servers, benches));
    }
    const [first, ...rest] = [...clusters.values()];
    for (const c of rest) {
      if (c.lostFiles !== first!.lostFiles || Math.abs(c.lostMiB - first!.lostMiB) > 1e-9) {
        throw new Error(`the clusters differ: the victim holds ${first!.lostFiles} archives (${first!.lostMiB} MiB) in one, ${c.lostFiles} (${c.lostMiB} MiB) in the other`);
      }
    }

    const restore = async (c: RestoreCluster, daemon: Daemon, mode: Mode): Promise<RestoreSample> => {
      for (let attempt = 0; ; attempt++) {
        const sample = await c.restoreOnce(daemon, mode);
        sample.disturbed = sample.otherCpu > DISTURBED_SHARE * sample.wall;
        if (!sample.disturbed || attempt >= 2) return sample;
        note(`restore (${mode}) ${daemon}/${c.servers}: others used ${sample.otherCpu.toFixed(1)} s of CPU meanwhile; running it again`);
      }
    };

    // What a reconstructor costs before it does anything: a pass limited to a partition that
    // does not exist.
    const startup: Record<Daemon, Run[]> = { swift: [], fragmend: [] };
    first!.b.label = 'startup';
    await first!.b.quiet();
    for (let r = 0; r < 3; r++) {
      for (const d of ['swift', 'fragmend'] as const) startup[d].push(await first!.b.recon(d, 0, ['-p', '999999']));
    }

    // Object servers run for weeks; one just started (Node still compiling its hot paths, Python
    // still importing) is not what a rebuild meets. So each kind of server is started once,
    // warmed by FRAGMEND_BENCH_WARMUP unmeasured restores by its own daemon, and then serves all
    // of its rounds. (After one, fragmend's servers still spent a fifth of their CPU in V8's
    // optimizing compiler. Their CPU per restore at once fell from 1.9 s in the first to 1.2 s
    // by the tenth, and their restore from 1.64 s to 1.21 s; with three warm-ups, every
    // measured round was still faster than the one before.) Swift's cluster also runs one
    // unmeasured fragmend restore: on a node, the daemon's code cache has long since settled (as
    // Swift's .pyc files have), and the startup runs above never rebuilt anything.
    for (const c of clusters.values()) {
      note(`restore: warming ${c.servers} object servers with ${WARMUP} unmeasured restore(s)`);
      for (let w = 0; w < WARMUP; w++) await c.restoreOnce(c.servers, 'parallel');
      if (c.servers === 'swift') await c.restoreOnce('fragmend', 'parallel');
    }
    const kinds: Array<[Daemon, Servers, Mode]> = (
      [
        ['swift', 'swift', 'parallel'],
        ['fragmend', 'swift', 'parallel'],
        ['fragmend', 'fragmend', 'parallel'],
        ['swift', 'swift', 'sequential'],
        ['fragmend', 'swift', 'sequential'],
        ['fragmend', 'fragmend', 'sequential'],
      ] as Array<[Daemon, Servers, Mode]>
    ).filter(([, s]) => clusters.has(s));
    const samples: RestoreSample[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // each round takes every kind once, in an order rotated from round to round
      for (let k = 0; k < kinds.length; k++) {
        const [d, s, m] = kinds[(k + r) % kinds.length]!;
        samples.push(await restore(clusters.get(s)!, d, m));
      }
    }
    // The RSS part runs on one cluster, with Swift's object servers.
    const { sbx, b, written } = first!;
    await b.useServers('swift');

    // 4. Peak RSS: the archive of index 0 is lost; the node holding index 1 (whose left partner
    // is index 0) rebuilds it, alone, limited to that partition.
    const proxy2 = Number(new URL(await sbx.startProxy()).port);
    const bigBytes = BIG_MIB * MiB;
    const t1 = performance.now();
    written.set('big', await putStreaming(proxy2, 'restore', 'big', bigBytes, 4242));
    note(`rss: ${BIG_MIB} MiB object written in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    const small = keystream(77)(MiB);
    await putObject(proxy2, 'restore', 'small', small);
    written.set('small', md5(small));
    const MID_BYTES = 64 * MiB;
    if (BIG_MIB > 64) written.set('mid', await putStreaming(proxy2, 'restore', 'mid', MID_BYTES, 4343));
    await sbx.stopProxy();

    const rss: RssSample[] = [];
    const baseline: Record<Daemon, number[]> = { swift: [], fragmend: [] };
    const baselineCpu: Record<Daemon, number[]> = { swift: [], fragmend: [] };
    for (const [name, size] of [
      ['small', MiB],
      ...(BIG_MIB > 64 ? ([['mid', 64 * MiB]] as const) : []),
      ['big', bigBytes],
    ] as const) {
      const p = await sbx.diskfileOk<Placement>({ op: 'get_nodes', policy: 1, account: ACCOUNT, container: 'restore', object: name });
      const lost = p.primaries.find((n) => n.index === 0)!;
      const rebuilder = sbx.nodeOfDevice(p.primaries.find((n) => n.index === 1)!.device).index;
      const lostNode = sbx.nodeOfDevice(lost.device);
      const partDir = join(lostNode.devicesRoot, lost.device, 'objects-1', String(p.partition));
      const hashDir = join(partDir, p.hash.slice(-3), p.hash);
      const names = await readdir(hashDir);
      const dataName = names.find((f) => f.endsWith('.data'))!;
      const want = md5(await readFile(join(hashDir, dataName)));
      const archiveMiB = (await fsStat(join(hashDir, dataName))).size / MiB;
      for (let r = 0; r < ROUNDS; r++) {
        for (const d of r % 2 ? (['swift', 'fragmend'] as const) : (['fragmend', 'swift'] as const)) {
          await rm(hashDir, { recursive: true, force: true });
          // what Swift's auditor does after quarantining: the suffix is rehashed
          await appendFile(join(partDir, 'hashes.invalid'), `${p.hash.slice(-3)}\n`);
          b.label = `rebuild-${name}`;
          await b.quiet(60);
          const run = await b.recon(d, rebuilder, ['-p', String(p.partition)]);
          if (run.code !== 0) throw new Error(`${d} rebuild of ${name} exited ${run.code}:\n${run.out.slice(-3000)}`);
          const got = await readFile(join(hashDir, dataName)).catch(() => null);
          if (!got || md5(got) !== want) throw new Error(`${d} did not rebuild ${name}'s archive of index 0 byte-identical`);
          rss.push({ daemon: d, objectMiB: size / MiB, archiveMiB, maxRssMiB: run.maxRssKiB / 1024, wall: run.wall, cpu: cpu(run) });
          note(`rss: ${d} rebuilt ${name} (${archiveMiB.toFixed(1)} MiB archive) in ${run.wall.toFixed(2)} s, peak RSS ${(run.maxRssKiB / 1024).toFixed(1)} MiB`);
          if (name === 'big') {
            // the same process with nothing to rebuild: the floor the rebuild adds to
            b.label = 'rebuild-nothing';
            const idle = await b.recon(d, rebuilder, ['-p', String(p.partition)]);
            baseline[d].push(idle.maxRssKiB / 1024);
            baselineCpu[d].push(cpu(idle));
          }
        }
      }
    }

    // Everything written reads back through the real proxy after all those restores.
    const proxy3 = Number(new URL(await sbx.startProxy()).port);
    for (const [o, want] of written) {
      const got = await getMd5(proxy3, 'restore', o);
      if (got !== want) throw new Error(`${o} reads back with md5 ${got}, wrote ${want}`);
    }
    note(`restore: all ${written.size} objects read back intact through the proxy`);
    for (const c of rest) {
      await c.b.useServers('swift');
      const port = Number(new URL(await c.sbx.startProxy()).port);
      for (const [o, want] of c.written) {
        const got = await getMd5(port, 'restore', o);
        if (got !== want) throw new Error(`${o} reads back with md5 ${got} from the ${c.servers} cluster, wrote ${want}`);
      }
      note(`restore: all ${c.written.size} objects of the ${c.servers} cluster read back intact through the proxy`);
    }
    return { samples, startup, rss, baseline, baselineCpu, lostFiles: first!.lostFiles, lostMiB: first!.lostMiB, dataSetMiB: first!.totalMiB, objects: first!.objects };
  } finally {
    for (const b of benches) await b.cleanup();
  }
}

function getMd5(port: number, c: string, o: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('md5');
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: `/v1/${ACCOUNT}/${c}/${o}`, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${c}/${o}: ${res.statusCode}`));
        return;
      }
      res.on('data', (d: Buffer) => h.update(d));
      res.on('end', () => resolve(h.digest('hex')));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// ------------------------------------------------------------------ 3: the no-op pass

interface NoopSample {
  daemon: Daemon;
  servers: 'swift' | 'fragmend';
  parts: number;
  seconds: number;
  wall: number;
  cpu: number;
  /** CPU seconds of the object servers during the pass */
  serverCpu: number;
  otherCpu: number;
  stealCpu: number;
  disturbed?: boolean;
}

async function noopBench() {
  note(`no-op: creating an 8-node cluster with a part power ${NOOP_PART_POWER} ring`);
  const sbx = await SwiftSandbox.create({ objectNodes: NODES, policies: POLICIES, partPower: NOOP_PART_POWER, objectConf: OBJECT_CONF, keep: KEEP });
  const b = new Bench(sbx);
  try {
    await sbx.startAll();
    const proxy = Number(new URL(await sbx.startProxy()).port);
    await putContainer(proxy, 'noop');
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        while (next < NOOP_OBJECTS) {
          const i = next++;
          await putObject(proxy, 'noop', `n${i}`, keystream(100_000 + i)(100 + (i % 4000)));
        }
      }),
    );
    note(`no-op: ${NOOP_OBJECTS} objects written through the proxy in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await sbx.stopProxy();
    // Brings every partition's hashes.pkl up to date and the nodes in sync.
    for (let w = 0; w < 2; w++) {
      const warm = await Promise.all([...Array(NODES).keys()].map((i) => b.recon('swift', i)));
      if (warm.some((r) => r.code !== 0)) throw new Error(`warm-up pass failed:\n${warm.map((r) => r.out.slice(-1500)).join('\n')}`);
    }
    const nodes = [...Array(NODES).keys()].filter((i) => i % Math.max(1, Math.floor(NODES / NOOP_NODES)) === 0).slice(0, NOOP_NODES);
    const occupied = await Promise.all(nodes.map(async (i) => (await readdir(join(sbx.node(i).devicesRoot, sbx.node(i).devices[0]!, 'objects-1'))).filter((n) => /^\d+$/.test(n)).length));

    const passOnce = async (daemon: Daemon, servers: 'swift' | 'fragmend'): Promise<NoopSample> => {
      await b.useServers(servers);
      await b.quiet();
      b.label = `noop-${servers}-servers`;
      let parts = 0;
      let seconds = 0;
      let wall = 0;
      let c = 0;
      const perf = await startPerf(b.label, daemon);
      const c0 = b.serversCpu();
      const m0 = machineCpu();
      for (const i of nodes) {
        const r = await b.recon(daemon, i);
        if (r.code !== 0) throw new Error(`${daemon} no-op pass on node ${i} exited ${r.code}:\n${r.out.slice(-3000)}`);
        const s = passStats(r.out);
        if (!s) throw new Error(`${daemon} logged no stats line on node ${i}:\n${r.out.slice(-3000)}`);
        if (/ssync completed ok|"objectsRebuilt":[1-9]|Removing partition/.test(r.out)) note(`no-op: ${daemon} on node ${i} did some work: the cluster was not in sync`);
        parts += s.total;
        seconds += s.seconds;
        wall += r.wall;
        c += cpu(r);
      }
      const m1 = machineCpu();
      const serverCpu = b.serversCpu() - c0;
      await perf?.stop();
      const otherCpu = m1.busy - m0.busy - serverCpu - c;
      const sample = { daemon, servers, parts, seconds, wall, cpu: c, serverCpu, otherCpu, stealCpu: m1.steal - m0.steal };
      note(`no-op: ${daemon} reconstructor, ${servers} servers: ${parts} partitions in ${seconds.toFixed(2)} s in-pass (${wall.toFixed(2)} s process wall, ${c.toFixed(2)} s CPU)`);
      return sample;
    };

    const pass = async (daemon: Daemon, servers: 'swift' | 'fragmend'): Promise<NoopSample> => {
      for (let attempt = 0; ; attempt++) {
        const sample = await passOnce(daemon, servers);
        sample.disturbed = sample.otherCpu > DISTURBED_SHARE * sample.wall;
        if (!sample.disturbed || attempt >= 2) return sample;
        note(`no-op ${daemon}/${servers}: others used ${sample.otherCpu.toFixed(1)} s of CPU meanwhile; running it again`);
      }
    };

    const samples: NoopSample[] = [];
    // as for the restore: each kind of server started once and warmed by one unmeasured pass
    const blocks: Array<['swift' | 'fragmend', Daemon[]]> = [
      ['swift', ['swift', 'fragmend']],
      ['fragmend', ['fragmend']],
    ];
    for (const [servers, daemons] of blocks) {
      await b.useServers(servers);
      note(`no-op: warming ${servers} object servers with one unmeasured pass`);
      await passOnce(servers, servers);
      for (let r = 0; r < ROUNDS; r++) {
        for (let k = 0; k < daemons.length; k++) samples.push(await pass(daemons[(k + r) % daemons.length]!, servers));
      }
    }
    return { samples, nodes, occupied, partitionsPerNode: 1024 * 6 / NODES };
  } finally {
    await b.cleanup();
  }
}

// ------------------------------------------------------------------ report

/** The results of a part not run (FRAGMEND_BENCH_ONLY). */
function noRestore(): Awaited<ReturnType<typeof restoreBench>> {
  return { samples: [], startup: { swift: [], fragmend: [] }, rss: [], baseline: { swift: [], fragmend: [] }, baselineCpu: { swift: [], fragmend: [] }, lostFiles: 0, lostMiB: NaN, dataSetMiB: NaN, objects: 0 };
}
function noNoop(): Awaited<ReturnType<typeof noopBench>> {
  return { samples: [], nodes: [], occupied: [], partitionsPerNode: 1024 * 6 / NODES };
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const spread = (s: Stat, d = 2) => `${f(s.median, d)} [${f(s.min, d)}–${f(s.max, d)}]`;

/** What the fragmend build was made from, noted when it was made. */
function fragmendSource(): string {
  const git = (...a: string[]) => spawnSync('git', a, { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  if (REV) return `src/ of ${REV} (${revSha.slice(0, 7)})`;
  const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
  return `working tree at ${git('rev-parse', '--short', 'HEAD')}${dirty ? ` with ${dirty} modified file(s) under src/` : ''}`;
}

function machine(loadAtStart: number[], builtFrom: string) {
  const cpus = os.cpus();
  const swift = spawnSync(PYTHON, ['-c', 'import swift; print(swift.__version__)'], { encoding: 'utf8' }).stdout.trim();
  const loadavg = os.loadavg();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    swift,
    fragmend: builtFrom,
    loadavgAtStart: loadAtStart.map((x) => Number(x.toFixed(2))),
    loadavgAtEnd: loadavg.map((x) => Number(x.toFixed(2))),
  };
}

function report(m: ReturnType<typeof machine>, restore: Awaited<ReturnType<typeof restoreBench>>, noop: Awaited<ReturnType<typeof noopBench>>) {
  // a sample others disturbed even after the retries counts only when there is no clean one
  const clean = <T extends { disturbed?: boolean }>(xs: T[]) => (xs.some((x) => !x.disturbed) ? xs.filter((x) => !x.disturbed) : xs);
  const pick = (d: Daemon, s: 'swift' | 'fragmend', mode: Mode) => clean(restore.samples.filter((x) => x.daemon === d && x.servers === s && x.mode === mode));
  const wall = (xs: RestoreSample[]) => stat(xs.map((x) => x.wall));
  const rate = (xs: RestoreSample[]) => stat(xs.map((x) => x.restoredMiB / x.wall));
  const rcpu = (xs: RestoreSample[]) => stat(xs.map((x) => x.cpu));
  const cpuPerMiB = (xs: RestoreSample[]) => stat(xs.map((x) => x.cpu / x.restoredMiB));
  const scpu = (xs: RestoreSample[]) => stat(xs.map((x) => x.serverCpu));
  const inPass = (xs: RestoreSample[]) => stat(xs.map((x) => x.passMax));
  const npick = (d: Daemon, s: 'swift' | 'fragmend') => clean(noop.samples.filter((x) => x.daemon === d && x.servers === s));
  const per1000 = (xs: NoopSample[]) => stat(xs.map((x) => (x.seconds / x.parts) * 1000));
  const nwall = (xs: NoopSample[]) => stat(xs.map((x) => (x.wall / x.parts) * 1000));
  const ncpu = (xs: NoopSample[]) => stat(xs.map((x) => (x.cpu / x.parts) * 1000));
  const su = (d: Daemon) => stat(restore.startup[d].map(cpu));
  const suw = (d: Daemon) => stat(restore.startup[d].map((r) => r.wall));
  const bigRuns = (d: Daemon) => restore.rss.filter((x) => x.daemon === d && x.objectMiB === BIG_MIB);
  const rssOf = (d: Daemon, mib: number) => stat(restore.rss.filter((x) => x.daemon === d && x.objectMiB === mib).map((x) => x.maxRssMiB));
  const rebuildRate = (d: Daemon) => stat(bigRuns(d).map((x) => x.archiveMiB / x.wall));
  // the rebuild run's CPU less the same run with nothing to rebuild: what the bytes cost
  const marginal = (d: Daemon) => stat(bigRuns(d).map((x) => (x.cpu - median(restore.baselineCpu[d])) / x.archiveMiB));
  const bigArchive = bigRuns('fragmend')[0]?.archiveMiB ?? NaN;

  const speed = (swift: Stat, ours: Stat) => swift.median / ours.median;
  const rows: Array<{ what: string; swift: string; fragmend: string; ratio: string; target: string; met: boolean | null }> = [];
  const add = (what: string, a: string, b: string, ratio: number | null, target: string, met: boolean | null) =>
    rows.push({ what, swift: a, fragmend: b, ratio: ratio === null ? '' : `${f(ratio)}×`, target, met });

  for (const mode of ['parallel', 'sequential'] as const) {
    const sw = pick('swift', 'swift', mode);
    const fr = pick('fragmend', 'swift', mode);
    const ff = pick('fragmend', 'fragmend', mode);
    const tag = `restore (${mode})`;
    add(`${tag}, Swift servers: wall s`, spread(wall(sw)), spread(wall(fr)), speed(wall(sw), wall(fr)), '≥ 2× faster', speed(wall(sw), wall(fr)) >= 2);
    add(`${tag}, Swift servers: MiB/s restored`, spread(rate(sw)), spread(rate(fr)), rate(fr).median / rate(sw).median, '', null);
    add(`${tag}, Swift servers: reconstructor CPU s`, spread(rcpu(sw)), spread(rcpu(fr)), speed(rcpu(sw), rcpu(fr)), '', null);
    add(`${tag}, Swift servers: reconstructor CPU s per MiB`, spread(cpuPerMiB(sw), 3), spread(cpuPerMiB(fr), 3), speed(cpuPerMiB(sw), cpuPerMiB(fr)), '≤ 1/5 of Swift (≥ 5×)', speed(cpuPerMiB(sw), cpuPerMiB(fr)) >= 5);
    add(`${tag}, Swift servers: longest in-pass s of one process`, spread(inPass(sw)), spread(inPass(fr)), speed(inPass(sw), inPass(fr)), '', null);
    add(`${tag}, Swift servers: object-server CPU s`, spread(scpu(sw)), spread(scpu(fr)), null, '(same servers)', null);
    add(`${tag}: all-fragmend vs all-Swift: wall s`, spread(wall(sw)), spread(wall(ff)), speed(wall(sw), wall(ff)), '≥ 5× faster', speed(wall(sw), wall(ff)) >= 5);
    add(`${tag}: all-fragmend vs all-Swift: object-server CPU s`, spread(scpu(sw)), spread(scpu(ff)), speed(scpu(sw), scpu(ff)), '', null);
  }
  add('reconstructor start-up: CPU s per process', spread(su('swift')), spread(su('fragmend')), speed(su('swift'), su('fragmend')), '', null);
  add('reconstructor start-up: wall s per process', spread(suw('swift')), spread(suw('fragmend')), speed(suw('swift'), suw('fragmend')), '', null);
  add(`rebuild of one ${f(bigArchive, 0)} MiB archive: MiB/s`, spread(rebuildRate('swift'), 1), spread(rebuildRate('fragmend'), 1), rebuildRate('fragmend').median / rebuildRate('swift').median, '', null);
  add(`rebuild of one ${f(bigArchive, 0)} MiB archive: CPU s per MiB beyond an idle pass`, spread(marginal('swift'), 4), spread(marginal('fragmend'), 4), speed(marginal('swift'), marginal('fragmend')), '(per-byte part of the CPU target)', null);
  const nS = per1000(npick('swift', 'swift'));
  const nF = per1000(npick('fragmend', 'swift'));
  const nFF = per1000(npick('fragmend', 'fragmend'));
  add('no-op pass, Swift servers: s per 1000 partitions (in pass)', spread(nS, 3), spread(nF, 3), speed(nS, nF), '≥ 3× faster', speed(nS, nF) >= 3);
  add('no-op pass, all-fragmend: s per 1000 partitions (in pass)', spread(nS, 3), spread(nFF, 3), speed(nS, nFF), '(beyond target)', null);
  add('no-op pass, Swift servers: process wall s per 1000 partitions', spread(nwall(npick('swift', 'swift')), 3), spread(nwall(npick('fragmend', 'swift')), 3), speed(nwall(npick('swift', 'swift')), nwall(npick('fragmend', 'swift'))), '', null);
  add('no-op pass, Swift servers: CPU s per 1000 partitions', spread(ncpu(npick('swift', 'swift')), 3), spread(ncpu(npick('fragmend', 'swift')), 3), speed(ncpu(npick('swift', 'swift')), ncpu(npick('fragmend', 'swift'))), '', null);
  const nscpu = (xs: NoopSample[]) => stat(xs.map((x) => (x.serverCpu / x.parts) * 1000));
  add('no-op pass, Swift servers: object-server CPU s per 1000 partitions', spread(nscpu(npick('swift', 'swift')), 3), spread(nscpu(npick('fragmend', 'swift')), 3), null, '(same servers)', null);
  const r1 = rssOf('fragmend', 1);
  const rBig = rssOf('fragmend', BIG_MIB);
  const flat = rBig.max <= r1.median * 1.2;
  add(`peak RSS MiB, rebuilding a 1 MiB object`, spread(rssOf('swift', 1), 1), spread(r1, 1), null, '', null);
  if (BIG_MIB > 64) add('peak RSS MiB, rebuilding a 64 MiB object', spread(rssOf('swift', 64), 1), spread(rssOf('fragmend', 64), 1), null, '', null);
  add(`peak RSS MiB, rebuilding a ${BIG_MIB} MiB object`, spread(rssOf('swift', BIG_MIB), 1), spread(rBig, 1), null, `fragmend ${BIG_MIB} MiB ≤ 1.2 × its 1 MiB`, flat);
  add('peak RSS MiB, same process with nothing to rebuild', spread(stat(restore.baseline.swift), 1), spread(stat(restore.baseline.fragmend), 1), null, '', null);

  const head = [
    `fragmend reconstructor vs swift-object-reconstructor ${m.swift}`,
    `fragmend: ${m.fragmend}`,
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}; load average ${m.loadavgAtStart.join(' ')} at the start, ${m.loadavgAtEnd.join(' ')} at the end`,
    `cluster: ${NODES} object nodes on loopback, 1 device each, EC 4+2 liberasurecode_rs_vand, 1 MiB segments, concurrency 1, log_level INFO`,
    `environment: fragmend's processes run without NODE_EXTRA_CA_CERTS${env.NODE_EXTRA_CA_CERTS ? ' (set here: Node would parse that bundle at every start)' : ''}; Swift's do not read it`,
    `restore: ${restore.objects} objects (${f(restore.dataSetMiB, 1)} MiB) written through the real proxy to each cluster's own object servers, part power 6; device d${VICTIM} wiped (${restore.lostFiles} fragment archives, ${f(restore.lostMiB, 1)} MiB),`,
    `  then the reconstructor --once on the 7 other nodes until every lost file is back byte-identical (md5 + metadata); parallel: all 7 at once,`,
    `  as in a cluster; sequential: one node after another, so no daemon competes with another for the cores; ${ROUNDS} rounds, order rotated`,
    `no-op: part power ${NOOP_PART_POWER} (1024 partitions, ${noop.partitionsPerNode} per node), ${NOOP_OBJECTS} objects; timed nodes ${noop.nodes.join(', ')} hold ${noop.occupied.join(', ')} partition dirs;`,
    `  seconds from each daemon's own end-of-pass stats line ("N/M partitions reconstructed in Xs"), summed over the timed nodes, run one after another`,
    `rss: index 0's archive of one object lost, the node of index 1 rebuilds it with -p <partition>; /usr/bin/time's maximum resident set size`,
    `shared machine: each round starts once others use < ${QUIET_CPU * 100}% of a core; a round during which others used > ${DISTURBED_SHARE * 100}% of a core is run again (twice at most);`,
    `  still disturbed after that: ${restore.samples.filter((x) => x.disturbed).length} of ${restore.samples.length} restore rounds, ${noop.samples.filter((x) => x.disturbed).length} of ${noop.samples.length} no-op passes`,
    `cells: median [min–max] over ${ROUNDS} runs (a disturbed one left out); ratio = how many times better fragmend is (Swift / fragmend, or fragmend / Swift for MiB/s)`,
  ];
  const cols = ['', 'swift-object-reconstructor', 'fragmend', 'ratio', 'target', 'met'];
  const table = rows.map((r) => [r.what, r.swift, r.fragmend, r.ratio, r.target, r.met === null ? '' : r.met ? 'yes' : 'NO']);
  const widths = cols.map((c, i) => Math.max(c.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const text = [
    ...head,
    '',
    line(cols),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...table.map(line),
    '',
    'restore rounds (mode daemon/servers: wall s, passes, reconstructor CPU s, object-server CPU s; longest in-pass s of one process;',
    '  "other": machine CPU used by anything else during the round, "steal": CPU the hypervisor gave elsewhere — both disturbances):',
    ...restore.samples.map(
      (s) =>
        `  ${s.mode} ${s.daemon}/${s.servers}: ${f(s.wall)} s, ${s.passes} pass(es), ${f(s.cpu)} s, ${f(s.serverCpu)} s; longest in-pass ${f(s.passMax)} s, peak RSS ${f(s.maxRssMiB, 1)} MiB, other ${f(s.otherCpu)} s, steal ${f(s.stealCpu)} s${s.disturbed ? ' DISTURBED' : ''}`,
    ),
    'no-op passes (daemon/servers: partitions, in-pass s, process wall s, reconstructor CPU s, object-server CPU s; other, steal):',
    ...noop.samples.map((s) => `  ${s.daemon}/${s.servers}: ${s.parts}, ${f(s.seconds)} s, ${f(s.wall)} s, ${f(s.cpu)} s, ${f(s.serverCpu)} s; other ${f(s.otherCpu)} s, steal ${f(s.stealCpu)} s${s.disturbed ? ' DISTURBED' : ''}`),
  ].join('\n');
  const json = {
    machine: m,
    settings: { rounds: ROUNDS, warmup: WARMUP, nodes: NODES, victim: VICTIM, restoreObjects: restore.objects, dataSetMiB: restore.dataSetMiB, noopObjects: NOOP_OBJECTS, noopPartPower: NOOP_PART_POWER, bigMiB: BIG_MIB },
    rows,
    restore,
    noop,
  };
  return { text, json };
}

// ------------------------------------------------------------------ the run

const problem = realSwiftProblem();

it.skipIf(!!problem)('fragmend reconstructor vs swift-object-reconstructor', async () => {
  for (const tool of ['/usr/bin/time']) {
    if (spawnSync(tool, ['--version']).error) throw new Error(`${tool} is needed for child rusage (apt-get install -y time)`);
  }
  const loadAtStart = os.loadavg();
  note(`building fragmend from ${REV ? `src/ of ${REV}` : 'the working tree'} into ${BUILD}`);
  buildFragmend();
  const builtFrom = fragmendSource();
  if (CPU_PROF) await mkdir(CPU_PROF, { recursive: true });
  if (PERF) await mkdir(PERF, { recursive: true });
  const restore = ONLY === 'noop' ? noRestore() : await restoreBench();
  const noop = ONLY === 'restore' ? noNoop() : await noopBench();
  const { text, json } = report(machine(loadAtStart, builtFrom), restore, noop);
  writeSync(1, JSON_OUT ? `${JSON.stringify(json, null, 2)}\n` : `\n${text}\n`);
});

if (problem) note(`skipped: real Swift cannot run here: ${problem}`);

