#!/usr/bin/env node
// The command line: the bundled build (one CommonJS file, quick to start) made by
// `npm run build`, or, in a tree where only tsc has run, the modules under dist/cli.
//
// The bundle is compiled with a V8 code cache when one can be kept: a daemon started by the
// minute (`reconstructor --once`) then skips most of the parsing and compiling of its ~800 KB.
// The cache lives in $FRAGMEND_CACHE_DIR, else $XDG_CACHE_HOME/fragmend, else
// ~/.cache/fragmend, and only in a directory owned by this user that nobody else can write to
// (a cache is code this process runs). FRAGMEND_CACHE_DIR= (empty) turns it off. A cache that
// does not match this bundle, Node and flags is not used, and is written again; the cache of an
// earlier build of the bundle at the same path is removed then, others after a week unused.
//
// Each command has its own cache, holding the functions its writer ran. A later run of the
// command that compiled clearly more (the first run found nothing to rebuild, say) writes it
// again at exit, so the functions of a rebuild are not compiled anew by every process. A cache
// file starts with a header: a magic, and how much bytecode its writer had compiled.
'use strict';
// (CommonJS, as bin/package.json says: an ES module entry point would start Node's ESM loader,
// several milliseconds of CPU on every start)
const { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } = require('node:fs');
const { createRequire } = require('node:module');
const { homedir } = require('node:os');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const BUNDLE = join(__dirname, '..', 'dist', 'fragmend-cli.cjs');
const MAGIC = 0x31434d46; // 'FMC1'
const HEADER = 8;
/** how much more bytecode than the cache's writer a run must have compiled to write it again */
const GROWTH = 1.05;

/** Bytecode compiled in this process so far (the bundle's and Node's own). */
function bytecodeSize() {
  return require('node:v8').getHeapCodeStatistics().bytecode_and_metadata_size;
}

function cacheDir() {
  try {
    const env = process.env.FRAGMEND_CACHE_DIR;
    if (env === '') return null;
    const base = env ?? (process.env.XDG_CACHE_HOME ? join(process.env.XDG_CACHE_HOME, 'fragmend') : join(homedir(), '.cache', 'fragmend'));
    mkdirSync(base, { recursive: true, mode: 0o700 });
    const st = statSync(base);
    if (!st.isDirectory() || (st.mode & 0o022) !== 0 || (process.getuid && st.uid !== process.getuid())) return null;
    return base;
  } catch {
    return null;
  }
}

/** A short, stable digest of a string (FNV-1a), for the cache file's name. */
function fnv(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

function loadBundle(st) {
  const src = readFileSync(BUNDLE, 'utf8');
  const dir = cacheDir();
  let cachePath = null;
  let slot = '';
  let cachedData;
  let writerBytecode = 0;
  if (dir) {
    // Node's own options that leave V8's code alone (profiles, inspector) do not change the key
    const flags = process.execArgv.filter((a) => !/^--(cpu-prof|heap-prof|inspect|diagnostic-dir|report)/.test(a));
    const command = /^[a-z][a-z-]{0,30}$/.test(process.argv[2] ?? '') ? process.argv[2] : '';
    // named for where it applies (this bundle's path, Node, flags, command), then for which
    // build of the bundle: a new build's cache replaces the last one's at once
    slot = `cli-${process.version}-${fnv([BUNDLE, process.arch, flags.join(' '), command].join('\0'))}-`;
    cachePath = join(dir, `${slot}${fnv([st.size, st.mtimeMs].join('\0'))}.v8`);
    try {
      const file = readFileSync(cachePath);
      if (file.length > HEADER && file.readUInt32LE(0) === MAGIC) {
        writerBytecode = file.readUInt32LE(4);
        cachedData = file.subarray(HEADER);
      }
    } catch {
      cachedData = undefined;
    }
  }
  // the wrapper CommonJS gives a module, on the source's first line so line numbers hold
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${src}\n})`, { filename: BUNDLE, cachedData });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(BUNDLE), module, BUNDLE, dirname(BUNDLE));
  if (cachePath) {
    const fresh = !cachedData || script.cachedDataRejected;
    // made at exit, when the functions this run compiled are in it too
    process.once('exit', () => {
      let bytecode;
      try {
        bytecode = bytecodeSize();
      } catch {
        return;
      }
      if (!fresh && bytecode <= writerBytecode * GROWTH) return;
      const tmp = `${cachePath}.${process.pid}.tmp`;
      try {
        const data = script.createCachedData();
        const head = Buffer.alloc(HEADER);
        head.writeUInt32LE(MAGIC, 0);
        head.writeUInt32LE(Math.min(bytecode, 0xffffffff), 4);
        const fd = openSync(tmp, 'wx', 0o600);
        try {
          writeSync(fd, head);
          writeSync(fd, data);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, cachePath);
        // an earlier build's cache for the same slot goes now; caches of other paths, flags or
        // Node versions when unused for a week
        const weekAgo = Date.now() - 7 * 86400_000;
        for (const f of readdirSync(dir)) {
          const p = join(dir, f);
          if (p !== cachePath && /^cli-.*\.v8$/.test(f) && (f.startsWith(slot) || statSync(p).mtimeMs < weekAgo)) unlinkSync(p);
        }
      } catch {
        try {
          unlinkSync(tmp);
        } catch {
          /* nothing was written */
        }
      }
    });
  }
  return module.exports;
}

// A reconstructor pass runs each of its functions some thousands of times, then ends. At V8's
// default threshold the optimizing compiler (a thread of its own, competing for the same cores)
// compiled and recompiled most of them: 29% of the CPU of a --once pass with nothing to do, 12%
// of a restore's. Eight times the threshold (67584, the interrupt budget of Node 20's V8) leaves
// it to what is really hot; a daemon that runs for days still gets there. Set before the bundle
// compiles: V8 keys its code cache to the flags.
//
// Node's own modules are compiled from a code cache built into it, which V8 refuses once a flag
// has changed: each module loaded after the change is parsed and compiled from its source. So
// those a pass needs are loaded first (net, zlib and the rest took 18 ms that way, 8 ms from
// the cache; a reconstructor with nothing to do starts in 4 ms less CPU, 52.8 ms against
// 56.8 ms). A module missing from this list only costs its compile, never a wrong result.
if (process.argv[2] === 'reconstructor') {
  for (const m of ['node:net', 'node:zlib', 'node:os', 'node:stream/promises', 'node:timers/promises', 'node:diagnostics_channel', 'node:string_decoder']) require(m);
  require('node:v8').setFlagsFromString(`--interrupt-budget=${8 * 67584}`);
}

const bundle = statSync(BUNDLE, { throwIfNoEntry: false });
(bundle ? Promise.resolve().then(() => loadBundle(bundle)) : import('../dist/cli/main.js'))
  .then((mod) => mod.main(process.argv.slice(2)))
  .catch((err) => {
    console.error(`fragmend: ${err && err.message ? err.message : err}`);
    process.exit(1);
  });
