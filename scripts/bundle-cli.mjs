// Bundles the command line (dist/cli/main.js and everything it imports, yargs and pino
// included) into one CommonJS file, dist/fragmend-cli.cjs. A daemon started by the minute
// (`reconstructor --once`) then reads and compiles one file instead of a hundred. CommonJS
// rather than ESM because an ES module's imports are all loaded before it runs, so every
// Node built-in any command might use would be loaded by every command; in CommonJS each is
// loaded when its module is first run. The two native packages stay outside, loaded as
// installed.
//   node scripts/bundle-cli.mjs [distDir]
import { build } from 'esbuild';
import { rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// Three Node built-ins that pino's modules load at start-up for features the command line never
// uses at start: node:assert for sonic-boom's one argument check, node:worker_threads for pino's
// isMainThread test and for thread-stream's Worker (transports). Together they are about 2.5 ms of
// CPU for every process that starts. Inside this bundle they are loaded when first needed:
//   - sonic-boom's assert() loads node:assert only to report a failed check;
//   - thread-stream, and with it Worker, is evaluated when a transport is first made;
//   - pino's isMainThread is true: this bundle runs only as bin/fragmend.js's main module, never
//     in a worker thread (the codec's workers load dist/codec/worker.js). Were it wrong, pino would
//     only flush its stream at a worker's exit, which it does on the main thread anyway.
const SHIMS = {
  'lazy-assert': `module.exports = function assert(value, message) { if (!value) require('node:assert')(value, message); };`,
  'lazy-thread-stream': `module.exports = function ThreadStream(opts) { return new (require('thread-stream/index.js'))(opts); };`,
  'main-thread': `exports.isMainThread = true;`,
};
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    const shim = (importer, name, path) => (args) => (args.importer.replace(/\\/g, '/').includes(importer) ? { path: name, namespace: 'fragmend-shim' } : undefined);
    b.onResolve({ filter: /^(node:)?assert$/ }, shim('/node_modules/sonic-boom/', 'lazy-assert'));
    b.onResolve({ filter: /^thread-stream$/ }, shim('/node_modules/pino/lib/transport.js', 'lazy-thread-stream'));
    b.onResolve({ filter: /^(node:)?worker_threads$/ }, shim('/node_modules/pino/lib/tools.js', 'main-thread'));
    b.onLoad({ filter: /.*/, namespace: 'fragmend-shim' }, (args) => ({ contents: SHIMS[args.path], loader: 'js', resolveDir: root }));
  },
};
const dist = resolve(process.argv[2] ?? join(root, 'dist'));
const outfile = join(dist, 'fragmend-cli.cjs');
// the ES module form an earlier build made
rmSync(join(dist, 'fragmend-cli.mjs'), { force: true });
await build({
  entryPoints: [join(dist, 'cli', 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['fs-ext', '@napi-rs/xattr'],
  // import.meta.url (createRequire of the native packages, yargs' own shim) is the bundle's URL
  define: { 'import.meta.url': '__fragmendImportMetaUrl' },
  banner: { js: "'use strict';\nconst __fragmendImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
  legalComments: 'none',
  // Whitespace and syntax minified, names kept (stack traces and class names stay readable):
  // a third less source to read, hash and deserialize code for at every start, about 8 ms of
  // the ~100 ms CPU of a reconstructor start that finds nothing to do.
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [lazyBuiltins],
});
console.log(`${outfile.slice(root.length)}: ${statSync(outfile).size} bytes`);
