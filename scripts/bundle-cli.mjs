// Bundles the command line (dist/cli/main.js and everything it imports, yargs and pino
// included) into one module, dist/fragmend-cli.mjs. A daemon started by the minute
// (`reconstructor --once`) then reads and compiles one file instead of a hundred: about a
// quarter of its start-up. The two native packages stay outside, loaded as installed.
//   node scripts/bundle-cli.mjs [distDir]
import { build } from 'esbuild';
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = resolve(process.argv[2] ?? join(root, 'dist'));
const outfile = join(dist, 'fragmend-cli.mjs');
await build({
  entryPoints: [join(dist, 'cli', 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['fs-ext', '@napi-rs/xattr'],
  // the bundled CommonJS packages (yargs, pino) call require() for Node's own modules
  banner: { js: "import { createRequire as __fragmendRequire } from 'node:module'; const require = __fragmendRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});
console.log(`${outfile.slice(root.length)}: ${statSync(outfile).size} bytes`);
