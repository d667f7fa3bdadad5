#!/usr/bin/env node
// Codec benchmark: fragmend against its peers, measured in one run with rounds interleaved so
// that every codec sees the same machine state. Medians (min–max) in GB/s of segment data.
//
//   npm run bench [-- --rounds 5 --seconds 0.15 --clock cpu|wall --json
//                    --sections driver,raw,pool,stream --shapes 4+2,8+4,10+4
//                    --segments 65536,1048576 --ops encode,rebuild1,rebuildm,decode]
//
// Peers, each measured here or reported as unavailable:
//   PyECLib (Debian's /usr/bin/python3 and python3-pyeclib, liberasurecode 1.6.2), all backends;
//   raw ISA-L (bench/isal/isal_bench.c built now against libisal-dev), its SSE path forced and
//   its own dispatch; @ronomon/reed-solomon (native addon, installed on first use into
//   node_modules/.cache because it must compile); @digitaldefiance/reed-solomon-erasure.wasm.
//
// The default clock is process CPU time: this machine is shared, and time a process spends
// descheduled is not the codec's. Single-threaded cells are the same either way on an idle
// machine; the worker-pool cells always use wall time.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// Node 20 validates relaxed SIMD only behind this flag (Node 22 and browsers need none), so
// the relaxed build is measured beside the standard one in this same process.
setFlagsFromString('--experimental-wasm-relaxed-simd');
// ronomon runs on libuv's pool: one thread, so that it too is measured on one core.
process.env.UV_THREADPOOL_SIZE = '1';

const root = fileURLToPath(new URL('..', import.meta.url));
const cache = join(root, 'node_modules', '.cache', 'fragmend-bench');
const codec = await import('../dist/codec/index.js');
const { ECDriver, ReedSolomon, CodecPool, encodeArchives, rebuildArchive, relaxedSimdSupported, setValidator } = codec;
setValidator(null);

// ------------------------------------------------------------------ options

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const ROUNDS = Number(opt('rounds', 5));
const SECONDS = Number(opt('seconds', 0.15));
const CLOCK = opt('clock', 'cpu');
const JSON_OUT = args.includes('--json');
const SECTIONS = opt('sections', 'driver,raw,pool,stream').split(',');
const BACKENDS = opt('backends', 'liberasurecode_rs_vand,isa_l_rs_vand').split(',');
const RAW_MATRICES = opt('matrices', 'isa_l_rs_cauchy,isa_l_rs_vand').split(',');
const SHAPES = opt('shapes', '4+2,8+4,10+4').split(',').map((s) => s.split('+').map(Number));
const SEGMENTS = opt('segments', '65536,1048576').split(',').map(Number);
const OPS = opt('ops', 'encode,rebuild1,rebuildm,decode').split(',');
const POOL_SEGMENTS = Number(opt('pool-segments', 48));
const log = (s) => JSON_OUT || process.stderr.write(s + '\n');

// ------------------------------------------------------------------ timing

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const clockNow = CLOCK === 'cpu' ? cpuSeconds : () => performance.now() / 1000;

/** GB/s of `bytes` per call of fn, over about SECONDS of the chosen clock. */
function timeLoop(fn, bytes, seconds = SECONDS) {
  fn();
  let iters = 0;
  const start = clockNow();
  let now;
  do {
    fn();
    iters++;
    now = clockNow();
  } while (now - start < seconds);
  return (bytes * iters) / (now - start) / 1e9;
}

