#!/usr/bin/env node
// The region kernels alone, on data already in wasm memory: what each build's dot8 / dot16 /
// xorRegions reach for a given row mix, without any API around them. For kernel work, where
// the full bench is too slow to iterate on.
//
//   node bench/kernels.mjs [--seconds 0.3] [--rounds 3] [--builds simd,relaxed]
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--experimental-wasm-relaxed-simd');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SECONDS = Number(opt('seconds', 0.3));
const ROUNDS = Number(opt('rounds', 3));
const BUILDS = opt('builds', 'simd,relaxed').split(',');

async function load(build) {
  const bytes = readFileSync(new URL(`../build/fragmend-${build}.wasm`, import.meta.url));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const e = instance.exports;
  e.init();
  return e;
}

// Lays out k inputs and `rows` outputs of len bytes each, plus tables, from heapBase up.
function setup(e, w, k, rows, xor, len) {
  const stride = Math.ceil((len + 64) / 64) * 64;
  let p = Math.ceil(e.heapBase() / 64) * 64;
  const tblBytes = (rows - xor) * k * (w === 16 ? 128 : 32);
  const need = p + tblBytes + 4 * (k + rows) + 4 * rows * k + (k + rows) * stride + 65536;
  if (e.memory.buffer.byteLength < need) e.memory.grow(Math.ceil((need - e.memory.buffer.byteLength) / 65536));
  const u8 = new Uint8Array(e.memory.buffer);
  const dv = new DataView(e.memory.buffer);
  const tbl = p;
  p += Math.ceil(tblBytes / 64) * 64;
  const coefs = p;
  p += Math.ceil((4 * rows * k) / 64) * 64;
  for (let i = 0; i < (rows - xor) * k; i++) dv.setUint32(coefs + 4 * i, 2 + ((i * 7919) % (w === 16 ? 65000 : 250)), true);
  e.buildTables(w, (rows - xor) * k, coefs, tbl);
  const ptrs = p;
  p += Math.ceil((4 * (k + rows)) / 64) * 64;
  for (let i = 0; i < k + rows; i++) dv.setUint32(ptrs + 4 * i, p + i * stride, true);
  for (let i = 0; i < k * stride; i++) u8[p + i] = (i * 2654435761) >>> 24;
  return () => (w === 16 ? e.dot16 : e.dot8)(len, k, rows, xor, tbl, ptrs, ptrs + 4 * k);
}

// Process CPU time, not wall time: the machine is shared, and time spent descheduled is not
// the kernel's.
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function time(fn, bytes) {
  fn();
  let iters = 0;
  const start = cpuNow();
  const deadline = start + SECONDS;
  let now;
  do {
    fn();
    iters++;
    now = cpuNow();
  } while (now < deadline);
  return (bytes * iters) / (now - start) / 1e9;
}

const cases = [
  // [label, w, k, rows, xor]
  ['GF8 10+4 (4 table rows)', 8, 10, 4, 0],
  ['GF8 10+4 (xor + 3)', 8, 10, 4, 1],
  ['GF8 4+2 (2 table rows)', 8, 4, 2, 0],
  ['GF8 8+4 (4 table rows)', 8, 8, 4, 0],
  ['GF8 4+2 (xor + 1)', 8, 4, 2, 1],
  ['GF16 10+4 (4 table rows)', 16, 10, 4, 0],
  ['GF16 10+4 (xor + 3)', 16, 10, 4, 1],
  ['GF16 4+2 (xor + 1)', 16, 4, 2, 1],
  ['xor 10 -> 1', 8, 10, 1, 1],
];
const segment = Number(opt('segment', 1 << 20));
const results = new Map();
const mods = {};
for (const b of BUILDS) mods[b] = await load(b);
for (let round = 0; round < ROUNDS; round++) {
  for (const [label, w, k, rows, xor] of cases) {
    for (const b of BUILDS) {
      const len = Math.ceil(segment / k / 64) * 64;
      const fn = setup(mods[b], w, k, rows, xor, len);
      const key = `${label} | ${b}`;
      if (!results.has(key)) results.set(key, []);
      results.get(key).push(time(fn, segment));
    }
  }
}
for (const [key, xs] of results) {
  xs.sort((a, b) => a - b);
  console.log(`${key}: ${xs[xs.length >> 1].toFixed(2)} GB/s (${xs[0].toFixed(2)}–${xs[xs.length - 1].toFixed(2)})`);
}
