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
});
console.log(`${outfile.slice(root.length)}: ${statSync(outfile).size} bytes`);