/** The same for an async fn, with `inflight` calls kept going at once. */
async function timeAsync(fn, bytes, inflight = 1, seconds = SECONDS, clock = clockNow) {
  await fn();
  let iters = 0;
  const start = clock();
  let now = start;
  const lane = async () => {
    while (clock() - start < seconds) {
      await fn();
      iters++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  now = clock();
  return (bytes * iters) / (now - start) / 1e9;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs) => (xs?.length ? `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})` : '—');
const ratio = (a, b) => (a?.length && b?.length ? median(a) / median(b) : null);
const fmtRatio = (r) => (r === null || !Number.isFinite(r) ? '—' : `${r.toFixed(2)}×`);
const segName = (s) => (s >= 1 << 20 ? `${s >> 20} MiB` : `${s >> 10} KiB`);
const shardLen = (segment, k) => Math.ceil(segment / k / 64) * 64;

// ------------------------------------------------------------------ peers

const peers = { notes: {} };

function startPython() {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) {
    peers.notes.pyeclib = `${py} not found`;
    return null;
  }
  const proc = spawn(py, [fileURLToPath(new URL('./pyeclib_bench.py', import.meta.url))], { stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting = [];
  let first = true;
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const ready = new Promise((resolve) => {
    createInterface({ input: proc.stdout }).on('line', (l) => {
      const msg = JSON.parse(l);
      if (first) {
        first = false;
        resolve(msg);
      } else waiting.shift()?.(msg);
    });
    proc.on('exit', () => {
      resolve({ unavailable: stderr.trim().split('\n').pop() || 'python exited' });
      for (const w of waiting.splice(0)) w({ error: 'python exited' });
    });
    proc.on('error', (e) => resolve({ unavailable: e.message }));
  });
  return {
    ready,
    run: (req) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        proc.stdin.write(JSON.stringify({ ...req, clock: CLOCK }) + '\n');
      }),
    close: () => proc.stdin.end(),
  };
}

function buildIsal() {
  const src = fileURLToPath(new URL('./isal/isal_bench.c', import.meta.url));
  const bin = join(cache, 'isal_bench');
  if (!existsSync('/usr/include/isa-l/erasure_code.h')) {
    peers.notes.isal = 'not measured: ISA-L headers missing (apt-get install libisal-dev)';
    return null;
  }
  mkdirSync(cache, { recursive: true });
  const r = spawnSync('gcc', ['-O2', '-o', bin, src, '-lisal'], { encoding: 'utf8' });
  if (r.status !== 0) {
    peers.notes.isal = `not measured: gcc failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`;
    return null;
  }
  const proc = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  createInterface({ input: proc.stdout }).on('line', (l) => waiting.shift()?.(l));
  return {
    run: (path, matrix, k, m, segment, op) =>
      new Promise((resolve) => {
        waiting.push((line) => resolve(line.startsWith('error') ? null : Number(line.split(' ')[0])));
        proc.stdin.write(`${path} ${matrix} ${k} ${m} ${segment} ${shardLen(segment, k)} ${op} ${SECONDS} ${CLOCK}\n`);
      }),
    close: () => proc.stdin.end(),
  };
}

/** @ronomon/reed-solomon compiles at install, so it lives in a cache dir, not in package.json. */
function loadRonomon() {
  const dir = join(cache, 'peers');
  const req = createRequire(join(dir, 'package.json'));
  const tryLoad = () => {
    try {
      return req('@ronomon/reed-solomon');
    } catch {
      return null;
    }
  };
  let mod = tryLoad();
  if (mod) return mod;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'fragmend-bench-peers', private: true, allowScripts: { '@ronomon/reed-solomon': true } }, null, 2),
  );
  log('installing @ronomon/reed-solomon (native addon) into node_modules/.cache/fragmend-bench/peers ...');
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '@ronomon/reed-solomon@6.0.0'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 300_000,
  });
  mod = tryLoad();
  if (!mod) {
    const why = (r.stderr || r.stdout || r.error?.message || '').trim().split('\n').filter(Boolean).slice(-1)[0];
    peers.notes.ronomon = `not measured: the addon did not install or build here (${why ?? 'no output'})`;
  }
  return mod;
}

async function loadDigitalDefiance() {
  try {
    const mod = await import('@digitaldefiance/reed-solomon-erasure.wasm');
    const RS = mod.ReedSolomonErasure ?? mod.default;
    const req = createRequire(import.meta.url);
    const wasm = join(dirname(req.resolve('@digitaldefiance/reed-solomon-erasure.wasm')), 'reed_solomon_erasure_bg.wasm');
    return RS.fromBytes(readFileSync(wasm));
  } catch (e) {
    peers.notes.digitaldefiance = `not measured: ${e.message}`;
    return null;
  }
}

// ------------------------------------------------------------------ machine

