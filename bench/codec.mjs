#!/usr/bin/env node
// Codec benchmark: fragmend against PyECLib (liberasurecode 1.6.2 as Debian ships it) in the
// same run, rounds interleaved so both see the same machine state. Prints medians (min-max)
// in GB/s of segment data and the ratio fragmend / PyECLib.
//
//   npm run bench [-- --rounds 5 --seconds 0.2 --json]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, release } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ECDriver } from '../dist/codec/index.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const ROUNDS = Number(opt('rounds', 5));
const SECONDS = Number(opt('seconds', 0.2));
const JSON_OUT = args.includes('--json');
const BACKENDS = opt('backends', 'liberasurecode_rs_vand,isa_l_rs_vand').split(',');
const SHAPES = opt('shapes', '4+2,8+4,10+4').split(',').map((s) => s.split('+').map(Number));
const SEGMENTS = opt('segments', '65536,1048576').split(',').map(Number);
const OPS = ['encode', 'decode', 'rebuild1', 'rebuildm'];

function timeLoop(fn, seconds, bytes) {
  fn();
  let iters = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let now;
  do {
    fn();
    iters++;
    now = performance.now();
  } while (now < deadline);
  return (bytes * iters) / ((now - start) / 1000) / 1e9;
}

const drivers = new Map();
async function ours(ecType, k, m, segment, op) {
  const key = `${ecType}/${k}/${m}/${segment}`;
  if (!drivers.has(key)) {
    const ec = await ECDriver.create({ ecType, k, m });
    const data = new Uint8Array(randomBytes(segment));
    drivers.set(key, { ec, data, frags: ec.encode(data) });
  }
  const { ec, data, frags } = drivers.get(key);
  const fns = {
    encode: () => ec.encode(data),
    decode: () => ec.decode(frags.slice(m)),
    rebuild1: () => ec.reconstruct(frags.slice(1), [0]),
    rebuildm: () => ec.reconstruct(frags.slice(m), [...Array(m).keys()]),
  };
  return timeLoop(fns[op], SECONDS, segment);
}

function startPython() {
  const proc = spawn('/usr/bin/python3', [fileURLToPath(new URL('./pyeclib_bench.py', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  createInterface({ input: proc.stdout }).on('line', (l) => waiting.shift()?.(JSON.parse(l)));
  return {
    run: (req) => new Promise((resolve) => { waiting.push(resolve); proc.stdin.write(JSON.stringify(req) + '\n'); }),
    close: () => proc.stdin.end(),
    proc,
  };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const fmt = (xs) => xs.length ? `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})` : '—';

const py = startPython();
let pyOk = true;
py.proc.on('error', () => (pyOk = false));
const results = new Map();
const cells = [];
for (const ecType of BACKENDS) for (const [k, m] of SHAPES) for (const segment of SEGMENTS) for (const op of OPS) cells.push({ ecType, k, m, segment, op });
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cells) {
    const key = JSON.stringify(c);
    if (!results.has(key)) results.set(key, { ...c, fragmend: [], pyeclib: [] });
    const r = results.get(key);
    r.fragmend.push(await ours(c.ecType, c.k, c.m, c.segment, c.op));
    if (pyOk) {
      try {
        r.pyeclib.push((await py.run({ ec_type: c.ecType, k: c.k, m: c.m, segment: c.segment, op: c.op, seconds: SECONDS })).gbps);
      } catch {
        pyOk = false;
      }
    }
  }
  if (!JSON_OUT) process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}
py.close();

const kernel = [...drivers.values()][0]?.ec.kernel;
const machine = { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, kernel: release(), wasm: kernel, rounds: ROUNDS, secondsPerSample: SECONDS };
const rows = [...results.values()].map((r) => ({ ...r, ratio: r.pyeclib.length ? median(r.fragmend) / median(r.pyeclib) : null }));
if (JSON_OUT) {
  console.log(JSON.stringify({ machine, results: rows }, null, 2));
} else {
  console.log(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, wasm kernels: ${machine.wasm}; ${ROUNDS} interleaved rounds of ${SECONDS}s samples`);
  console.log('GB/s of segment data, median (min–max). decode: first m data fragments lost; rebuild1: fragment 0 lost; rebuildm: first m lost.\n');
  console.log('| backend | shape | segment | op | fragmend | PyECLib | fragmend / PyECLib |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const seg = r.segment >= 1 << 20 ? `${r.segment >> 20} MiB` : `${r.segment >> 10} KiB`;
    console.log(`| ${r.ecType} | ${r.k}+${r.m} | ${seg} | ${r.op} | ${fmt(r.fragmend)} | ${fmt(r.pyeclib)} | ${r.ratio ? r.ratio.toFixed(2) + '×' : '—'} |`);
  }
}