function machineInfo() {
  const flags = (() => {
    try {
      const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
      const have = new Set(line.split(':')[1].trim().split(/\s+/));
      return ['ssse3', 'sse4_2', 'avx', 'avx2', 'avx512bw', 'avx512vbmi', 'gfni'].filter((f) => have.has(f)).join(' ');
    } catch {
      return '';
    }
  })();
  const dpkg = (pkg) => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return null;
    }
  };
  const gcc = (() => {
    try {
      return execFileSync('gcc', ['-dumpfullversion'], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  })();
  return {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    simdFlags: flags,
    os: release(),
    node: process.version,
    v8: process.versions.v8,
    relaxedSimd: relaxedSimdSupported() ? 'validated (flag set by the bench on Node 20)' : 'not available',
    libisal: dpkg('libisal2'),
    liberasurecode: dpkg('liberasurecode1'),
    pyeclibDeb: dpkg('python3-pyeclib'),
    gcc,
    clock: CLOCK === 'cpu' ? 'process CPU time' : 'wall time',
    rounds: ROUNDS,
    secondsPerSample: SECONDS,
    loadavgStart: loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

// ------------------------------------------------------------------ cells

const fill = (n) => new Uint8Array(randomBytes(n));
const drivers = new Map();
async function driverCase(ecType, k, m, segment, kernels) {
  const key = `${ecType}/${k}/${m}/${segment}/${kernels}`;
  if (!drivers.has(key)) {
    const ec = await ECDriver.create({ ecType, k, m, kernels });
    const data = fill(segment);
    const frags = ec.encode(data);
    // Zero-copy: the segment and the survivors already in wasm memory, results as views.
    const set = ec.createFragmentSet(segment);
    set.segment.set(data);
    const held = ec.createFragmentSet(segment);
    ec.encodeInto(data, held);
    const out = ec.createFragmentSet(segment);
    drivers.set(key, { ec, data, frags, set, held, out });
  }
  return drivers.get(key);
}

function driverFn(c, op, m, zeroCopy) {
  const { ec, data, frags, set, held, out } = c;
  if (!zeroCopy) {
    return {
      encode: () => ec.encode(data),
      decode: () => ec.decode(frags.slice(m)),
      rebuild1: () => ec.reconstruct(frags.slice(1), [0]),
      rebuildm: () => ec.reconstruct(frags.slice(m), [...Array(m).keys()]),
    }[op];
  }
  const len = data.length;
  return {
    encode: () => ec.encodeInto(set.segment.subarray(0, len), set),
    decode: () => ec.decodeInto(held.fragments().slice(m), out.segment),
    rebuild1: () => ec.reconstructInto(held.fragments().slice(1), [0], out),
    rebuildm: () => ec.reconstructInto(held.fragments().slice(m), [...Array(m).keys()], out),
  }[op];
}

const rsCases = new Map();
async function rsCase(matrix, k, m, segment, kernels) {
  const key = `${matrix}/${k}/${m}/${segment}/${kernels}`;
  if (!rsCases.has(key)) {
    const rs = await ReedSolomon.create({ k, m, matrix, kernels });
    const len = shardLen(segment, k);
    const data = Array.from({ length: k }, () => fill(len));
    const parity = rs.encode(data);
    const all = [...data, ...parity];
    const set = rs.createShardSet(len);
    set.shards.forEach((s, i) => s.set(all[i]));
    rsCases.set(key, { rs, data, all, set, len });
  }
  return rsCases.get(key);
}

function rsFn(c, op, m, zeroCopy) {
  const { rs, data, all, set } = c;
  const lost = op === 'rebuild1' ? [0] : [...Array(m).keys()];
  if (!zeroCopy) {
    const holed = all.map((s, i) => (lost.includes(i) ? null : s));
    return op === 'encode' ? () => rs.encode(data) : () => rs.reconstruct(holed);
  }
  return op === 'encode' ? () => rs.encodeInto(set.data, set.parity) : () => rs.reconstructInto(set.shards, lost);
}

function ronomonFn(mod, k, m, segment, op) {
  const len = shardLen(segment, k);
  const ctx = mod.create(k, m);
  const buffer = Buffer.from(randomBytes(len * k));
  const parity = Buffer.alloc(len * m);
  const all = (1 << (k + m)) - 1;
  const lost = op === 'encode' ? null : op === 'rebuild1' ? 1 : (1 << m) - 1;
  const targets = lost ?? ((1 << (k + m)) - 1) & ~((1 << k) - 1);
  const sources = lost ? all & ~lost : (1 << k) - 1;
  return () =>
    new Promise((resolve, reject) =>
      mod.encode(ctx, sources, targets, buffer, 0, len * k, parity, 0, len * m, (e) => (e ? reject(e) : resolve())),
    );
}

function ddFn(dd, k, m, segment, op) {
  const len = shardLen(segment, k);
  const shards = new Uint8Array(randomBytes(len * (k + m)));
  dd.encode(shards, k, m);
  const avail = Array.from({ length: k + m }, (_, i) => (op === 'rebuild1' ? i !== 0 : i >= m));
  return op === 'encode' ? () => dd.encode(shards, k, m) : () => dd.reconstruct(shards, k, m, avail);
}

// ------------------------------------------------------------------ main

const machine = machineInfo();
const relaxed = relaxedSimdSupported();
const py = SECTIONS.includes('driver') ? startPython() : null;
const pyInfo = py ? await py.ready : null;
if (pyInfo?.unavailable) peers.notes.pyeclib = `not measured: ${pyInfo.unavailable}`;
else if (pyInfo) Object.assign(machine, { pyeclib: pyInfo.pyeclib, python: pyInfo.python, liberasurecodeReported: pyInfo.liberasurecode });
const isal = SECTIONS.includes('raw') || SECTIONS.includes('driver') ? buildIsal() : null;
const ronomon = SECTIONS.includes('raw') ? loadRonomon() : null;
const dd = SECTIONS.includes('raw') ? await loadDigitalDefiance() : null;
if (!relaxed) peers.notes.relaxed = 'relaxed SIMD does not validate on this runtime: relaxed columns are empty';

const driverRows = new Map();
const rawRows = new Map();
const get = (map, key, init) => map.get(key) ?? (map.set(key, init()), map.get(key));
const push = (row, col, v) => v !== null && v !== undefined && Number.isFinite(v) && (row[col] ??= []).push(v);

for (let round = 0; round < ROUNDS; round++) {
  if (SECTIONS.includes('driver')) {
    for (const ecType of BACKENDS) {
      for (const [k, m] of SHAPES) {
        for (const segment of SEGMENTS) {
          for (const op of OPS) {
            const row = get(driverRows, `${ecType}|${k}+${m}|${segment}|${op}`, () => ({ ecType, k, m, segment, op }));
            const simd = await driverCase(ecType, k, m, segment, 'simd');
            push(row, 'simd', timeLoop(driverFn(simd, op, m, false), segment));
            push(row, 'simdZeroCopy', timeLoop(driverFn(simd, op, m, true), segment));
            if (relaxed) {
              const rc = await driverCase(ecType, k, m, segment, 'relaxed');
              push(row, 'relaxed', timeLoop(driverFn(rc, op, m, false), segment));
              push(row, 'relaxedZeroCopy', timeLoop(driverFn(rc, op, m, true), segment));
            }
            if (py && !pyInfo.unavailable) {
              const r = await py.run({ ec_type: ecType, k, m, segment, op, seconds: SECONDS });
              push(row, 'pyeclib', r.gbps);
            }
            if (isal && ecType === 'isa_l_rs_vand' && op !== 'decode') push(row, 'isalSse', await isal.run('sse', 'vand', k, m, segment, op));
          }
        }
      }
    }
  }
  if (SECTIONS.includes('raw')) {
    for (const matrix of RAW_MATRICES) {
      for (const [k, m] of SHAPES) {
        for (const segment of SEGMENTS) {
          for (const op of OPS.filter((o) => o !== 'decode')) {
            const row = get(rawRows, `${matrix}|${k}+${m}|${segment}|${op}`, () => ({ matrix, k, m, segment, op }));
            const sc = await rsCase(matrix, k, m, segment, 'simd');
            push(row, 'simd', timeLoop(rsFn(sc, op, m, false), segment));
            push(row, 'simdZeroCopy', timeLoop(rsFn(sc, op, m, true), segment));
            if (relaxed) push(row, 'relaxedZeroCopy', timeLoop(rsFn(await rsCase(matrix, k, m, segment, 'relaxed'), op, m, true), segment));
            const isalMatrix = matrix === 'isa_l_rs_cauchy' ? 'cauchy' : 'vand';
            if (isal) {
              push(row, 'isalSse', await isal.run('sse', isalMatrix, k, m, segment, op));
              push(row, 'isalBest', await isal.run('best', isalMatrix, k, m, segment, op));
            }
            // The JS peers have matrices of their own: measured once per shape, beside Cauchy.
            if (matrix === RAW_MATRICES[0]) {
              if (ronomon) push(row, 'ronomon', await timeAsync(ronomonFn(ronomon, k, m, segment, op), segment, 8));
              if (dd) push(row, 'digitaldefiance', timeLoop(ddFn(dd, k, m, segment, op), segment));
            }
          }
        }
      }
    }
  }
  log(`round ${round + 1}/${ROUNDS} done`);
}
py?.close();

// Worker pool: a multi-segment object, 1 worker against 2, wall time (threads run at once).
// "each": encodeEach / decodeEach, fragments handed over segment by segment in reused buffers
// (how a daemon writes them out); "arrays": every fragment returned in fresh memory.
const poolRows = [];
if (SECTIONS.includes('pool')) {
  for (const ecType of ['liberasurecode_rs_vand', 'isa_l_rs_vand']) {
    const k = 10;
    const m = 4;
    const segment = 1 << 20;
    const data = fill(POOL_SEGMENTS * segment);
    const ec = await ECDriver.create({ ecType, k, m, kernels: 'simd' });
    const segs = [];
    for (let at = 0; at < data.length; at += segment) segs.push(ec.encode(data.subarray(at, at + segment)));
    const survivors = segs.map((fs) => fs.slice(m));
    const set = ec.createFragmentSet(segment);
    const pools = {};
    for (const w of [1, 2]) pools[w] = await CodecPool.create({ ecType, k, m, workers: w, kernels: 'simd' });
    const wall = () => performance.now() / 1000;
    const sink = () => undefined;
    // The object in shared memory too: the pool then sends views of it and copies nothing.
    const shared = new Uint8Array(new SharedArrayBuffer(data.length));
    shared.set(data);
    const cells = {
      encode: { thread: [], arrays1: [], arrays2: [], each1: [], each2: [], shared1: [], shared2: [] },
      decode: { thread: [], arrays1: [], arrays2: [], each1: [], each2: [] },
    };
    const secs = SECONDS * 2;
    for (let round = 0; round < ROUNDS; round++) {
      cells.encode.thread.push(timeLoop(() => segs.forEach((_, s) => ec.encodeInto(data.subarray(s * segment, (s + 1) * segment), set)), data.length, secs));
      cells.decode.thread.push(timeLoop(() => survivors.forEach((f) => ec.decodeInto(f, set.segment)), data.length, secs));
      for (const w of [1, 2]) {
        cells.encode[`arrays${w}`].push(await timeAsync(() => pools[w].encode(data, segment), data.length, 1, secs, wall));
        cells.encode[`each${w}`].push(await timeAsync(() => pools[w].encodeEach(data, segment, sink), data.length, 1, secs, wall));
        cells.encode[`shared${w}`].push(await timeAsync(() => pools[w].encodeEach(shared, segment, sink), data.length, 1, secs, wall));
        cells.decode[`arrays${w}`].push(await timeAsync(() => pools[w].decodeSegments(survivors), data.length, 1, secs, wall));
        cells.decode[`each${w}`].push(await timeAsync(() => pools[w].decodeEach(survivors, sink), data.length, 1, secs, wall));
      }
    }
    for (const w of [1, 2]) await pools[w].close();
    for (const op of ['encode', 'decode']) poolRows.push({ ecType, k, m, segment, segments: POOL_SEGMENTS, op, ...cells[op] });
    set.dispose();
    ec.dispose();
  }
}

// Streaming: an object through encodeArchives (all archives read), and one archive rebuilt
// from k others, against ECDriver calls per segment on the same bytes.
const streamRows = [];
if (SECTIONS.includes('stream')) {
  const ecType = 'liberasurecode_rs_vand';
  const k = 10;
  const m = 4;
  const segment = 1 << 20;
  const size = 16 * segment + 12345;
  const data = fill(size);
  const ec = await ECDriver.create({ ecType, k, m, kernels: 'simd' });
  const chunks = function* () {
    for (let at = 0; at < data.length; at += 65536) yield data.subarray(at, at + 65536);
  };
  const drain = async (s) => {
    let n = 0;
    for await (const c of s) n += c.length;
    return n;
  };
  const archives = await Promise.all(
    encodeArchives(ec, chunks(), { segmentSize: segment }).map(async (s) => {
      const parts = [];
      for await (const c of s) parts.push(c);
      return Buffer.concat(parts);
    }),
  );
  const wall = () => performance.now() / 1000;
  const rows = { encodeArchives: [], perSegmentEncode: [], rebuildArchive: [], perSegmentReconstruct: [] };
  const fragsOf = (i) => {
    const out = [];
    for (let at = 0; at < archives[i].length; ) {
      const len = 80 + new DataView(archives[i].buffer, archives[i].byteOffset + at + 4, 4).getUint32(0, true);
      out.push(archives[i].subarray(at, at + len));
      at += len;
    }
    return out;
  };
  const perFrag = archives.map((_, i) => fragsOf(i));
  const src = (i) =>
    (function* () {
      for (let at = 0; at < archives[i].length; at += 65536) yield archives[i].subarray(at, at + 65536);
    })();
  for (let round = 0; round < ROUNDS; round++) {
    rows.encodeArchives.push(await timeAsync(() => Promise.all(encodeArchives(ec, chunks(), { segmentSize: segment }).map(drain)), size, 1, SECONDS * 2, wall));
    rows.perSegmentEncode.push(timeLoop(() => { for (let at = 0; at < size; at += segment) ec.encode(data.subarray(at, Math.min(at + segment, size))); }, size, SECONDS * 2));
    rows.rebuildArchive.push(
      await timeAsync(async () => { for await (const _ of rebuildArchive(ec, [...Array(k).keys()].map((i) => src(i + 1)), 0)); }, size, 1, SECONDS * 2, wall),
    );
    rows.perSegmentReconstruct.push(timeLoop(() => perFrag[0].forEach((_, s) => ec.reconstruct([...Array(k).keys()].map((i) => perFrag[i + 1][s]), [0])), size, SECONDS * 2));
  }
  streamRows.push({ ecType, k, m, segment, size, ...rows });
}

machine.loadavgEnd = loadavg().map((x) => x.toFixed(2)).join(' ');
isal?.close();

// ------------------------------------------------------------------ targets

const dr = (ecType, shape, segment, op) => driverRows.get(`${ecType}|${shape}|${segment}|${op}`);
const rr = (matrix, shape, segment, op) => rawRows.get(`${matrix}|${shape}|${segment}|${op}`);
const MiB = 1 << 20;
const targets = [];
const target = (name, value, goal, detail) => targets.push({ name, value, goal, met: value === null ? null : value >= goal, detail });
for (const shape of ['10+4', '4+2']) {
  for (const op of ['encode', 'rebuild1', 'rebuildm', 'decode']) {
    const r = dr('liberasurecode_rs_vand', shape, MiB, op);
    if (!r) continue;
    for (const [col, label] of [['simd', 'std SIMD'], ['simdZeroCopy', 'std SIMD, zero-copy'], ['relaxed', 'relaxed'], ['relaxedZeroCopy', 'relaxed, zero-copy']]) {
      if (r[col]) target(`liberasurecode_rs_vand ${shape} 1 MiB ${op}: fragmend (${label}) / PyECLib`, ratio(r[col], r.pyeclib), 8, `${fmt(r[col])} vs ${fmt(r.pyeclib)}`);
    }
  }
}
for (const op of ['encode', 'decode']) {
  const r = dr('isa_l_rs_vand', '10+4', MiB, op);
  if (!r) continue;
  const isalOp = op === 'decode' ? 'rebuildm' : 'encode';
  const sse = dr('isa_l_rs_vand', '10+4', MiB, isalOp)?.isalSse;
  for (const [col, label] of [['simd', 'std SIMD'], ['simdZeroCopy', 'std SIMD, zero-copy'], ['relaxedZeroCopy', 'relaxed, zero-copy']]) {
    if (!r[col]) continue;
    target(`isa_l_rs_vand 10+4 1 MiB ECDriver ${op}: fragmend (${label}) / PyECLib`, ratio(r[col], r.pyeclib), 1, `${fmt(r[col])} vs ${fmt(r.pyeclib)}`);
    target(`isa_l_rs_vand 10+4 1 MiB ECDriver ${op}: fragmend (${label}) / raw ISA-L SSE`, ratio(r[col], sse), 0.6, `${fmt(r[col])} vs ${fmt(sse)}`);
  }
}
for (const matrix of RAW_MATRICES) {
  const r = rr(matrix, '10+4', MiB, 'encode');
  if (!r) continue;
  target(`raw ReedSolomon ${matrix} 10+4 1 MiB encode, zero-copy std SIMD / raw ISA-L SSE`, ratio(r.simdZeroCopy, r.isalSse), 0.7, `${fmt(r.simdZeroCopy)} vs ${fmt(r.isalSse)}`);
  if (r.relaxedZeroCopy) target(`raw ReedSolomon ${matrix} 10+4 1 MiB encode, zero-copy relaxed / raw ISA-L SSE`, ratio(r.relaxedZeroCopy, r.isalSse), 0.9, `${fmt(r.relaxedZeroCopy)} vs ${fmt(r.isalSse)}`);
}
for (const ecType of BACKENDS) {
  for (const shape of ['10+4', '4+2']) {
    const small = dr(ecType, shape, 65536, 'decode');
    const big = dr(ecType, shape, MiB, 'decode');
    if (small && big) target(`${ecType} ${shape} decode per byte, 64 KiB / 1 MiB (std SIMD)`, ratio(small.simd, big.simd), 0.8, `${fmt(small.simd)} vs ${fmt(big.simd)}`);
  }
}
for (const r of poolRows) {
  target(`pool ${r.ecType} ${r.k}+${r.m} ${r.op}Each, ${r.segments} × 1 MiB: 2 workers / 1 worker`, ratio(r.each2, r.each1), 1.7, `${fmt(r.each2)} vs ${fmt(r.each1)}`);
  if (r.shared1?.length) target(`pool ${r.ecType} ${r.k}+${r.m} ${r.op}Each, object in a SharedArrayBuffer: 2 workers / 1 worker`, ratio(r.shared2, r.shared1), 1.7, `${fmt(r.shared2)} vs ${fmt(r.shared1)}`);
  target(`pool ${r.ecType} ${r.k}+${r.m} ${r.op} (arrays), ${r.segments} × 1 MiB: 2 workers / 1 worker`, ratio(r.arrays2, r.arrays1), 1.7, `${fmt(r.arrays2)} vs ${fmt(r.arrays1)}`);
}

// ------------------------------------------------------------------ output

const rowsOut = (map) => [...map.values()];
if (JSON_OUT) {
  console.log(JSON.stringify({ machine, notes: peers.notes, driver: rowsOut(driverRows), raw: rowsOut(rawRows), pool: poolRows, stream: streamRows, targets }, null, 2));
} else {
  const m = machine;
  console.log(`\n## Machine\n`);
  console.log(`${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; SIMD flags: ${m.simdFlags}; ${m.os}`);
  console.log(`Node ${m.node} (V8 ${m.v8}); relaxed SIMD: ${m.relaxedSimd}`);
  console.log(`PyECLib ${m.pyeclib ?? '—'} (Python ${m.python ?? '—'}, liberasurecode ${m.liberasurecode ?? '—'}), libisal ${m.libisal ?? '—'}, gcc ${m.gcc ?? '—'}`);
  console.log(`${m.rounds} interleaved rounds, ${m.secondsPerSample} s samples, clock: ${m.clock}; load average ${m.loadavgStart} at start, ${m.loadavgEnd} at end`);
  for (const [peer, note] of Object.entries(peers.notes)) console.log(`- ${peer}: ${note}`);
  console.log('\nGB/s of segment data, median (min–max). rebuild1: fragment 0 lost and rebuilt; rebuildm and decode: the first m (data) fragments lost.');
  console.log('"zero-copy": segment and fragments already in wasm memory (FragmentSet / ShardSet), results as views.');
  if (driverRows.size) {
    console.log('\n## ECDriver (liberasurecode-compatible fragments, headers included)\n');
    console.log('| backend | shape | segment | op | fragmend | zero-copy | relaxed | relaxed zero-copy | PyECLib | ISA-L SSE (raw) | fragmend / PyECLib | relaxed / PyECLib |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of driverRows.values()) {
      console.log(
        `| ${r.ecType} | ${r.k}+${r.m} | ${segName(r.segment)} | ${r.op} | ${fmt(r.simd)} | ${fmt(r.simdZeroCopy)} | ${fmt(r.relaxed)} | ${fmt(r.relaxedZeroCopy)} | ${fmt(r.pyeclib)} | ${fmt(r.isalSse)} | ${fmtRatio(ratio(r.simd, r.pyeclib))} | ${fmtRatio(ratio(r.relaxed, r.pyeclib))} |`,
      );
    }
  }
  if (rawRows.size) {
    console.log('\n## Raw shards (ReedSolomon; ISA-L with the same matrix; ronomon and digitaldefiance with their own)\n');
    console.log('| matrix | shape | segment | op | fragmend | zero-copy | relaxed zero-copy | ISA-L SSE | ISA-L best | ronomon (8 in flight) | digitaldefiance | zero-copy / ISA-L SSE | relaxed / ISA-L SSE |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rawRows.values()) {
      console.log(
        `| ${r.matrix} | ${r.k}+${r.m} | ${segName(r.segment)} | ${r.op} | ${fmt(r.simd)} | ${fmt(r.simdZeroCopy)} | ${fmt(r.relaxedZeroCopy)} | ${fmt(r.isalSse)} | ${fmt(r.isalBest)} | ${fmt(r.ronomon)} | ${fmt(r.digitaldefiance)} | ${fmtRatio(ratio(r.simdZeroCopy, r.isalSse))} | ${fmtRatio(ratio(r.relaxedZeroCopy, r.isalSse))} |`,
      );
    }
  }
  if (poolRows.length) {
    console.log('\n## Worker pool (wall time; "1 thread" is ECDriver.encodeInto / decodeInto on the calling thread, by the bench clock)\n');
    console.log('| backend | shape | object | op | 1 thread | pool each, 1 worker | pool each, 2 workers | 2 / 1 (each) | each, shared input, 1 / 2 workers | 2 / 1 (shared) | pool arrays, 1 worker | pool arrays, 2 workers | 2 / 1 (arrays) |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of poolRows) {
      console.log(
        `| ${r.ecType} | ${r.k}+${r.m} | ${r.segments} × ${segName(r.segment)} | ${r.op} | ${fmt(r.thread)} | ${fmt(r.each1)} | ${fmt(r.each2)} | ${fmtRatio(ratio(r.each2, r.each1))} | ${r.shared1?.length ? `${fmt(r.shared1)} / ${fmt(r.shared2)}` : '—'} | ${fmtRatio(ratio(r.shared2, r.shared1))} | ${fmt(r.arrays1)} | ${fmt(r.arrays2)} | ${fmtRatio(ratio(r.arrays2, r.arrays1))} |`,
      );
    }
  }
  for (const s of streamRows) {
    console.log(`\n## Streaming (${s.ecType} ${s.k}+${s.m}, ${(s.size / 2 ** 20).toFixed(1)} MiB object in 64 KiB chunks, 1 MiB segments)\n`);
    console.log('| path | GB/s of object data |');
    console.log('|---|---|');
    console.log(`| encodeArchives, all ${s.k + s.m} archives drained (wall) | ${fmt(s.encodeArchives)} |`);
    console.log(`| ECDriver.encode per segment, for comparison | ${fmt(s.perSegmentEncode)} |`);
    console.log(`| rebuildArchive of archive 0 from ${s.k} archives (wall) | ${fmt(s.rebuildArchive)} |`);
    console.log(`| ECDriver.reconstruct per segment, for comparison | ${fmt(s.perSegmentReconstruct)} |`);
  }
  if (targets.length) {
    console.log('\n## Targets\n');
    console.log('| target | measured | goal | met | numbers |');
    console.log('|---|---|---|---|---|');
    for (const t of targets) console.log(`| ${t.name} | ${fmtRatio(t.value)} | ≥ ${t.goal}× | ${t.met === null ? '—' : t.met ? 'yes' : 'no'} | ${t.detail} |`);
  }
}
process.exit(0);
